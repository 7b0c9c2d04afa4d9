// Package checkpoint is the crash-safe journal that makes a run resumable.
//
// One goroutine, the owner of the output files, records in a [Journal] which
// tasks it submitted and which rows are done, with the output file sizes
// reached. It writes and fsyncs its output lines first and then calls
// [Journal.Sync], so whatever the journal vouches for is on disk. A kill -9
// at any instant leaves a journal whose whole records replay to a state that
// the output files back up; a torn last record is cut off on the next Open.
//
// [Journal.Compact] rewrites the journal as a snapshot of its state, written
// to a temporary file and renamed into place, so that either the old or the
// new file is whole at every instant.
package checkpoint

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/decodo-batch/decodo-batch/io/durable"
)

var (
	// ErrNotJournal means the file is not a journal of this program, or its
	// header is damaged.
	ErrNotJournal = errors.New("not a decodo-batch checkpoint")
	// ErrNewerVersion means the journal was written in a format this
	// program does not know.
	ErrNewerVersion = errors.New("checkpoint written by a newer decodo-batch")
	// ErrClosed is returned by the methods of a closed Journal.
	ErrClosed = errors.New("checkpoint closed")
	// ErrInvalid is returned for an argument the journal cannot record: a
	// row outside 1..[MaxRow], an attempt below 1, an unknown outcome, a
	// negative offset. Nothing is recorded then.
	ErrInvalid = errors.New("invalid checkpoint record")
)

// LockedError is returned by [Open] when another Journal, in this process or
// another, holds the lock on the checkpoint.
type LockedError struct {
	Path string
	PID  int // the holder's pid, or 0 if it is not known
}

func (e *LockedError) Error() string {
	who := "another run"
	if e.PID > 0 {
		who += " (pid " + strconv.Itoa(e.PID) + ")"
	}
	return fmt.Sprintf("checkpoint %s is locked by %s", e.Path, who)
}

// MismatchError is returned by [Open] when the existing journal was written
// for another input or other row-shaping options.
type MismatchError struct {
	Path  string
	Field string // "input size", "input hash" or "shape"
	Was   string // in the journal
	Now   string // in this run
}

func (e *MismatchError) Error() string {
	msg := fmt.Sprintf("checkpoint %s belongs to another job: %s was %q, now %q", e.Path, e.Field, e.Was, e.Now)
	if e.Field == "input size" {
		was, _ := strconv.ParseInt(e.Was, 10, 64)
		now, _ := strconv.ParseInt(e.Now, 10, 64)
		if now > was && was >= 0 {
			msg += " (an input may grow at its end, but its first " + e.Was + " bytes are not those the checkpoint recorded, or did not end with a line end)"
		}
	}
	return msg
}

// Fingerprinter tells [OpenGrowing] what the run's input is: the Header of
// the input as it is now, and the hex sha256 of its first prefix bytes (the
// size the journal recorded) when prefix >= 0 and the input is longer than
// that and may have grown from it, else "". It is called once, under the
// lock, with prefix -1 when there is no journal to resume, so that the
// input is read once.
type Fingerprinter func(prefix int64) (h Header, prefixHash string, err error)

// grown reports whether an input that now has header now, whose first
// was.InputSize bytes hash to prefixHash, only grew at its end since a
// journal recorded was.
func grown(was, now Header, prefixHash string) bool {
	return was.InputSize >= 0 && now.InputSize > was.InputSize && prefixHash != "" &&
		prefixHash == was.InputHash && was.Shape == now.Shape
}

func mismatch(was, now Header) *MismatchError {
	switch {
	case was.Shape != now.Shape:
		// First: an input that grew under other options is told of those.
		return &MismatchError{Field: "shape", Was: was.Shape, Now: now.Shape}
	case was.InputSize != now.InputSize:
		return &MismatchError{Field: "input size",
			Was: strconv.FormatInt(was.InputSize, 10), Now: strconv.FormatInt(now.InputSize, 10)}
	case was.InputHash != now.InputHash:
		return &MismatchError{Field: "input hash", Was: was.InputHash, Now: now.InputHash}
	}
	return nil
}

// Journal is an open, locked journal. Only one goroutine may call its
// methods, and read its State.
type Journal struct {
	path string
	f    *os.File // nil once closed
	lock *os.File
	size int64  // bytes written to f
	buf  []byte // records not yet written
	st   *State
	err  error // sticky: after a failed write the file's tail is unknown

	a          applier
	scratch    []byte
	tasks      []Task
	rows       []int64
	nextCheck  int64 // ShouldCompact's next look
	compactMin int64 // ShouldCompact's least size
}

// Open opens the journal at path, or creates it with header h, after taking
// an exclusive flock on path+".lock" (into which it writes our pid) without
// waiting. An existing journal is replayed; a torn or damaged tail after its
// last whole record is cut off (State.TornBytes says how much). With restart,
// an existing journal is discarded and a new one created. A new journal is
// written to path+".tmp" and renamed into place; a leftover path+".tmp" from
// a crash is removed. Open records a [Session], which is written at the
// first Sync.
//
// Errors: *[LockedError] if the lock is held; *[MismatchError] if the
// journal's header differs from h in InputSize, InputHash or Shape (the
// file is left as it is); [ErrNotJournal] or [ErrNewerVersion] (wrapped);
// else a file system error (wrapped). On error the lock is released.
func Open(path string, h Header, restart bool) (*Journal, error) {
	return OpenGrowing(path, func(int64) (Header, string, error) { return h, "", nil }, restart)
}

// OpenGrowing is [Open] for an input that may have grown at its end since
// the journal was written (a file a cron job appends to): fp tells the
// input's header, and the hash of its first bytes as long as the journal
// recorded. When the input only grew (those bytes hash as the journal's
// whole input did, and the shape is the same), the journal records the new
// size and hash (a grow record, which replay and compaction keep) and the
// number of input rows becomes unknown (State.Rows -1) until the new end
// is read; any other change is a *[MismatchError], as for Open. Errors are
// those of Open, and fp's, returned as they are.
func OpenGrowing(path string, fp Fingerprinter, restart bool) (*Journal, error) {
	lk, err := lock(path + ".lock")
	if err != nil {
		var le *LockedError
		if errors.As(err, &le) {
			le.Path = path
			return nil, le
		}
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	j, err := open(path, fp, restart)
	if err != nil {
		unlock(lk)
		return nil, err
	}
	j.lock = lk
	return j, nil
}

func open(path string, fp Fingerprinter, restart bool) (*Journal, error) {
	now := time.Now()
	if err := os.Remove(path + ".tmp"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	j := &Journal{path: path, compactMin: 4 << 20}
	if !restart {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		switch {
		case err == nil:
			st, end, err := replayFile(f)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("open checkpoint %s: %w", path, err)
			}
			h, prefixHash, err := fp(st.Header.InputSize)
			if err != nil {
				f.Close()
				return nil, err
			}
			grow := grown(st.Header, h, prefixHash)
			if m := mismatch(st.Header, h); m != nil && !grow {
				f.Close()
				m.Path = path
				return nil, m
			}
			if st.TornBytes > 0 {
				// Cut the tail before appending: a record written after
				// garbage would never be replayed.
				err := f.Truncate(end)
				if err == nil {
					err = durable.Sync(f)
				}
				if err != nil {
					f.Close()
					return nil, fmt.Errorf("open checkpoint: cut torn tail: %w", err)
				}
			}
			j.f, j.st, j.size = f, st, end
			if grow {
				// Buffered with the session record: until the first Sync,
				// a crash leaves the old journal, and the next run finds
				// the input grown again.
				p := append(j.scratch[:0], recGrow)
				p = binary.AppendVarint(p, h.InputSize)
				p = appendString(p, h.InputHash)
				if err := j.record(p); err != nil {
					f.Close()
					return nil, err
				}
			}
		case errors.Is(err, fs.ErrNotExist):
		default:
			return nil, fmt.Errorf("open checkpoint: %w", err)
		}
	}
	if j.f == nil {
		h, _, err := fp(-1)
		if err != nil {
			return nil, err
		}
		st := newState()
		st.Header, st.Started = h, timeOf(now.UnixNano())
		data := frame(nil, appendHeader(nil, st))
		f, err := durable.ReplaceFile(path, data, 0o644)
		if err != nil {
			if f != nil {
				f.Close()
			}
			return nil, fmt.Errorf("create checkpoint: %w", err)
		}
		j.f, j.st, j.size = f, st, int64(len(data))
	}
	if j.st.version < version {
		// Before the first record an older program would misread.
		if err := j.Compact(); err != nil {
			j.f.Close()
			return nil, err
		}
		j.st.version = version
	}
	p := append(j.scratch[:0], recSession)
	p = appendTime(p, now)
	p = binary.AppendUvarint(p, uint64(j.st.DoneCount()))
	if err := j.record(p); err != nil {
		j.f.Close()
		return nil, err
	}
	return j, nil
}

func replayFile(f *os.File) (*State, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	return replay(f, fi.Size())
}

// Read replays the journal at path without locking or writing it, for a
// look at a job another run may be working on: a torn tail, or a record
// being written, is ignored. Errors: [ErrNotJournal] or [ErrNewerVersion]
// (wrapped), or a file system error such as one matching [fs.ErrNotExist].
func Read(path string) (*State, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	defer f.Close()
	st, _, err := replayFile(f)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	return st, nil
}

// State returns the journal's state: as replayed at Open, and kept current
// by every call since, whether synced or not. It is the live state, not a
// copy; read it from the owner goroutine only.
func (j *Journal) State() *State { return j.st }

// Size returns the journal's size in bytes, including records not yet
// synced.
func (j *Journal) Size() int64 { return j.size + int64(len(j.buf)) }

func (j *Journal) usable() error {
	if j.f == nil {
		return ErrClosed
	}
	return j.err
}

func checkRow(row int64) error {
	if row < 1 || row > MaxRow {
		return fmt.Errorf("%w: row %d outside 1..%d", ErrInvalid, row, MaxRow)
	}
	return nil
}

// record applies payload p to the state through the decoder that replay
// uses, so the live state is exactly what a replay will find, and queues it.
func (j *Journal) record(p []byte) error {
	if err := j.st.apply(p, &j.a, false); err != nil {
		return fmt.Errorf("checkpoint: record type %d does not decode: %w", p[0], err)
	}
	j.buf = frame(j.buf, p)
	j.scratch = p[:0]
	return nil
}

// Submit records that tasks were submitted at time at, as attempt number
// attempt (1 for the first) of their rows. Each row becomes pending with its
// task, replacing the row's earlier task; a row already done stays done.
// The record is buffered until [Journal.Sync]; no tasks, no record.
//
// Errors: [ErrInvalid] (wrapped; nothing recorded), [ErrClosed], or the
// sticky error of an earlier failed Sync.
func (j *Journal) Submit(at time.Time, attempt int, tasks []Task) error {
	if err := j.usable(); err != nil {
		return err
	}
	if attempt < 1 || attempt > math.MaxInt32 {
		return fmt.Errorf("%w: attempt %d", ErrInvalid, attempt)
	}
	for _, t := range tasks {
		if err := checkRow(t.Row); err != nil {
			return err
		}
	}
	if len(tasks) == 0 {
		return nil
	}
	byRow := func(a, b Task) int { return cmp.Compare(a.Row, b.Row) }
	if !slices.IsSortedFunc(tasks, byRow) {
		// Sorted rows make small deltas. Stable, so that of two tasks for
		// one row the later still wins.
		j.tasks = append(j.tasks[:0], tasks...)
		slices.SortStableFunc(j.tasks, byRow)
		tasks = j.tasks
	}
	p := append(j.scratch[:0], recSubmit)
	p = appendTime(p, at)
	p = binary.AppendUvarint(p, uint64(attempt))
	p = binary.AppendUvarint(p, uint64(len(tasks)))
	var row int64
	var id uint64
	for _, t := range tasks {
		p = binary.AppendVarint(p, t.Row-row)
		p = binary.AppendVarint(p, int64(t.TaskID-id))
		row, id = t.Row, t.TaskID
	}
	return j.record(p)
}

// Finish records that rows ended with outcome o at time at, and that the
// output files have reached the sizes off, which include the rows' lines.
// A row already done is ignored, so finishing a row twice is harmless; off
// is recorded either way. The record is buffered until [Journal.Sync], which
// the owner calls after its output files are synced.
//
// Errors: [ErrInvalid] (wrapped; nothing recorded), [ErrClosed], or the
// sticky error of an earlier failed Sync.
func (j *Journal) Finish(at time.Time, o Outcome, rows []int64, off Offsets) error {
	if err := j.usable(); err != nil {
		return err
	}
	if !o.valid() {
		return fmt.Errorf("%w: outcome %d", ErrInvalid, o)
	}
	if off.Results < 0 || off.Failed < 0 || off.Rejects < 0 || off.Part < 0 {
		return fmt.Errorf("%w: offsets %+v", ErrInvalid, off)
	}
	rs := j.rows[:0]
	for _, r := range rows {
		if err := checkRow(r); err != nil {
			return err
		}
		if !j.st.done.has(r) {
			rs = append(rs, r)
		}
	}
	slices.Sort(rs)
	rs = slices.Compact(rs)
	j.rows = rs
	if len(rs) == 0 && off == j.st.Offsets {
		return nil
	}
	p := append(j.scratch[:0], recFinish)
	p = appendTime(p, at)
	p = append(p, byte(o))
	p = binary.AppendUvarint(p, uint64(off.Results))
	p = binary.AppendUvarint(p, uint64(off.Failed))
	p = binary.AppendUvarint(p, uint64(off.Rejects))
	p = binary.AppendUvarint(p, uint64(len(rs)))
	var prev int64
	for _, r := range rs {
		p = binary.AppendVarint(p, r-prev)
		prev = r
	}
	if off.Part != j.st.Offsets.Part {
		// In the same record as the sizes: a torn write must never leave
		// the new part with the old part's size.
		p = binary.AppendUvarint(p, uint64(off.Part))
	}
	return j.record(p)
}

// Reopen takes failed rows back to work (retrying failed rows): they are
// not done any more, and the failed file the journal vouches for is the one
// rewritten without their lines, failed bytes long, which token names (the
// caller renames it into place after Reopen returns, and on the next Open
// finds whether it still has to, by State.Reopened). Unlike the other
// records it is synced at once: it is the commit point of that rewrite.
//
// Errors: [ErrInvalid] (wrapped; nothing recorded), [ErrClosed], or a
// write or fsync error, which sticks as Sync's do.
func (j *Journal) Reopen(at time.Time, rows []int64, failed int64, token string) error {
	if err := j.usable(); err != nil {
		return err
	}
	if failed < 0 {
		return fmt.Errorf("%w: failed offset %d", ErrInvalid, failed)
	}
	rs := j.rows[:0]
	for _, r := range rows {
		if err := checkRow(r); err != nil {
			return err
		}
		rs = append(rs, r)
	}
	slices.Sort(rs)
	rs = slices.Compact(rs)
	j.rows = rs
	p := append(j.scratch[:0], recReopen)
	p = appendTime(p, at)
	p = binary.AppendUvarint(p, uint64(failed))
	p = appendString(p, token)
	p = binary.AppendUvarint(p, uint64(len(rs)))
	var prev int64
	for _, r := range rs {
		p = binary.AppendVarint(p, r-prev)
		prev = r
	}
	if err := j.record(p); err != nil {
		return err
	}
	return j.Sync()
}

// TaskOf records the tasks whose results rows got (their rows must be
// done), so that a later session can serve a duplicate of such a row from
// its task instead of paying for another. The record is buffered until
// [Journal.Sync].
//
// Errors: [ErrInvalid] (wrapped) for a row out of range, [ErrClosed], or
// the sticky error of an earlier failed Sync.
func (j *Journal) TaskOf(tasks []Task) error {
	if err := j.usable(); err != nil {
		return err
	}
	for _, t := range tasks {
		if err := checkRow(t.Row); err != nil {
			return err
		}
	}
	if len(tasks) == 0 {
		return nil
	}
	ts := slices.Clone(tasks)
	slices.SortFunc(ts, func(a, b Task) int { return cmp.Compare(a.Row, b.Row) })
	return j.record(appendTaskOf(j.scratch[:0], ts))
}

// Looks records how often the pending tasks of rows were looked at, so
// that the next session goes on from there (rows not pending are
// skipped). The record is buffered until [Journal.Sync].
//
// Errors: [ErrInvalid] (wrapped) for a row out of range, [ErrClosed], or
// the sticky error of an earlier failed Sync.
func (j *Journal) Looks(rows []RowLooks) error {
	if err := j.usable(); err != nil {
		return err
	}
	for _, r := range rows {
		if err := checkRow(r.Row); err != nil {
			return err
		}
	}
	rs := slices.Clone(rows)
	slices.SortFunc(rs, func(a, b RowLooks) int { return cmp.Compare(a.Row, b.Row) })
	rs = slices.CompactFunc(rs, func(a, b RowLooks) bool { return a.Row == b.Row })
	if len(rs) == 0 {
		return nil
	}
	return j.record(appendLooks(j.scratch[:0], rs))
}

// InputEnd records that the whole input has been read and holds rows rows.
// The record is buffered until [Journal.Sync].
//
// Errors: [ErrInvalid] (wrapped) for rows outside 0..[MaxRow], [ErrClosed],
// or the sticky error of an earlier failed Sync.
func (j *Journal) InputEnd(rows int64) error {
	if err := j.usable(); err != nil {
		return err
	}
	if rows < 0 || rows > MaxRow {
		return fmt.Errorf("%w: %d input rows", ErrInvalid, rows)
	}
	p := append(j.scratch[:0], recInputEnd)
	p = binary.AppendUvarint(p, uint64(rows))
	return j.record(p)
}

// Sync writes the buffered records and fsyncs the journal: the group commit.
// Nothing reaches the file between two Syncs, so the owner can sync its
// output files first and have the journal vouch only for lines on disk.
//
// Errors: [ErrClosed], or a write or fsync error (wrapped). A failed Sync
// leaves the file's tail unknown, so the error sticks: every later write
// method returns it, and the run should stop (the next Open recovers).
func (j *Journal) Sync() error {
	if err := j.usable(); err != nil {
		return err
	}
	if len(j.buf) == 0 {
		return nil
	}
	if _, err := j.f.WriteAt(j.buf, j.size); err != nil {
		j.err = fmt.Errorf("sync checkpoint: %w", err)
		return j.err
	}
	if err := durable.Sync(j.f); err != nil {
		j.err = fmt.Errorf("sync checkpoint: %w", err)
		return j.err
	}
	j.size += int64(len(j.buf))
	j.buf = j.buf[:0]
	return nil
}

// Close syncs the journal and releases the lock. The Journal is unusable
// afterwards, even if Close fails. Errors: those of [Journal.Sync], or of
// closing the file; [ErrClosed] if it was closed already.
func (j *Journal) Close() error {
	if j.f == nil {
		return ErrClosed
	}
	err := j.Sync()
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	if cerr := j.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close checkpoint: %w", cerr)
	}
	j.f = nil
	if j.lock != nil {
		if uerr := unlock(j.lock); err == nil && uerr != nil {
			err = fmt.Errorf("unlock checkpoint: %w", uerr)
		}
		j.lock = nil
	}
	return err
}

// Compact syncs the journal, then replaces it with a snapshot of its state:
// written to path+".tmp", fsynced, renamed over path, and the directory
// fsynced. Appending continues in the new file. A kill at any point leaves
// either the old journal or the new one whole under path, and Open removes
// a leftover .tmp. Like Sync, call it only when the output files are synced.
//
// Errors: those of [Journal.Sync]; a file system error (wrapped), after
// which the old journal is still in use and sound; or, if only the final
// directory fsync failed, that error, which sticks like a failed Sync.
func (j *Journal) Compact() error {
	if err := j.Sync(); err != nil {
		return err
	}
	data := frame(nil, appendHeader(nil, j.st))
	data = frame(data, appendSnapshot(nil, j.st))
	if part := j.st.Offsets.Part; part != 0 {
		data = frame(data, binary.AppendUvarint([]byte{recPart}, uint64(part)))
	}
	if looks := j.st.looks(); len(looks) > 0 {
		data = frame(data, appendLooks(nil, looks))
	}
	if len(j.st.taskOf) > 0 {
		data = frame(data, appendTaskOf(nil, j.st.resultTasks()))
	}
	if err := j.verify(data); err != nil {
		return err
	}
	f, err := durable.ReplaceFile(j.path, data, 0o644)
	if f == nil {
		return fmt.Errorf("compact checkpoint: %w", err)
	}
	j.f.Close()
	j.f, j.size = f, int64(len(data))
	j.nextCheck = 2 * j.size
	if err != nil {
		j.err = fmt.Errorf("compact checkpoint: sync directory: %w", err)
		return j.err
	}
	return nil
}

// verify replays a snapshot file before it replaces the journal: a snapshot
// that did not decode would replay as an empty job and lose all progress.
func (j *Journal) verify(data []byte) error {
	r := newReader(bytes.NewReader(data), int64(len(data)))
	p, _ := r.next()
	s, err := decodeHeader(p)
	if err == nil {
		p, _ = r.next()
		if p == nil || s.apply(p, new(applier), true) != nil {
			err = errCorrupt
		}
		for p, ok := r.next(); err == nil && ok; p, ok = r.next() {
			if s.apply(p, new(applier), false) != nil {
				err = errCorrupt // a part or looks record after the snapshot
			}
		}
	}
	if err == nil {
		a, b := j.st, s
		if a.DoneCount() != b.DoneCount() || a.Offsets != b.Offsets || a.Rows != b.Rows ||
			a.PendingCount() != b.PendingCount() || a.Submitted != b.Submitted ||
			a.maxSubmitted != b.maxSubmitted || len(a.Sessions) != len(b.Sessions) ||
			len(a.taskOf) != len(b.taskOf) || !slices.Equal(a.looks(), b.looks()) {
			err = errors.New("snapshot replays to another state")
		}
	}
	if err != nil {
		return fmt.Errorf("compact checkpoint: %w", err)
	}
	return nil
}

// ShouldCompact reports whether the journal is worth compacting: at least
// 4 MiB and over four times the size of a snapshot of its state. It encodes
// a snapshot to learn that size, but only each time the journal has grown by
// a quarter since it last looked.
func (j *Journal) ShouldCompact() bool {
	sz := j.Size()
	if sz < j.compactMin || sz < j.nextCheck {
		return false
	}
	j.scratch = appendSnapshot(j.scratch[:0], j.st)
	snap := int64(len(j.scratch))
	j.scratch = j.scratch[:0]
	if sz > 4*snap {
		return true
	}
	j.nextCheck = sz + sz/4
	return false
}

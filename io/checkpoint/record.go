package checkpoint

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"time"
)

// The file is a sequence of records:
//
//	[uvarint n][crc32c of payload, 4 bytes little-endian][payload, n bytes]
//
// and a payload is a type byte followed by the fields of that type:
//
//	header    magic, uvarint version, time started, string input name,
//	          varint input size, string input hash, string shape
//	session   time start, uvarint done rows at start
//	submit    time at, uvarint attempt, uvarint n, n × (varint row delta,
//	          varint task id delta)
//	finish    time at, byte outcome, 3 × uvarint offsets, uvarint n,
//	          n × varint row delta, and when the results part changes, the
//	          uvarint new part (in the record whose Results offset measures
//	          it: a torn write never leaves a part with another's size)
//	inputEnd  uvarint rows
//	looks     uvarint n, n × (varint row delta, uvarint looks): how many
//	          times the pending tasks of these rows were looked at, so that
//	          short sessions add up (written at the end of a session, and
//	          after a snapshot)
//	taskOf    uvarint n, n × (varint row delta, varint task id delta): the
//	          tasks whose results rows got, kept to serve duplicates of
//	          those rows (deduplicating runs only; after a snapshot too)
//	reopen    time at, uvarint failed offset, string token, uvarint n,
//	          n × varint row delta: failed rows taken back to work
//	snapshot  the whole state (see appendSnapshot)
//	grow      varint input size, string input hash: the input grew at its
//	          end to this size and hash; the rows are unknown again
//	part      uvarint part: the results part that the Results offset of
//	          the finish records after it measures (rotated results only):
//	          written after a snapshot (written whole: compaction renames a
//	          synced file); in version 2, also before a finish record
//
// A time is a varint of Unix nanoseconds (0 for the zero time), a string a
// uvarint length and its bytes. Deltas are from the previous value in the
// record, starting at 0; rows are sorted before they are written, so their
// deltas are small, and task ids of one batch are consecutive or close, so
// theirs are too (the wrapped difference is exact for any pair of uint64).
//
// The header is always the first record and only there; a snapshot may only
// follow it directly. A file starts as a header (and a snapshot) written to
// a temporary file and renamed into place, so a file under the journal's name
// always has a whole header. Replay stops at the first record that is short,
// fails its CRC or does not decode: that is where a write was torn.
const (
	recHeader   = 1
	recSession  = 2
	recSubmit   = 3
	recFinish   = 4
	recInputEnd = 5
	recSnapshot = 6
	recGrow     = 7
	recReopen   = 8
	recLooks    = 9
	recPart     = 10
	recTaskOf   = 11
)

const (
	magic = "decodo-batch journal"
	// version 2 added the grow, reopen, looks, part and taskOf records,
	// version 3 the new part in a finish record: a program that reads an
	// older version would take them for a torn tail, so Open rewrites an
	// older journal as the current version before it appends.
	version = 3

	// maxRecord bounds a record's length, far above any snapshot, so that
	// a damaged length never makes a huge allocation.
	maxRecord = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a payload that does not decode; replay treats it as the
// end of the journal.
var errCorrupt = errors.New("corrupt record")

// frame appends payload to dst as a whole record.
func frame(dst, payload []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func timeOf(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// dec reads the fields of a payload; the first failure sticks and every
// later read returns zero.
type dec struct {
	b   []byte
	bad bool
}

func (d *dec) fail() {
	d.bad = true
	d.b = nil
}

func (d *dec) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int returns a uvarint that must lie in [lo, hi].
func (d *dec) int(lo, hi int64) int64 {
	v := d.uvarint()
	if v > math.MaxInt64 || int64(v) < lo || int64(v) > hi {
		d.fail()
		return 0
	}
	return int64(v)
}

// count returns an element count; each element takes at least one byte, so
// a count larger than what is left is corrupt (and never allocated).
func (d *dec) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *dec) time() time.Time { return timeOf(d.varint()) }

func (d *dec) string() string {
	n := d.count()
	if d.bad {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// done reports whether the payload was read whole and nothing is left over.
func (d *dec) done() bool { return !d.bad && len(d.b) == 0 }

// reader yields the payloads of whole records from the first size bytes of
// a file.
type reader struct {
	br   *bufio.Reader
	pos  int64 // offset of the next record
	size int64
	buf  []byte
	err  error // an I/O error, as opposed to the end of the data
}

func (r *reader) setErr(err error) {
	if err != io.EOF && err != io.ErrUnexpectedEOF {
		r.err = err
	}
}

func newReader(r io.ReaderAt, size int64) *reader {
	n := int(min(max(size, 16), 1<<20)) // small for a compacted journal
	return &reader{br: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), n), size: size}
}

// restart makes r read the first size bytes of ra again, from the start.
func (r *reader) restart(ra io.ReaderAt, size int64) {
	r.br.Reset(io.NewSectionReader(ra, 0, size))
	r.pos, r.size, r.err = 0, size, nil
}

// next returns the next record's payload, valid until the next call, or
// false at the end of the file or at a short or damaged record.
func (r *reader) next() ([]byte, bool) {
	var n uint64
	var i int
	for shift := uint(0); ; shift += 7 {
		c, err := r.br.ReadByte()
		if err != nil {
			r.setErr(err)
			return nil, false
		}
		if i == binary.MaxVarintLen64 {
			return nil, false
		}
		i++
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	head := int64(i) + 4
	left := r.size - r.pos - head
	// A zero length is never written (a payload has a type byte); rejecting
	// it also keeps a tail of zeros, which a crash can leave, from reading as
	// empty records whose CRC happens to be 0.
	if n == 0 || left < 0 || n > uint64(left) || n > maxRecord {
		return nil, false
	}
	if need := int(n) + 4; cap(r.buf) < need {
		r.buf = make([]byte, need)
	}
	b := r.buf[:int(n)+4]
	if _, err := io.ReadFull(r.br, b); err != nil {
		r.setErr(err)
		return nil, false
	}
	p := b[4:]
	if binary.LittleEndian.Uint32(b) != crc32.Checksum(p, castagnoli) {
		return nil, false
	}
	r.pos += head + int64(n)
	return p, true
}

// replay reads a journal of size bytes. It returns the state of its whole
// records and the offset where they end; the bytes after it (State.TornBytes)
// are a torn or damaged tail. Errors: [ErrNotJournal], [ErrNewerVersion],
// or an I/O error from r.
func replay(r io.ReaderAt, size int64) (*State, int64, error) {
	rd := newReader(r, size)
	p, ok := rd.next()
	if !ok {
		if rd.err != nil {
			return nil, 0, rd.err
		}
		return nil, 0, ErrNotJournal
	}
	s, err := decodeHeader(p)
	if err != nil {
		return nil, 0, err
	}
	// Replay makes two passes, because map updates would cost most of the
	// time otherwise: nearly every row is submitted, then finished. A done
	// row stays done, and a submit never makes a done row pending, so the
	// pending tasks at the end are the last ones submitted for rows that are
	// not done at the end. The first pass applies every record but leaves
	// pending tasks out of submits; the second adds those of the rows still
	// not done.
	a := applier{deferPending: true}
	var end int64
	var submits bool
	for first := true; ; first = false {
		end = rd.pos
		p, ok := rd.next()
		if !ok || s.apply(p, &a, first) != nil {
			break
		}
		submits = submits || p[0] == recSubmit
	}
	if rd.err != nil {
		// An I/O error must not pass for a torn tail that Open would then
		// cut off.
		return nil, 0, rd.err
	}
	s.TornBytes = size - end
	s.held = false // a format 2 part record without its finish: torn
	if submits {
		rd.restart(r, end)
		for {
			p, ok := rd.next()
			if !ok {
				break
			}
			switch p[0] {
			case recSubmit:
				d := dec{b: p[1:]}
				at, attempt, tasks, _ := decodeSubmit(&d, &a)
				s.addPending(at, attempt, tasks)
			case recLooks:
				s.apply(p, &a, false) // on the tasks pending by now
			case recReopen:
				// A reopened row's earlier task is not its task any more.
				d := dec{b: p[1:]}
				_, _, _, rows := decodeReopen(&d, &a)
				for _, r := range rows {
					delete(s.pending, r)
				}
			}
		}
		if rd.err != nil || rd.pos != end {
			return nil, 0, cmp.Or(rd.err, io.ErrUnexpectedEOF)
		}
	}
	return s, end, nil
}

func appendHeader(b []byte, s *State) []byte {
	b = append(b, recHeader)
	b = append(b, magic...)
	b = binary.AppendUvarint(b, version)
	b = appendTime(b, s.Started)
	b = appendString(b, s.Header.InputName)
	b = binary.AppendVarint(b, s.Header.InputSize)
	b = appendString(b, s.Header.InputHash)
	return appendString(b, s.Header.Shape)
}

func decodeHeader(p []byte) (*State, error) {
	if len(p) < 1+len(magic) || p[0] != recHeader || string(p[1:1+len(magic)]) != magic {
		return nil, ErrNotJournal
	}
	d := dec{b: p[1+len(magic):]}
	v := d.uvarint()
	if d.bad {
		return nil, ErrNotJournal
	}
	if v < 1 || v > version {
		return nil, fmt.Errorf("%w (format %d, this program reads 1 to %d)", ErrNewerVersion, v, version)
	}
	s := newState()
	s.version = int(v)
	s.Started = d.time()
	s.Header.InputName = d.string()
	s.Header.InputSize = d.varint()
	s.Header.InputHash = d.string()
	s.Header.Shape = d.string()
	if !d.done() {
		return nil, ErrNotJournal
	}
	return s, nil
}

// applier holds the scratch space of decoding, reused across records.
type applier struct {
	tasks []Task
	rows  []int64
	// deferPending leaves pending tasks out of submit records, for the first
	// pass of replay; see replay.
	deferPending bool
}

// decodeSubmit decodes the fields of a submit record after its type byte.
func decodeSubmit(d *dec, a *applier) (at int64, attempt int32, tasks []Task, ok bool) {
	at = d.varint()
	attempt = int32(d.int(1, math.MaxInt32))
	n := d.count()
	tasks = a.tasks[:0]
	var row int64
	var id uint64
	for range n {
		row += d.varint()
		id += uint64(d.varint())
		if row < 1 || row > MaxRow {
			d.fail()
		}
		if d.bad {
			break
		}
		tasks = append(tasks, Task{Row: row, TaskID: id})
	}
	a.tasks = tasks
	return at, attempt, tasks, d.done()
}

// addPending makes tasks pending, each replacing its row's earlier task,
// except for rows that are done.
func (s *State) addPending(at int64, attempt int32, tasks []Task) {
	for _, t := range tasks {
		if !s.done.has(t.Row) {
			s.pending[t.Row] = pend{id: t.TaskID, at: at, attempt: attempt}
		}
	}
}

// apply decodes one record and applies it to s. A record that does not
// decode leaves s untouched and returns errCorrupt: every field is read and
// checked before anything changes.
func (s *State) apply(p []byte, a *applier, first bool) error {
	d := dec{b: p[1:]}
	afterSnapshot := s.snap
	s.snap = p[0] == recSnapshot
	switch p[0] {
	case recSession:
		start := d.time()
		done := d.int(0, MaxRow)
		if !d.done() {
			return errCorrupt
		}
		s.Sessions = append(s.Sessions, Session{Start: start, DoneAtStart: done})
		s.Updated = start

	case recSubmit:
		at, attempt, tasks, ok := decodeSubmit(&d, a)
		if !ok {
			return errCorrupt
		}
		for _, t := range tasks {
			s.maxSubmitted = max(s.maxSubmitted, t.Row)
		}
		if !a.deferPending {
			s.addPending(at, attempt, tasks)
		}
		s.Submitted += int64(len(tasks))
		s.Batches++
		s.Updated = timeOf(at)

	case recFinish:
		at := d.time()
		o := Outcome(d.byte())
		var off Offsets
		off.Results = d.int(0, math.MaxInt64)
		off.Failed = d.int(0, math.MaxInt64)
		off.Rejects = d.int(0, math.MaxInt64)
		rows := d.rows(a)
		off.Part = s.Offsets.Part
		if s.held {
			off.Part, s.held = s.heldPart, false
		}
		if len(d.b) > 0 { // a new results part, with its size
			off.Part = d.int(0, math.MaxInt64)
		}
		if !d.done() || !o.valid() {
			return errCorrupt
		}
		for _, r := range rows {
			s.finish(o, r)
		}
		s.Offsets = off
		s.Updated = at

	case recTaskOf:
		n := d.count()
		ts := a.tasks[:0]
		var row int64
		var id uint64
		for range n {
			row += d.varint()
			id += uint64(d.varint())
			if d.bad || row < 1 || row > MaxRow {
				return errCorrupt
			}
			ts = append(ts, Task{Row: row, TaskID: id})
		}
		a.tasks = ts
		if !d.done() {
			return errCorrupt
		}
		if s.taskOf == nil {
			s.taskOf = make(map[int64]uint64, len(ts))
		}
		for _, t := range ts {
			s.taskOf[t.Row] = t.TaskID
		}

	case recLooks:
		n := d.count()
		var row int64
		for range n {
			row += d.varint()
			looks := d.int(0, math.MaxUint16)
			if d.bad || row < 1 || row > MaxRow {
				return errCorrupt
			}
			if p, ok := s.pending[row]; ok {
				p.looks = uint16(looks)
				s.pending[row] = p
			}
		}
		if !d.done() {
			return errCorrupt
		}

	case recReopen:
		at, failed, token, rows := decodeReopen(&d, a)
		if !d.done() {
			return errCorrupt
		}
		for _, r := range rows {
			s.reopen(r)
		}
		s.Offsets.Failed = failed
		s.Reopened = token
		s.Updated = at

	case recInputEnd:
		rows := d.int(0, MaxRow)
		if !d.done() {
			return errCorrupt
		}
		s.Rows = rows

	case recPart:
		part := d.int(0, math.MaxInt64)
		if !d.done() {
			return errCorrupt
		}
		if s.version < 3 && !afterSnapshot {
			// Format 2 wrote it right before the finish record whose
			// size it measures: the two count together, or, torn apart,
			// not at all.
			s.heldPart, s.held = part, true
			break
		}
		s.Offsets.Part = part

	case recGrow:
		size := d.varint()
		hash := d.string()
		if !d.done() || size < 0 {
			return errCorrupt
		}
		s.Header.InputSize, s.Header.InputHash = size, hash
		s.Rows = -1 // until the new end is read

	case recSnapshot:
		if !first {
			return errCorrupt
		}
		return s.decodeSnapshot(&d)

	default:
		return errCorrupt
	}
	return nil
}

// appendSnapshot appends a snapshot record of s: the counters, the sessions,
// the done set as run lengths (alternating not done, done, from row 1), and
// the pending tasks sorted by row.
func appendSnapshot(b []byte, s *State) []byte {
	b = append(b, recSnapshot)
	b = appendTime(b, s.Updated)
	b = binary.AppendUvarint(b, uint64(s.Offsets.Results))
	b = binary.AppendUvarint(b, uint64(s.Offsets.Failed))
	b = binary.AppendUvarint(b, uint64(s.Offsets.Rejects))
	b = binary.AppendVarint(b, s.Rows)
	b = binary.AppendUvarint(b, uint64(s.Results))
	b = binary.AppendUvarint(b, uint64(s.Failed))
	b = binary.AppendUvarint(b, uint64(s.Rejected))
	b = binary.AppendUvarint(b, uint64(s.Submitted))
	b = binary.AppendUvarint(b, uint64(s.Batches))
	b = binary.AppendUvarint(b, uint64(s.maxSubmitted))

	b = binary.AppendUvarint(b, uint64(len(s.Sessions)))
	for _, x := range s.Sessions {
		b = appendTime(b, x.Start)
		b = binary.AppendUvarint(b, uint64(x.DoneAtStart))
	}

	var runs uint64
	s.done.runs(func(int64) { runs++ })
	b = binary.AppendUvarint(b, runs)
	s.done.runs(func(n int64) { b = binary.AppendUvarint(b, uint64(n)) })

	rows := s.pendingRows()
	b = binary.AppendUvarint(b, uint64(len(rows)))
	var prevRow, prevAt int64
	var prevID uint64
	for _, r := range rows {
		p := s.pending[r]
		b = binary.AppendUvarint(b, uint64(r-prevRow))
		b = binary.AppendVarint(b, int64(p.id-prevID))
		b = binary.AppendVarint(b, p.at-prevAt)
		b = binary.AppendUvarint(b, uint64(p.attempt))
		prevRow, prevID, prevAt = r, p.id, p.at
	}
	return b
}

// decodeSnapshot replaces the state of s, keeping its header, with the
// snapshot in d, if it decodes and is consistent; else it returns errCorrupt
// and leaves s as it was.
func (s *State) decodeSnapshot(d *dec) error {
	n := newState()
	n.Header, n.Started, n.version = s.Header, s.Started, s.version
	n.Updated = d.time()
	n.Offsets.Results = d.int(0, math.MaxInt64)
	n.Offsets.Failed = d.int(0, math.MaxInt64)
	n.Offsets.Rejects = d.int(0, math.MaxInt64)
	n.Rows = d.varint()
	n.Results = d.int(0, MaxRow)
	n.Failed = d.int(0, MaxRow)
	n.Rejected = d.int(0, MaxRow)
	n.Submitted = d.int(0, math.MaxInt64)
	n.Batches = d.int(0, math.MaxInt64)
	n.maxSubmitted = d.int(0, MaxRow)
	if n.Rows < -1 || n.Rows > MaxRow {
		d.fail()
	}

	ns := d.count()
	if ns > 0 {
		n.Sessions = make([]Session, 0, ns)
	}
	for range ns {
		start := d.time()
		done := d.int(0, MaxRow)
		n.Sessions = append(n.Sessions, Session{Start: start, DoneAtStart: done})
	}

	runs := d.count()
	var done int64
	pos := int64(1)
	for i := range runs {
		r := d.int(0, MaxRow+1-pos)
		if d.bad {
			break
		}
		if i%2 == 1 {
			done += n.done.setRange(pos, pos+r)
		}
		pos += r
	}

	np := d.count()
	var row, at int64
	var id uint64
	for range np {
		row += d.int(1, MaxRow)
		id += uint64(d.varint())
		at += d.varint()
		attempt := d.int(1, math.MaxInt32)
		if d.bad || row > MaxRow || n.done.has(row) || row > n.maxSubmitted {
			d.fail()
			break
		}
		n.pending[row] = pend{id: id, at: at, attempt: int32(attempt)}
	}

	if !d.done() ||
		done != n.Results+n.Failed+n.Rejected ||
		n.done.max() > n.maxSubmitted ||
		int64(len(n.pending)) > n.Submitted {
		return errCorrupt
	}
	n.TornBytes = s.TornBytes
	*s = *n
	return nil
}

// decodeReopen decodes the fields of a reopen record after its type byte.
func decodeReopen(d *dec, a *applier) (at time.Time, failed int64, token string, rows []int64) {
	at = d.time()
	failed = d.int(0, math.MaxInt64)
	token = d.string()
	return at, failed, token, d.rows(a)
}

// rows reads a count and that many row deltas, each row in 1..MaxRow,
// into a's scratch space.
func (d *dec) rows(a *applier) []int64 {
	n := d.count()
	rows := a.rows[:0]
	var row int64
	for range n {
		row += d.varint()
		if row < 1 || row > MaxRow {
			d.fail()
		}
		if d.bad {
			break
		}
		rows = append(rows, row)
	}
	a.rows = rows
	return rows
}

// appendLooks appends a looks record of the rows of rs (sorted) and their
// look counts, capped at the record's limit.
func appendLooks(b []byte, rs []RowLooks) []byte {
	b = append(b, recLooks)
	b = binary.AppendUvarint(b, uint64(len(rs)))
	var prev int64
	for _, r := range rs {
		b = binary.AppendVarint(b, r.Row-prev)
		b = binary.AppendUvarint(b, uint64(min(max(r.Looks, 0), math.MaxUint16)))
		prev = r.Row
	}
	return b
}

// appendTaskOf appends a taskOf record of ts, sorted by row.
func appendTaskOf(b []byte, ts []Task) []byte {
	b = append(b, recTaskOf)
	b = binary.AppendUvarint(b, uint64(len(ts)))
	var prevRow int64
	var prevID uint64
	for _, t := range ts {
		b = binary.AppendVarint(b, t.Row-prevRow)
		b = binary.AppendVarint(b, int64(t.TaskID-prevID))
		prevRow, prevID = t.Row, t.TaskID
	}
	return b
}

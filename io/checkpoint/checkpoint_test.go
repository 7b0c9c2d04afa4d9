package checkpoint

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReopenKeepsState proves that what was recorded and synced is what a
// later Open and a Read replay, field by field.
func TestReopenKeepsState(t *testing.T) {
	t.Parallel()
	path := journalPath(t)
	j := mustOpen(t, path, testHeader, false)
	if got := j.State().Rows; got != -1 {
		t.Fatalf("new journal: Rows = %d, want -1", got)
	}
	must(t, j.Submit(t0, 1, tasks(1, 10, 7434928397127555073)))
	must(t, j.Submit(t0.Add(time.Second), 1, tasks(11, 12, 7434928397127555100)))
	must(t, j.Finish(t0.Add(2*time.Second), OutcomeResult, []int64{3, 1, 2}, Offsets{Results: 300}))
	must(t, j.Finish(t0.Add(3*time.Second), OutcomeFailed, []int64{4}, Offsets{Results: 300, Failed: 40}))
	must(t, j.Finish(t0.Add(4*time.Second), OutcomeRejected, []int64{13}, Offsets{Results: 300, Failed: 40, Rejects: 7}))
	must(t, j.Submit(t0.Add(5*time.Second), 2, []Task{{Row: 5, TaskID: 42}}))
	must(t, j.InputEnd(13))
	live := viewOf(j.State())
	must(t, j.Close())

	s := mustRead(t, path)
	sameState(t, "Read after Close", viewOf(s), live)

	j = mustOpen(t, path, testHeader, false)
	defer j.Close()
	s2 := j.State()
	sameAfterOpen(t, "Open after Close", viewOf(s2), live)

	checks := []struct {
		name      string
		got, want any
	}{
		{"Header", s2.Header, testHeader},
		{"Rows", s2.Rows, int64(13)},
		{"Results", s2.Results, int64(3)},
		{"Failed", s2.Failed, int64(1)},
		{"Rejected", s2.Rejected, int64(1)},
		{"DoneCount", s2.DoneCount(), int64(5)},
		{"Submitted", s2.Submitted, int64(13)},
		{"Batches", s2.Batches, int64(3)},
		{"PendingCount", s2.PendingCount(), 8},
		{"MaxSubmittedRow", s2.MaxSubmittedRow(), int64(13)},
		{"Offsets", s2.Offsets, Offsets{Results: 300, Failed: 40, Rejects: 7}},
		{"Done(1)", s2.Done(1), true},
		{"Done(4)", s2.Done(4), true},
		{"Done(13)", s2.Done(13), true},
		{"Done(5)", s2.Done(5), false},
		{"Done(0)", s2.Done(0), false},
		{"Done(14)", s2.Done(14), false},
		{"Sessions", len(s2.Sessions), 2},
		{"Session 2 DoneAtStart", s2.Sessions[1].DoneAtStart, int64(5)},
		{"Updated", s2.Updated.Equal(s2.Sessions[1].Start), true},
		{"Started", s2.Started.Equal(s2.Sessions[0].Start), true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if p, ok := s2.Pending(6); !ok || p.TaskID != 7434928397127555078 || p.Attempt != 1 || !p.SubmittedAt.Equal(t0) {
		t.Errorf("Pending(6) = %+v, %v; want task 7434928397127555078, attempt 1, at %v", p, ok, t0)
	}
	if p, ok := s2.Pending(5); !ok || p.TaskID != 42 || p.Attempt != 2 || !p.SubmittedAt.Equal(t0.Add(5*time.Second)) {
		t.Errorf("Pending(5) after resubmission = %+v, %v; want task 42, attempt 2", p, ok)
	}
	if _, ok := s2.Pending(1); ok {
		t.Error("Pending(1): a finished row is still pending")
	}
}

// TestFinishIsIdempotent proves that finishing a done row again changes no
// count, keeps its first outcome, and writes nothing when the offsets stay.
func TestFinishIsIdempotent(t *testing.T) {
	t.Parallel()
	path := journalPath(t)
	j := mustOpen(t, path, testHeader, false)
	must(t, j.Submit(t0, 1, tasks(1, 3, 100)))
	off := Offsets{Results: 10}
	must(t, j.Finish(t0, OutcomeResult, []int64{1, 2, 2, 1}, off))
	size := j.Size()
	must(t, j.Finish(t0, OutcomeResult, []int64{1, 2}, off))
	must(t, j.Finish(t0, OutcomeFailed, []int64{2}, off))
	if j.Size() != size {
		t.Errorf("finishing done rows with unchanged offsets grew the journal from %d to %d bytes", size, j.Size())
	}
	s := j.State()
	if s.Results != 2 || s.Failed != 0 || s.DoneCount() != 2 {
		t.Errorf("counts after repeated Finish: results %d failed %d done %d, want 2 0 2", s.Results, s.Failed, s.DoneCount())
	}
	// New offsets are recorded even when every row was done before.
	must(t, j.Finish(t0, OutcomeFailed, []int64{2}, Offsets{Results: 10, Failed: 5}))
	if s.Offsets.Failed != 5 || s.Failed != 0 {
		t.Errorf("after Finish of a done row with new offsets: %+v, failed %d", s.Offsets, s.Failed)
	}
	live := viewOf(s)
	must(t, j.Close())
	sameState(t, "replayed", viewOf(mustRead(t, path)), live)
}

// TestNothingWrittenBeforeSync proves the ordering the owner relies on: the
// file does not grow until Sync, and Sync makes every record durable.
func TestNothingWrittenBeforeSync(t *testing.T) {
	t.Parallel()
	path := journalPath(t)
	j := mustOpen(t, path, testHeader, false)
	defer j.Close()
	before := fileSize(t, path)
	must(t, j.Submit(t0, 1, tasks(1, 100, 1)))
	must(t, j.Finish(t0, OutcomeResult, rows(1, 50), Offsets{Results: 500}))
	must(t, j.InputEnd(100))
	if got := fileSize(t, path); got != before {
		t.Fatalf("file grew from %d to %d bytes before Sync", before, got)
	}
	if j.Size() <= before {
		t.Fatalf("Size() = %d does not count buffered records (file %d)", j.Size(), before)
	}
	must(t, j.Sync())
	if got := fileSize(t, path); got != j.Size() {
		t.Fatalf("after Sync the file has %d bytes, Size() says %d", got, j.Size())
	}
	s := mustRead(t, path)
	if s.DoneCount() != 50 || s.PendingCount() != 50 || s.Rows != 100 {
		t.Fatalf("Read after Sync: done %d pending %d rows %d, want 50 50 100", s.DoneCount(), s.PendingCount(), s.Rows)
	}
}

// TestHeaderMismatchRefused proves that a changed input or shape is refused
// with a message naming the field and the file, the journal file is left
// alone, and the lock is released; a renamed input alone is accepted.
func TestHeaderMismatchRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Header)
		field  string
	}{
		{"input size", func(h *Header) { h.InputSize++ }, "input size"},
		{"input hash", func(h *Header) { h.InputHash = strings.Repeat("0", 64) }, "input hash"},
		{"shape", func(h *Header) { h.Shape = "target=google_search\n" }, "shape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := journalPath(t)
			j := mustOpen(t, path, testHeader, false)
			must(t, j.Submit(t0, 1, tasks(1, 5, 1)))
			must(t, j.Close())
			before, _ := os.ReadFile(path)

			h := testHeader
			tt.change(&h)
			_, err := Open(path, h, false)
			var me *MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("Open with changed %s: err = %v, want *MismatchError", tt.name, err)
			}
			if me.Field != tt.field || me.Path != path {
				t.Errorf("MismatchError = %+v, want Field %q Path %q", me, tt.field, path)
			}
			for _, want := range []string{tt.field, path} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not mention %q", err, want)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("a refused Open changed the journal")
			}
			mustOpen(t, path, testHeader, false).Close() // lock released
		})
	}
	t.Run("renamed input", func(t *testing.T) {
		t.Parallel()
		path := journalPath(t)
		mustOpen(t, path, testHeader, false).Close()
		h := testHeader
		h.InputName = "renamed.csv"
		j := mustOpen(t, path, h, false)
		defer j.Close()
		if j.State().Header.InputName != testHeader.InputName {
			t.Errorf("InputName = %q, want the recorded %q", j.State().Header.InputName, testHeader.InputName)
		}
	})
}

// TestRestartDiscards proves that restart replaces a journal, even one for
// another job, with an empty one for the new header.
func TestRestartDiscards(t *testing.T) {
	t.Parallel()
	path := journalPath(t)
	j := mustOpen(t, path, testHeader, false)
	must(t, j.Submit(t0, 1, tasks(1, 5, 1)))
	must(t, j.Finish(t0, OutcomeResult, rows(1, 3), Offsets{Results: 99}))
	must(t, j.InputEnd(5))
	must(t, j.Close())

	h := testHeader
	h.InputSize = 1
	j = mustOpen(t, path, h, true)
	s := j.State()
	if s.Header != h || s.DoneCount() != 0 || s.PendingCount() != 0 || s.Submitted != 0 ||
		s.Rows != -1 || s.Offsets != (Offsets{}) || len(s.Sessions) != 1 || s.MaxSubmittedRow() != 0 {
		t.Fatalf("after restart: %+v", viewOf(s))
	}
	must(t, j.Close())
	r := mustRead(t, path)
	if r.Header != h || r.DoneCount() != 0 || len(r.Sessions) != 1 {
		t.Fatalf("Read after restart: %+v", viewOf(r))
	}
}

// TestLockHeld proves that a second Open of a held journal fails with our
// pid, that Read still works meanwhile, and that Close releases the lock.
func TestLockHeld(t *testing.T) {
	t.Parallel()
	path := journalPath(t)
	j := mustOpen(t, path, testHeader, false)
	must(t, j.Submit(t0, 1, tasks(1, 3, 1)))
	must(t, j.Sync())

	_, err := Open(path, testHeader, false)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second Open: err = %v, want *LockedError", err)
	}
	if le.PID != os.Getpid() || le.Path != path {
		t.Errorf("LockedError = %+v, want PID %d, Path %s", le, os.Getpid(), path)
	}
	if !strings.Contains(err.Error(), "locked") {
		t.Errorf("message %q does not say locked", err)
	}
	if _, err := Open(path, testHeader, true); !errors.As(err, &le) {
		t.Errorf("Open with restart of a held journal: err = %v, want *LockedError", err)
	}

	if s := mustRead(t, path); s.PendingCount() != 3 {
		t.Errorf("Read while locked: %d pending, want 3", s.PendingCount())
	}

	must(t, j.Close())
	j2 := mustOpen(t, path, testHeader, false)
	if j2.State().PendingCount() != 3 {
		t.Errorf("Open after Close: %d pending, want 3", j2.State().PendingCount())
	}
	must(t, j2.Close())
}

// TestClosed proves that a closed Journal refuses writes.
func TestClosed(t *testing.T) {
	t.Parallel()
	j := mustOpen(t, journalPath(t), testHeader, false)
	must(t, j.Close())
	for name, err := range map[string]error{
		"Submit":   j.Submit(t0, 1, tasks(1, 1, 1)),
		"Finish":   j.Finish(t0, OutcomeResult, []int64{1}, Offsets{}),
		"InputEnd": j.InputEnd(1),
		"Sync":     j.Sync(),
		"Compact":  j.Compact(),
		"Close":    j.Close(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// TestInvalidArguments proves that what the journal cannot record is refused
// with ErrInvalid and leaves state and buffer untouched.
func TestInvalidArguments(t *testing.T) {
	t.Parallel()
	j := mustOpen(t, journalPath(t), testHeader, false)
	defer j.Close()
	must(t, j.Submit(t0, 1, tasks(1, 2, 1)))
	size, v := j.Size(), viewOf(j.State())
	tests := []struct {
		name string
		call func() error
	}{
		{"row 0", func() error { return j.Submit(t0, 1, []Task{{Row: 3, TaskID: 1}, {Row: 0, TaskID: 1}}) }},
		{"row above MaxRow", func() error { return j.Submit(t0, 1, []Task{{Row: MaxRow + 1, TaskID: 1}}) }},
		{"attempt 0", func() error { return j.Submit(t0, 0, tasks(3, 3, 1)) }},
		{"finish row -1", func() error { return j.Finish(t0, OutcomeResult, []int64{2, -1}, Offsets{}) }},
		{"outcome 0", func() error { return j.Finish(t0, 0, []int64{1}, Offsets{}) }},
		{"outcome 4", func() error { return j.Finish(t0, 4, []int64{1}, Offsets{}) }},
		{"negative offset", func() error { return j.Finish(t0, OutcomeResult, []int64{1}, Offsets{Rejects: -1}) }},
		{"input end -1", func() error { return j.InputEnd(-1) }},
	}
	for _, tt := range tests {
		if err := tt.call(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tt.name, err)
		}
	}
	if j.Size() != size {
		t.Errorf("refused calls grew the journal from %d to %d", size, j.Size())
	}
	sameState(t, "after refused calls", viewOf(j.State()), v)
}

// history builds a journal step by step, syncing after each step, and
// returns its bytes and the state at each synced size.
func history(t *testing.T, path string) ([]byte, []int64, []view) {
	t.Helper()
	j := mustOpen(t, path, testHeader, false)
	var sizes []int64
	var views []view
	step := func(err error) {
		t.Helper()
		must(t, err)
		must(t, j.Sync())
		sizes = append(sizes, j.Size())
		views = append(views, viewOf(j.State()))
	}
	step(nil) // the session record
	step(j.Submit(t0, 1, tasks(1, 6, 7434928397127555073)))
	step(j.Finish(t0.Add(time.Second), OutcomeResult, []int64{2, 1}, Offsets{Results: 200}))
	step(j.Finish(t0.Add(2*time.Second), OutcomeRejected, []int64{7}, Offsets{Results: 200, Rejects: 30}))
	step(j.InputEnd(7))
	step(j.Submit(t0.Add(3*time.Second), 2, []Task{{Row: 3, TaskID: 7434928397127559999}}))
	step(j.Finish(t0.Add(4*time.Second), OutcomeFailed, []int64{3, 4}, Offsets{Results: 200, Failed: 80, Rejects: 30}))
	must(t, j.Close())
	data, err := os.ReadFile(path)
	must(t, err)
	if int64(len(data)) != sizes[len(sizes)-1] {
		t.Fatalf("file has %d bytes, journal said %d", len(data), sizes[len(sizes)-1])
	}
	return data, sizes, views
}

// expectAt returns the state of the longest synced prefix within cut bytes.
func expectAt(sizes []int64, views []view, headerOnly view, cut int64) (view, int64) {
	want, end := headerOnly, int64(-1)
	for i, sz := range sizes {
		if sz <= cut {
			want, end = views[i], sz
		}
	}
	return want, end
}

// TestTornTail proves recovery from a write torn at every byte offset: Read
// replays the last whole record and reports the rest as torn, Open cuts the
// file back to it, and a cut inside the header is not taken for a journal.
func TestTornTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data, sizes, views := history(t, filepath.Join(dir, "orig"))
	hl := headerLen(t, data)
	must(t, os.WriteFile(filepath.Join(dir, "header"), data[:hl], 0o644))
	headerOnly := viewOf(mustRead(t, filepath.Join(dir, "header")))
	if len(headerOnly.Sessions) != 0 || headerOnly.Batches != 0 {
		t.Fatalf("header-only state has records: %+v", headerOnly)
	}

	for cut := 0; cut <= len(data); cut++ {
		path := filepath.Join(dir, "cut")
		must(t, os.WriteFile(path, data[:cut], 0o644))
		if cut < hl {
			if _, err := Read(path); !isNotJournal(err) {
				t.Fatalf("cut at %d, inside the header: Read err = %v, want ErrNotJournal", cut, err)
			}
			if _, err := Open(path, testHeader, false); !isNotJournal(err) {
				t.Fatalf("cut at %d, inside the header: Open err = %v, want ErrNotJournal", cut, err)
			}
			continue
		}
		want, end := expectAt(sizes, views, headerOnly, int64(cut))
		if end < 0 {
			end = int64(hl)
		}
		s := mustRead(t, path)
		sameState(t, "Read of cut file", viewOf(s), want)
		if s.TornBytes != int64(cut)-end {
			t.Fatalf("cut at %d: TornBytes = %d, want %d", cut, s.TornBytes, int64(cut)-end)
		}

		j := mustOpen(t, path, testHeader, false)
		sameAfterOpen(t, "Open of cut file", viewOf(j.State()), want)
		if got := fileSize(t, path); got != end {
			t.Fatalf("cut at %d: Open left %d bytes, want the %d of whole records", cut, got, end)
		}
		must(t, j.Submit(t0, 1, tasks(100, 101, 5)))
		after := viewOf(j.State())
		must(t, j.Close())
		s = mustRead(t, path)
		if s.TornBytes != 0 {
			t.Fatalf("cut at %d: torn bytes remain after Open and Close", cut)
		}
		sameState(t, "appended after recovery", viewOf(s), after)
	}
}

// TestCorruptByte proves that a flipped byte anywhere after the header ends
// replay at the record holding it, and one in the header is refused.
func TestCorruptByte(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data, sizes, views := history(t, filepath.Join(dir, "orig"))
	hl := headerLen(t, data)
	must(t, os.WriteFile(filepath.Join(dir, "header"), data[:hl], 0o644))
	headerOnly := viewOf(mustRead(t, filepath.Join(dir, "header")))

	path := filepath.Join(dir, "flip")
	for i := range data {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := slices.Clone(data)
			bad[i] ^= mask
			must(t, os.WriteFile(path, bad, 0o644))
			if i < hl {
				if _, err := Read(path); !isNotJournal(err) {
					t.Fatalf("byte %d of the header flipped: err = %v, want ErrNotJournal", i, err)
				}
				continue
			}
			// The record holding byte i starts at the last synced size <= i.
			want, _ := expectAt(sizes, views, headerOnly, int64(i))
			sameState(t, "Read with a flipped byte", viewOf(mustRead(t, path)), want)
		}
	}
}

// TestZeroTail proves that zeros after the last record, which a crash can
// leave where a write had extended the file, replay as a torn tail.
func TestZeroTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data, sizes, views := history(t, filepath.Join(dir, "orig"))
	path := filepath.Join(dir, "zeros")
	must(t, os.WriteFile(path, append(slices.Clone(data), make([]byte, 4096)...), 0o644))
	s := mustRead(t, path)
	sameState(t, "zero tail", viewOf(s), views[len(views)-1])
	if s.TornBytes != 4096 || sizes[len(sizes)-1] != int64(len(data)) {
		t.Fatalf("TornBytes = %d, want 4096", s.TornBytes)
	}
}

// TestNotJournal proves that a file that is not a journal is refused by Open
// and Read, not truncated, and that a newer format is refused by name.
func TestNotJournal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint")
	content := []byte("url\nhttps://example.com\n")
	must(t, os.WriteFile(path, content, 0o644))
	if _, err := Open(path, testHeader, false); !isNotJournal(err) {
		t.Fatalf("Open of a CSV file: err = %v, want ErrNotJournal", err)
	}
	if _, err := Read(path); !isNotJournal(err) {
		t.Fatalf("Read of a CSV file: err = %v, want ErrNotJournal", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Fatal("Open changed a file that is not a journal")
	}
	must(t, os.WriteFile(path, nil, 0o644))
	if _, err := Read(path); !isNotJournal(err) {
		t.Fatalf("Read of an empty file: err = %v, want ErrNotJournal", err)
	}

	p := append([]byte{recHeader}, magic...)
	p = append(p, version+1)
	must(t, os.WriteFile(path, frame(nil, p), 0o644))
	if _, err := Read(path); !errors.Is(err, ErrNewerVersion) {
		t.Fatalf("Read of format %d: err = %v, want ErrNewerVersion", version+1, err)
	}

	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of a missing file: err = %v, want fs.ErrNotExist", err)
	}
}

// buildLarge records n rows in batches, finishing each batch in groups out of
// order, and leaves the last batch pending.
func buildLarge(t testing.TB, j *Journal, n, batch int64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	id := uint64(7434928397127555073)
	off := Offsets{}
	for lo := int64(1); lo <= n; lo += batch {
		hi := min(lo+batch-1, n)
		must(t, j.Submit(t0, 1, tasks(lo, hi, id)))
		id += uint64(hi-lo+1) + 1000
		if hi == n {
			break
		}
		rs := rows(lo, hi)
		rng.Shuffle(len(rs), func(a, b int) { rs[a], rs[b] = rs[b], rs[a] })
		for len(rs) > 0 {
			k := min(len(rs), 250)
			off.Results += int64(k) * 100
			o := OutcomeResult
			if rs[0]%97 == 0 {
				o = OutcomeFailed
			}
			must(t, j.Finish(t0, o, rs[:k], off))
			rs = rs[k:]
		}
		must(t, j.Sync())
	}
	must(t, j.InputEnd(n))
	must(t, j.Sync())
}

// TestCompactPreservesState proves that a compacted journal replays to the
// same state in a far smaller file, and that records appended after the
// compaction survive a reopen.
func TestCompactPreservesState(t *testing.T) {
	t.Parallel()
	path := journalPath(t)
	j := mustOpen(t, path, testHeader, false)
	buildLarge(t, j, 100_000, 3000)
	before, live := j.Size(), viewOf(j.State())
	must(t, j.Compact())
	if j.Size() > before/20 {
		t.Errorf("compaction took the journal from %d to %d bytes, want under 1/20", before, j.Size())
	}
	if got := fileSize(t, path); got != j.Size() {
		t.Errorf("compacted file has %d bytes, Size() says %d", got, j.Size())
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("compaction left %s.tmp: %v", path, err)
	}
	sameState(t, "live state after Compact", viewOf(j.State()), live)
	sameState(t, "Read after Compact", viewOf(mustRead(t, path)), live)

	must(t, j.Finish(t0, OutcomeResult, rows(99_001, 99_500), Offsets{Results: 1}))
	must(t, j.Submit(t0, 2, tasks(99_501, 99_600, 5)))
	live = viewOf(j.State())
	must(t, j.Close())
	j = mustOpen(t, path, testHeader, false)
	sameAfterOpen(t, "reopened after Compact and appends", viewOf(j.State()), live)
	must(t, j.Compact())
	must(t, j.Close())
	if s := mustRead(t, path); len(s.Sessions) != 2 || s.PendingCount() != 500 {
		t.Errorf("after second Compact: %d sessions, %d pending; want 2, 500", len(s.Sessions), s.PendingCount())
	}
}

// TestKillDuringCompaction proves that a crash at any step of Compact leaves
// a journal that opens to the right state: before the rename, whatever part
// of the snapshot reached path.tmp is ignored and removed; after it, the
// snapshot is the journal.
func TestKillDuringCompaction(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := filepath.Join(dir, "old")
	j := mustOpen(t, old, testHeader, false)
	buildLarge(t, j, 10_000, 3000)
	want := viewOf(j.State())
	must(t, j.Close())
	oldData, _ := os.ReadFile(old)

	compacted := filepath.Join(dir, "compacted")
	must(t, os.WriteFile(compacted, oldData, 0o644))
	j = mustOpen(t, compacted, testHeader, false)
	must(t, j.Compact())
	want2 := viewOf(j.State())
	must(t, j.Close())
	newData, _ := os.ReadFile(compacted)
	// Drop the session record the Close wrote after the snapshot.
	snap := newData[:headerLen(t, newData)]
	snap = newData[:len(snap)+headerLen(t, newData[len(snap):])]

	for _, cut := range []int{0, 1, len(snap) / 2, len(snap) - 1, len(snap)} {
		path := filepath.Join(dir, "crash-before-rename")
		must(t, os.WriteFile(path, oldData, 0o644))
		must(t, os.WriteFile(path+".tmp", snap[:cut], 0o644))
		j := mustOpen(t, path, testHeader, false)
		sameAfterOpen(t, "old journal with a partial .tmp", viewOf(j.State()), want)
		if _, err := os.Stat(path + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf(".tmp of %d bytes not removed by Open: %v", cut, err)
		}
		must(t, j.Close())
	}

	path := filepath.Join(dir, "crash-after-rename")
	must(t, os.WriteFile(path, snap, 0o644))
	j = mustOpen(t, path, testHeader, false)
	sameAfterOpen(t, "snapshot alone", viewOf(j.State()), want2)
	must(t, j.Close())
}

// TestEachPending proves row order, early stop, and that finishing rows
// during the walk is safe.
func TestEachPending(t *testing.T) {
	t.Parallel()
	j := mustOpen(t, journalPath(t), testHeader, false)
	defer j.Close()
	must(t, j.Submit(t0, 1, []Task{{Row: 9, TaskID: 9}, {Row: 2, TaskID: 2}, {Row: 5, TaskID: 5}, {Row: 7, TaskID: 7}}))
	var seen []int64
	j.State().EachPending(func(r int64, p Pending) bool {
		if uint64(r) != p.TaskID {
			t.Errorf("row %d has task %d", r, p.TaskID)
		}
		seen = append(seen, r)
		must(t, j.Finish(t0, OutcomeResult, []int64{5}, Offsets{}))
		return r < 7
	})
	if want := []int64{2, 7}; !slices.Equal(seen, want) {
		t.Errorf("EachPending visited %v, want %v (5 finished during the walk, stop after 7)", seen, want)
	}
}

// TestMatchesModel proves, over random operations, that the journal's state
// (live and replayed, with compactions and reopens in between) equals a
// plain model of the rules: first outcome wins, a resubmission replaces the
// pending task, a done row never becomes pending.
func TestMatchesModel(t *testing.T) {
	t.Parallel()
	type pendM struct {
		id      uint64
		attempt int
	}
	path := journalPath(t)
	rng := rand.New(rand.NewPCG(3, 4))
	done := map[int64]Outcome{}
	pending := map[int64]pendM{}
	var submitted int64
	j := mustOpen(t, path, testHeader, false)
	defer func() { j.Close() }()
	for step := range 1500 {
		switch k := rng.IntN(20); {
		case k < 9:
			var ts []Task
			attempt := 1 + rng.IntN(3)
			for range 1 + rng.IntN(20) {
				r := 1 + rng.Int64N(300)
				ts = append(ts, Task{Row: r, TaskID: rng.Uint64()})
			}
			must(t, j.Submit(t0, attempt, ts))
			submitted += int64(len(ts))
			for _, x := range ts {
				if _, ok := done[x.Row]; !ok {
					pending[x.Row] = pendM{x.TaskID, attempt}
				}
			}
		case k < 18:
			o := Outcome(1 + rng.IntN(3))
			var rs []int64
			for range 1 + rng.IntN(20) {
				rs = append(rs, 1+rng.Int64N(300))
			}
			must(t, j.Finish(t0, o, rs, Offsets{Results: int64(step)}))
			for _, r := range rs {
				if _, ok := done[r]; !ok {
					done[r] = o
					delete(pending, r)
				}
			}
		case k == 18:
			must(t, j.Compact())
		default:
			must(t, j.Close())
			j = mustOpen(t, path, testHeader, false)
		}
		s := j.State()
		if err := s.check(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		var counts [4]int64
		for r := int64(1); r <= 300; r++ {
			o, isDone := done[r]
			counts[o]++
			if s.Done(r) != isDone {
				t.Fatalf("step %d: Done(%d) = %v, model %v", step, r, s.Done(r), isDone)
			}
			p, ok := s.Pending(r)
			m, mok := pending[r]
			if ok != mok || p.TaskID != m.id || p.Attempt != m.attempt {
				t.Fatalf("step %d: Pending(%d) = %+v %v, model %+v %v", step, r, p, ok, m, mok)
			}
		}
		if s.Results != counts[OutcomeResult] || s.Failed != counts[OutcomeFailed] || s.Rejected != counts[OutcomeRejected] ||
			s.Submitted != submitted || s.PendingCount() != len(pending) {
			t.Fatalf("step %d: counts %d/%d/%d submitted %d pending %d, model %v submitted %d pending %d", step,
				s.Results, s.Failed, s.Rejected, s.Submitted, s.PendingCount(), counts[1:], submitted, len(pending))
		}
	}
	live := viewOf(j.State())
	must(t, j.Sync())
	sameState(t, "Read at the end", viewOf(mustRead(t, path)), live)
}

// TestShouldCompact proves that a journal grown far beyond its state asks to
// be compacted, and a compacted one does not.
func TestShouldCompact(t *testing.T) {
	t.Parallel()
	j := mustOpen(t, journalPath(t), testHeader, false)
	defer j.Close()
	if j.ShouldCompact() {
		t.Fatal("an empty journal should not be compacted")
	}
	j.compactMin = 64 << 10 // instead of 4 MiB, to keep the test small
	buildLarge(t, j, 40_000, 1000)
	if j.Size() < j.compactMin {
		t.Fatalf("test journal of %d bytes is below the minimum", j.Size())
	}
	if !j.ShouldCompact() {
		t.Fatalf("a %d-byte journal of 40000 rows, nearly all done, should be compacted", j.Size())
	}
	must(t, j.Compact())
	if j.ShouldCompact() {
		t.Fatalf("a just-compacted %d-byte journal should not be compacted", j.Size())
	}
}

// TestOutcomeString proves the names used in messages.
func TestOutcomeString(t *testing.T) {
	t.Parallel()
	for o, want := range map[Outcome]string{OutcomeResult: "result", OutcomeFailed: "failed", OutcomeRejected: "rejected", 0: "Outcome(0)"} {
		if o.String() != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", o, o.String(), want)
		}
	}
}

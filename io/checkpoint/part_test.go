package checkpoint

import (
	"bytes"
	"os"
	"testing"
)

// TestOffsetsPart proves the results part of the offsets survives a
// reopen and a compaction, that finish records after a part record keep
// its part, and that a journal never rotated holds no part record (its
// bytes are what older versions wrote and read).
func TestOffsetsPart(t *testing.T) {
	t.Parallel()
	at := t0
	path, j := submittedJournal(t)
	must(t, j.Finish(at, OutcomeResult, rows(1, 3), Offsets{Results: 30, Failed: 20}))
	must(t, j.Sync())
	before, _ := os.ReadFile(path)
	if containsType(t, before, recPart) {
		t.Fatal("a part record in a journal that never rotated")
	}
	must(t, j.Finish(at, OutcomeResult, rows(4, 5), Offsets{Results: 7, Failed: 20, Part: 2}))
	must(t, j.Finish(at, OutcomeFailed, rows(6, 6), Offsets{Results: 9, Failed: 40, Part: 2}))
	must(t, j.Close())
	if st := mustRead(t, path); st.Offsets != (Offsets{Results: 9, Failed: 40, Part: 2}) || st.DoneCount() != 6 {
		t.Fatalf("replayed offsets %+v, %d done", st.Offsets, st.DoneCount())
	}
	j = mustOpen(t, path, testHeader, false)
	must(t, j.Compact())
	must(t, j.Close())
	if st := mustRead(t, path); st.Offsets != (Offsets{Results: 9, Failed: 40, Part: 2}) || st.DoneCount() != 6 {
		t.Fatalf("after compaction: offsets %+v, %d done", st.Offsets, st.DoneCount())
	}
	j = mustOpen(t, path, testHeader, false)
	must(t, j.Finish(at, OutcomeResult, rows(7, 7), Offsets{Results: 5, Failed: 40, Part: 3}))
	must(t, j.Close())
	if st := mustRead(t, path); st.Offsets.Part != 3 || st.Offsets.Results != 5 {
		t.Fatalf("after compaction and a new part: %+v", st.Offsets)
	}
	j = mustOpen(t, path, testHeader, false)
	if err := j.Finish(at, OutcomeResult, rows(8, 8), Offsets{Part: -1}); err == nil {
		t.Error("a negative part was recorded")
	}
	j.Close()
}

// containsType reports whether the journal data holds a record of type typ.
func containsType(t *testing.T, data []byte, typ byte) bool {
	t.Helper()
	r := newReader(bytes.NewReader(data), int64(len(data)))
	for {
		p, ok := r.next()
		if !ok {
			return false
		}
		if p[0] == typ {
			return true
		}
	}
}

// TestPartTornWithItsFinish proves a finish record that moves the results
// to a new part is one record with its sizes: a journal cut anywhere in
// it replays to the old part with the old sizes, never to the new part
// with the old part's size (which a resume would take for a part cut
// short, or cut a whole part back to).
func TestPartTornWithItsFinish(t *testing.T) {
	t.Parallel()
	at := t0
	path, j := submittedJournal(t)
	must(t, j.Finish(at, OutcomeResult, rows(1, 3), Offsets{Results: 1529, Part: 1}))
	must(t, j.Sync())
	before, _ := os.ReadFile(path)
	must(t, j.Finish(at, OutcomeResult, rows(4, 5), Offsets{Results: 672, Part: 2}))
	must(t, j.Close())
	after, _ := os.ReadFile(path)
	old, new := Offsets{Results: 1529, Part: 1}, Offsets{Results: 672, Part: 2}
	for n := len(before); n <= len(after); n++ {
		torn := journalPath(t)
		if err := os.WriteFile(torn, after[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		st := mustRead(t, torn)
		if st.Offsets != old && st.Offsets != new || (st.Offsets == new) != (n == len(after)) {
			t.Fatalf("cut at byte %d of %d: offsets %+v, want %+v (or %+v whole)", n, len(after), st.Offsets, old, new)
		}
	}
}

// TestVersion2PartRecord proves a journal of format 2, where a part record
// came right before the finish record it measured, reads to that part with
// the finish, to neither when torn between them, and that Open rewrites it
// in the current format with the part kept.
func TestVersion2PartRecord(t *testing.T) {
	t.Parallel()
	at := t0
	path, j := submittedJournal(t)
	must(t, j.Close())
	data, err := os.ReadFile(path)
	must(t, err)
	// A format 2 header, then what a format 2 program wrote on a rotation.
	rd := newReader(bytes.NewReader(data), int64(len(data)))
	p, _ := rd.next()
	hdr := bytes.Clone(p)
	hdr[1+len(magic)] = 2
	old := append(frame(nil, hdr), data[rd.pos:]...)
	old = frame(old, []byte{recPart, 2})
	// Torn after the part record: it counts with its finish, or not at all.
	must(t, os.WriteFile(path, old, 0o644))
	if st := mustRead(t, path); st.Offsets != (Offsets{}) || st.DoneCount() != 0 {
		t.Fatalf("format 2 journal torn after a part record: offsets %+v, %d done; want none", st.Offsets, st.DoneCount())
	}
	fin := append([]byte{recFinish}, appendTime(nil, at)...)
	fin = append(fin, byte(OutcomeResult), 77, 0, 0, 1, 2) // offsets 77, 0, 0; one row: 1 (a zigzag varint)
	old = frame(old, fin)
	must(t, os.WriteFile(path, old, 0o644))
	if st := mustRead(t, path); st.version != 2 || st.Offsets != (Offsets{Results: 77, Part: 2}) || st.DoneCount() != 1 {
		t.Fatalf("format 2 journal: version %d, offsets %+v, %d done", st.version, st.Offsets, st.DoneCount())
	}
	j = mustOpen(t, path, testHeader, false)
	must(t, j.Close())
	if st := mustRead(t, path); st.version != version || st.Offsets != (Offsets{Results: 77, Part: 2}) || st.DoneCount() != 1 {
		t.Fatalf("after Open: version %d, offsets %+v, %d done", st.version, st.Offsets, st.DoneCount())
	}
}

// submittedJournal opens a new journal of testHeader with rows 1 to 10
// submitted at t0.
func submittedJournal(t *testing.T) (string, *Journal) {
	t.Helper()
	path := journalPath(t)
	j := mustOpen(t, path, testHeader, false)
	must(t, j.Submit(t0, 1, tasks(1, 10, 100)))
	return path, j
}

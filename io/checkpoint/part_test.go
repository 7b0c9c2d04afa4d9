package checkpoint

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// TestOffsetsPart proves the results part of the offsets survives a
// reopen and a compaction, that finish records after a part record keep
// its part, and that a journal never rotated holds no part record (its
// bytes are what older versions wrote and read).
func TestOffsetsPart(t *testing.T) {
	t.Parallel()
	h := Header{InputName: "in", InputSize: 1, InputHash: "h", Shape: "s"}
	path := journalPath(t)
	j := mustOpen(t, path, h, false)
	at := time.Unix(1e9, 0)
	must(t, j.Submit(at, 1, tasks(1, 10, 100)))
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
	j = mustOpen(t, path, h, false)
	must(t, j.Compact())
	must(t, j.Close())
	if st := mustRead(t, path); st.Offsets != (Offsets{Results: 9, Failed: 40, Part: 2}) || st.DoneCount() != 6 {
		t.Fatalf("after compaction: offsets %+v, %d done", st.Offsets, st.DoneCount())
	}
	j = mustOpen(t, path, h, false)
	must(t, j.Finish(at, OutcomeResult, rows(7, 7), Offsets{Results: 5, Failed: 40, Part: 3}))
	must(t, j.Close())
	if st := mustRead(t, path); st.Offsets.Part != 3 || st.Offsets.Results != 5 {
		t.Fatalf("after compaction and a new part: %+v", st.Offsets)
	}
	j = mustOpen(t, path, h, false)
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

package checkpoint

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// TestReopenFailedRows proves that failed rows taken back to work are not
// done after a replay, whether or not the journal was compacted, that
// their earlier tasks are forgotten (a replay must not poll a faulted task
// for them), and that a row submitted again after the reopen is pending
// with its new task.
func TestReopenFailedRows(t *testing.T) {
	t.Parallel()
	for _, compact := range []bool{false, true} {
		path := journalPath(t)
		j := mustOpen(t, path, testHeader, false)
		must(t, j.Submit(t0, 1, tasks(1, 6, 7434928397127555073)))
		must(t, j.Finish(t0.Add(time.Second), OutcomeResult, []int64{1, 2}, Offsets{Results: 200}))
		must(t, j.Finish(t0.Add(2*time.Second), OutcomeFailed, []int64{3, 4, 5}, Offsets{Results: 200, Failed: 300}))
		must(t, j.Sync())
		must(t, j.Reopen(t0.Add(3*time.Second), []int64{5, 3}, 100, "tok"))
		must(t, j.Submit(t0.Add(4*time.Second), 1, []Task{{Row: 3, TaskID: 99}}))
		must(t, j.Sync())
		if compact {
			must(t, j.Compact())
		}
		must(t, j.Close())

		s := mustRead(t, path)
		if s.Failed != 1 || s.Results != 2 || s.DoneCount() != 3 {
			t.Errorf("compact %v: %d results, %d failed, %d done; want 2, 1, 3", compact, s.Results, s.Failed, s.DoneCount())
		}
		if s.Done(3) || s.Done(5) || !s.Done(4) {
			t.Errorf("compact %v: done 3, 4, 5 = %v %v %v; want false true false", compact, s.Done(3), s.Done(4), s.Done(5))
		}
		if p, ok := s.Pending(3); !ok || p.TaskID != 99 {
			t.Errorf("compact %v: Pending(3) = %+v, %v; want the new task 99", compact, p, ok)
		}
		if p, ok := s.Pending(5); ok {
			t.Errorf("compact %v: row 5 is pending with its failed task %d", compact, p.TaskID)
		}
		if s.Offsets.Failed != 100 {
			t.Errorf("compact %v: failed offset %d, want 100", compact, s.Offsets.Failed)
		}
		if want := map[bool]string{false: "tok", true: ""}[compact]; s.Reopened != want {
			t.Errorf("compact %v: Reopened %q, want %q", compact, s.Reopened, want)
		}
		if err := s.check(); err != nil {
			t.Errorf("compact %v: %v", compact, err)
		}
	}
}

// TestBitsetClear proves a row can leave the done set, also from a full
// page, which is shared and must not change.
func TestBitsetClear(t *testing.T) {
	t.Parallel()
	var a, b bitset
	a.setRange(1, pageBits+1)
	b.setRange(1, pageBits+1)
	if a.pages[0] != fullPage {
		t.Fatal("a full page is not the shared one")
	}
	if !a.clear(7) || a.clear(7) || a.has(7) || a.count() != pageBits-1 {
		t.Fatalf("clear 7: has %v, count %d", a.has(7), a.count())
	}
	if !b.has(7) || !fullPage.has7() {
		t.Fatal("clearing a row of one set changed another's")
	}
}

func (p *page) has7() bool { return p.w[0]&(1<<6) != 0 }

// TestLooksSurvive proves the looks recorded for pending tasks come back
// on replay, with or without a compaction between, that a resubmission
// starts its new task at no looks, and that rows not pending are ignored.
func TestLooksSurvive(t *testing.T) {
	t.Parallel()
	for _, compact := range []bool{false, true} {
		path := journalPath(t)
		j := mustOpen(t, path, testHeader, false)
		must(t, j.Submit(t0, 1, tasks(1, 4, 7434928397127555073)))
		must(t, j.Finish(t0, OutcomeResult, []int64{4}, Offsets{Results: 10}))
		must(t, j.Looks([]RowLooks{{Row: 2, Looks: 5}, {Row: 1, Looks: 2}, {Row: 3, Looks: 70000}, {Row: 4, Looks: 9}}))
		must(t, j.Submit(t0, 2, []Task{{Row: 1, TaskID: 5}}))
		must(t, j.Sync())
		if compact {
			must(t, j.Compact())
		}
		must(t, j.Close())
		s := mustRead(t, path)
		for row, want := range map[int64]int{1: 0, 2: 5, 3: 65535} {
			if p, ok := s.Pending(row); !ok || p.Looks != want {
				t.Errorf("compact %v: Pending(%d) = %+v, %v; want %d looks", compact, row, p, ok, want)
			}
		}
	}
}

// TestTaskOfSurvives proves the tasks kept for rows' results come back on
// replay, with or without a compaction between.
func TestTaskOfSurvives(t *testing.T) {
	t.Parallel()
	for _, compact := range []bool{false, true} {
		path := journalPath(t)
		j := mustOpen(t, path, testHeader, false)
		must(t, j.Submit(t0, 1, tasks(1, 3, 7434928397127555073)))
		must(t, j.Finish(t0, OutcomeResult, []int64{1, 3}, Offsets{Results: 10}))
		must(t, j.TaskOf([]Task{{Row: 3, TaskID: 7434928397127555075}, {Row: 1, TaskID: 7434928397127555073}}))
		must(t, j.Sync())
		if compact {
			must(t, j.Compact())
		}
		must(t, j.Close())
		s := mustRead(t, path)
		for row, want := range map[int64]uint64{1: 7434928397127555073, 3: 7434928397127555075} {
			if id, ok := s.ResultTask(row); !ok || id != want {
				t.Errorf("compact %v: ResultTask(%d) = %d, %v; want %d", compact, row, id, ok, want)
			}
		}
		if _, ok := s.ResultTask(2); ok {
			t.Errorf("compact %v: row 2 has a result task", compact)
		}
	}
}

// TestUpgradeVersion1 proves a journal of format 1 is read, and rewritten
// in the current format by Open before anything is appended, so that a program that
// reads only format 1 refuses it instead of taking the new records for a
// torn tail.
func TestUpgradeVersion1(t *testing.T) {
	t.Parallel()
	path := journalPath(t)
	j := mustOpen(t, path, testHeader, false)
	must(t, j.Submit(t0, 1, tasks(1, 3, 7434928397127555073)))
	must(t, j.Finish(t0, OutcomeResult, []int64{1}, Offsets{Results: 10}))
	must(t, j.Close())
	data, err := os.ReadFile(path)
	must(t, err)
	// Rewrite the header as format 1 (a whole new frame: the CRC changes).
	rd := newReader(bytes.NewReader(data), int64(len(data)))
	p, _ := rd.next()
	h := bytes.Clone(p)
	h[1+len(magic)] = 1
	old := append(frame(nil, h), data[rd.pos:]...)
	must(t, os.WriteFile(path, old, 0o644))

	s := mustRead(t, path)
	if s.version != 1 || s.Results != 1 || s.PendingCount() != 2 {
		t.Fatalf("format 1 journal read as version %d, %d results, %d pending", s.version, s.Results, s.PendingCount())
	}
	j = mustOpen(t, path, testHeader, false)
	must(t, j.Looks([]RowLooks{{Row: 2, Looks: 3}}))
	must(t, j.Sync())
	must(t, j.Close())
	s = mustRead(t, path)
	if s.version != version || s.Results != 1 || s.PendingCount() != 2 {
		t.Fatalf("after Open: version %d, %d results, %d pending", s.version, s.Results, s.PendingCount())
	}
	if p, _ := s.Pending(2); p.Looks != 3 {
		t.Errorf("looks after the upgrade: %d", p.Looks)
	}
}

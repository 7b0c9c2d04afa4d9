package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testHeader = Header{
	InputName: "urls.csv",
	InputSize: 12345,
	InputHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	Shape:     "target=universal\nbatch-size=3000\n",
}

// t0 is a time with nanoseconds, to show they survive.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

func journalPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "checkpoint")
}

func mustOpen(t testing.TB, path string, h Header, restart bool) *Journal {
	t.Helper()
	j, err := Open(path, h, restart)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return j
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustRead(t testing.TB, path string) *State {
	t.Helper()
	s, err := Read(path)
	if err != nil {
		t.Fatalf("Read(%s): %v", path, err)
	}
	if err := s.check(); err != nil {
		t.Fatalf("Read(%s): inconsistent state: %v", path, err)
	}
	return s
}

// tasks returns tasks for rows lo..hi with consecutive ids from id.
func tasks(lo, hi int64, id uint64) []Task {
	var ts []Task
	for r := lo; r <= hi; r++ {
		ts = append(ts, Task{Row: r, TaskID: id + uint64(r-lo)})
	}
	return ts
}

func rows(lo, hi int64) []int64 {
	var rs []int64
	for r := lo; r <= hi; r++ {
		rs = append(rs, r)
	}
	return rs
}

// view is a State in comparable values: done rows as runs, pending sorted,
// times as Unix ns. TornBytes is left out; tests check it on its own.
type view struct {
	Header                    Header
	Offsets                   Offsets
	Rows                      int64
	Results, Failed, Rejected int64
	Submitted, Batches        int64
	MaxSubmitted              int64
	Started, Updated          int64
	Sessions                  [][2]int64
	DoneRuns                  []int64
	Pending                   [][4]int64
}

func viewOf(s *State) view {
	ns := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixNano()
	}
	v := view{
		Header: s.Header, Offsets: s.Offsets, Rows: s.Rows,
		Results: s.Results, Failed: s.Failed, Rejected: s.Rejected,
		Submitted: s.Submitted, Batches: s.Batches, MaxSubmitted: s.MaxSubmittedRow(),
		Started: ns(s.Started), Updated: ns(s.Updated),
	}
	for _, x := range s.Sessions {
		v.Sessions = append(v.Sessions, [2]int64{ns(x.Start), x.DoneAtStart})
	}
	s.done.runs(func(n int64) { v.DoneRuns = append(v.DoneRuns, n) })
	s.EachPending(func(r int64, p Pending) bool {
		v.Pending = append(v.Pending, [4]int64{r, int64(p.TaskID), ns(p.SubmittedAt), int64(p.Attempt)})
		return true
	})
	return v
}

// sameAfterOpen compares the state of a reopened journal with want, the
// state before: Open adds a session, which is also the latest record.
func sameAfterOpen(t testing.TB, what string, got, want view) {
	t.Helper()
	if len(got.Sessions) == 0 {
		t.Fatalf("%s: Open added no session", what)
	}
	last := got.Sessions[len(got.Sessions)-1]
	if got.Updated != last[0] {
		t.Fatalf("%s: Updated = %d, not the new session's start %d", what, got.Updated, last[0])
	}
	got.Sessions = got.Sessions[:len(got.Sessions)-1]
	if len(got.Sessions) == 0 {
		got.Sessions = nil
	}
	got.Updated = want.Updated
	sameState(t, what, got, want)
}

func sameState(t testing.TB, what string, got, want view) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	var diff strings.Builder
	for i := range g.NumField() {
		a, b := g.Field(i).Interface(), w.Field(i).Interface()
		if !reflect.DeepEqual(a, b) {
			fmt.Fprintf(&diff, "\n%s:\n  got  %.300v\n  want %.300v", g.Type().Field(i).Name, a, b)
		}
	}
	t.Fatalf("%s: state differs:%s", what, diff.String())
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// headerLen returns the length of the header record at the start of data.
func headerLen(t testing.TB, data []byte) int {
	t.Helper()
	n, k := binary.Uvarint(data)
	if k <= 0 {
		t.Fatal("no header record")
	}
	return k + 4 + int(n)
}

func isNotJournal(err error) bool { return errors.Is(err, ErrNotJournal) }

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/job"
)

// statusJSON runs `status --json out` and decodes its report.
func statusJSON(t *testing.T, out string) statusReport {
	t.Helper()
	code, stdout, stderr := runCLI(t, "status", "--json", out)
	var r statusReport
	if code != 0 || json.Unmarshal([]byte(stdout), &r) != nil {
		t.Fatalf("status: exit %d, %s %s", code, stdout, stderr)
	}
	return r
}

// TestStatusOfARun proves what status says at each step of a job: after a
// run that stopped (--no-wait: no run going, the last session's end
// reason, the tasks paid, no ETA), while a run holds the lock (running,
// its pid, the session it is in), and after the job is done.
func TestStatusOfARun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	var b strings.Builder
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&b, "https://example.com/s/%d\n", i)
	}
	os.WriteFile(in, []byte(b.String()), 0o644)
	out := filepath.Join(dir, "out")
	code, _, stderr := runCLI(t, "run", "--sandbox", "--sandbox-args", "--delay 2s", "--no-wait", in, "-o", out, "--progress", "none")
	if code != exitStopped {
		t.Fatalf("--no-wait: exit %d, want 75: %s", code, stderr)
	}
	r := statusJSON(t, out)
	if r.Running || r.PID != 0 || r.TasksPaid != 50 || r.Pending != 50 || r.ETASeconds != -1 || r.ETANote != "no run is going" {
		t.Errorf("after --no-wait: %+v", r)
	}
	if l := r.LastSession; l == nil || l.Outcome != "stopped" || l.Stopped == "" || l.TasksPaid != 50 {
		t.Errorf("after --no-wait, last session %+v; want stopped, with its reason, 50 tasks paid", l)
	}
	if r.NearWindow != 0 || r.OldestPending == nil {
		t.Errorf("fresh pending tasks: %d near the results window, oldest %v", r.NearWindow, r.OldestPending)
	}
	code, stdout, _ := runCLI(t, "status", out)
	for _, want := range []string{"no run holds the checkpoint", "tasks paid  50", "stopped: ", "eta         none: no run is going"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("status text lacks %q:\n%s", want, stdout)
		}
	}

	// A run holding the lock (as one would, in this process).
	was, err := checkpoint.Read(filepath.Join(out, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := checkpoint.Open(filepath.Join(out, "checkpoint"), was.Header, false)
	if err != nil {
		t.Fatal(err)
	}
	must(t, j.Sync()) // the session's record
	r = statusJSON(t, out)
	if !r.Running || r.PID != os.Getpid() || r.Current == nil || r.Current.Outcome != "running" {
		t.Errorf("while a run holds the lock: running %v pid %d current %+v; want running, pid %d", r.Running, r.PID, r.Current, os.Getpid())
	}
	if l := r.LastSession; l == nil || l.Outcome != "stopped" {
		t.Errorf("while a run holds the lock, last session %+v; want the stopped one", l)
	}
	if r.ETASeconds != -1 || r.ETANote == "" {
		t.Errorf("a session that completed nothing has an ETA: %v (%q)", r.ETASeconds, r.ETANote)
	}
	code, stdout, _ = runCLI(t, "status", out)
	if code != 0 || !strings.Contains(stdout, "a run holds the checkpoint (pid ") {
		t.Errorf("status text while running:\n%s", stdout)
	}
	must(t, j.Close())

	// That "run" ended without a summary: status says so.
	r = statusJSON(t, out)
	if r.Running || r.LastSession == nil || r.LastSession.Outcome != "unknown" {
		t.Errorf("after a run that wrote no summary: running %v, last %+v; want outcome unknown", r.Running, r.LastSession)
	}

	code, _, stderr = runCLI(t, "run", "--sandbox", "--sandbox-args", "--delay 10ms", in, "-o", out, "--progress", "none")
	if code != exitOK {
		t.Fatalf("collect: exit %d: %s", code, stderr)
	}
	r = statusJSON(t, out)
	if r.Running || r.Done != 50 || r.Remaining != 0 || r.Pending != 0 || r.LastSession == nil || r.LastSession.Outcome != "done" || r.Sessions != 3 {
		t.Errorf("after the job is done: %+v, last %+v", r, r.LastSession)
	}
}

// TestStatusReport proves the figures status computes from a journal: the
// pending tasks within an hour of the 24-hour results window, and an ETA
// only while a run is going, from the rows its session completed.
func TestStatusReport(t *testing.T) {
	t.Parallel()
	now := time.Now()
	path := filepath.Join(t.TempDir(), "checkpoint")
	j, err := checkpoint.Open(path, checkpoint.Header{InputName: "in.txt", InputSize: 10, InputHash: "x"}, false)
	if err != nil {
		t.Fatal(err)
	}
	must(t, j.Submit(now.Add(-23*time.Hour-30*time.Minute), 1, []checkpoint.Task{{Row: 1, TaskID: 1}, {Row: 2, TaskID: 2}}))
	must(t, j.Submit(now.Add(-25*time.Hour), 1, []checkpoint.Task{{Row: 3, TaskID: 3}}))
	must(t, j.Submit(now.Add(-time.Hour), 1, []checkpoint.Task{{Row: 4, TaskID: 4}, {Row: 5, TaskID: 5}, {Row: 6, TaskID: 6}}))
	must(t, j.Finish(now, checkpoint.OutcomeResult, []int64{4, 5}, checkpoint.Offsets{Results: 10}))
	must(t, j.InputEnd(100))
	must(t, j.Close())
	st, err := checkpoint.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	start := st.Sessions[0].Start
	running := []job.SessionSummary{{Start: start, Outcome: "unknown", RowsCompleted: 2}}

	r := report(path, st, running, false, 0, -1, start.Add(10*time.Second))
	if r.NearWindow != 3 || r.OldestPending == nil || !r.OldestPending.Equal(now.Add(-25*time.Hour)) {
		t.Errorf("near the window: %d (oldest %v); want 3 (two at 23.5 h, one at 25 h)", r.NearWindow, r.OldestPending)
	}
	if r.ETASeconds != -1 || r.ETANote != "no run is going" || r.Current != nil {
		t.Errorf("no run going: ETA %v (%q), current %v; want none", r.ETASeconds, r.ETANote, r.Current)
	}

	r = report(path, st, running, true, 42, -1, start.Add(10*time.Second))
	if r.Current == nil || r.PID != 42 || r.RowsPerSec != 0.2 || r.ETASeconds != 98/0.2 {
		t.Errorf("running, 2 rows in 10 s, 98 left: current %+v, %v rows/s, ETA %v; want 0.2 rows/s, 490 s", r.Current, r.RowsPerSec, r.ETASeconds)
	}

	st.Rows = -1
	r = report(path, st, running, true, 42, -1, start.Add(10*time.Second))
	if r.ETASeconds != -1 || !strings.Contains(r.ETANote, "not read to its end") {
		t.Errorf("rows unknown: ETA %v (%q)", r.ETASeconds, r.ETANote)
	}
	r = report(path, st, running, true, 42, 100, start.Add(10*time.Second))
	if r.ETASeconds != 98/0.2 || !strings.Contains(r.ETANote, "estimated") {
		t.Errorf("rows unknown, 100 estimated: ETA %v (%q); want 490 s, said to be estimated", r.ETASeconds, r.ETANote)
	}
	st.Rows = 100
	running[0].RowsCompleted = 0
	r = report(path, st, running, true, 42, -1, start.Add(10*time.Second))
	if r.ETASeconds != -1 || !strings.Contains(r.ETANote, "no row completed") {
		t.Errorf("nothing completed: ETA %v (%q)", r.ETASeconds, r.ETANote)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestEstimateRows proves the estimate of an input's rows while the run
// has not read it to its end: the line ends of the file the journal
// fingerprinted (a last line without one too, a CSV's header not), and
// none for a gzip file or a file that is not the one fingerprinted.
func TestEstimateRows(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, data string) (string, int64) {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(data), 0o644))
		return p, int64(len(data))
	}
	txt, n := write("in.txt", "https://a.com\nhttps://b.com\nhttps://c.com")
	if got := estimateRows(txt, n); got != 3 {
		t.Errorf("txt: %d rows, want 3", got)
	}
	if got := estimateRows(txt, n-1); got != -1 {
		t.Errorf("a file of another size: %d, want -1", got)
	}
	csv, n := write("in.csv", "url\nhttps://a.com\nhttps://b.com\n")
	if got := estimateRows(csv, n); got != 2 {
		t.Errorf("csv: %d rows, want 2", got)
	}
	gz, n := write("in.txt.gz", "\x1f\x8b\x08rest\n\n")
	if got := estimateRows(gz, n); got != -1 {
		t.Errorf("gzip: %d, want -1", got)
	}
	if got := estimateRows(filepath.Join(dir, "missing"), 0); got != -1 {
		t.Errorf("missing: %d, want -1", got)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/records"
	"github.com/decodo-batch/decodo-batch/job"
)

// statusReport is what `status` prints; --json prints it as is.
type statusReport struct {
	Checkpoint string `json:"checkpoint"`
	Input      string `json:"input"`
	// Running: a run holds the checkpoint's lock now; PID is its process
	// id, when known.
	Running   bool  `json:"running"`
	PID       int   `json:"pid,omitempty"`
	Rows      int64 `json:"rows"`       // -1 while the input was not read to its end
	Submitted int64 `json:"submitted"`  // tasks paid for (as tasks_paid; kept for scripts)
	TasksPaid int64 `json:"tasks_paid"` // tasks submitted over all sessions, resubmissions included: what the API bills
	Done      int64 `json:"done"`
	Results   int64 `json:"results"`
	Failed    int64 `json:"failed"`
	Rejected  int64 `json:"rejected"`
	Pending   int64 `json:"pending"`
	// NearWindow counts the pending tasks submitted more than 23 hours
	// ago: the API keeps results for 24 hours, so they must be collected
	// within the hour (a run resubmits those it finds past the window).
	NearWindow    int64      `json:"pending_near_results_window"`
	OldestPending *time.Time `json:"oldest_pending,omitempty"`
	Remaining     int64      `json:"remaining"` // rows not done; -1 if unknown
	// RowsPerSec and ETASeconds are the running session's: rows it
	// completed per second since it started, as its journal says, and the
	// remaining rows at that rate. While the run has not read the input to
	// its end, the rows are estimated from the input file's lines, and
	// ETANote says so. With no run going there is no ETA (ETASeconds -1,
	// and ETANote says why).
	RowsPerSec float64   `json:"rows_per_second"`
	ETASeconds float64   `json:"eta_seconds"`
	ETANote    string    `json:"eta_note,omitempty"`
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
	Sessions   int       `json:"sessions"`
	// Current is the running session, when a run holds the lock.
	Current *job.SessionSummary `json:"current_session,omitempty"`
	// LastSession is the latest session that is not running: how it ended
	// (its outcome and stop reason, from summary.json; "unknown" if it
	// ended without writing one: killed, or the machine stopped).
	LastSession *job.SessionSummary `json:"last_session,omitempty"`
}

func statusCmd(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("status", flag.ContinueOnError)
	fset.SetOutput(stderr)
	asJSON := fset.Bool("json", false, "print JSON for scripts")
	cp := fset.String("checkpoint", "", "the journal, if not OUT/checkpoint")
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), "Usage: decodo-batch status [--json] [--checkpoint FILE] OUT\n\n")
		fset.PrintDefaults()
	}
	pos, err := parseArgs(fset, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 && *cp == "" {
		return usagef("status takes one OUT directory")
	}
	path := *cp
	if path == "" {
		path = filepath.Join(pos[0], "checkpoint")
	}
	st, err := checkpoint.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no checkpoint at %s: nothing has run there", path)
	}
	if err != nil {
		return err
	}
	pid, running, err := checkpoint.Holder(path)
	if err != nil {
		return err
	}
	out := filepath.Dir(path)
	if len(pos) == 1 {
		out = pos[0]
	}
	estimate := int64(-1)
	if running && st.Rows < 0 {
		estimate = estimateRows(st.Header.InputName, st.Header.InputSize)
	}
	r := report(path, st, job.Sessions(out, st), running, pid, estimate, time.Now())
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printStatus(stdout, &r)
	return nil
}

func printStatus(w io.Writer, r *statusReport) {
	rows, remaining := "unknown (input not read to its end yet)", "unknown"
	if r.Rows >= 0 {
		rows = fmt.Sprint(r.Rows)
		remaining = fmt.Sprint(r.Remaining)
	}
	run := "no run holds the checkpoint"
	if r.Running {
		run = "a run holds the checkpoint"
		if r.PID > 0 {
			run += fmt.Sprintf(" (pid %d)", r.PID)
		}
		if c := r.Current; c != nil {
			run += fmt.Sprintf(", running since %s, %d rows completed in this session", c.Start.Format(time.RFC3339), c.RowsCompleted)
		}
	}
	fmt.Fprintf(w, "checkpoint  %s\ninput       %s\nrun         %s\n", r.Checkpoint, r.Input, run)
	if l := r.LastSession; l != nil {
		how := l.Outcome
		if l.Stopped != "" {
			how += ": " + l.Stopped
		}
		if l.Outcome == "unknown" {
			how = "unknown: it ended without writing summary.json (killed, or the machine stopped)"
		}
		end := "?"
		if l.End != nil {
			end = l.End.Format(time.RFC3339)
		}
		paid := ", " + count(l.TasksPaid, "task", "tasks") + " paid"
		if l.Outcome == "unknown" {
			paid = "" // not known of a session without a summary
		}
		fmt.Fprintf(w, "last run    %s to %s, %d rows completed%s: %s\n", l.Start.Format(time.RFC3339), end, l.RowsCompleted, paid, how)
	}
	pending := fmt.Sprint(r.Pending)
	if r.NearWindow > 0 {
		pending += fmt.Sprintf(" (%d submitted over 23 h ago: the API keeps results 24 h; run again within the hour to collect them)", r.NearWindow)
	}
	eta := "none: " + r.ETANote
	if r.ETASeconds >= 0 {
		eta = (time.Duration(r.ETASeconds) * time.Second).String() + fmt.Sprintf(" (%.1f rows/s in this session)", r.RowsPerSec)
		if r.ETANote != "" {
			eta += "; " + r.ETANote
		}
	}
	fmt.Fprintf(w, "rows        %s\ntasks paid  %d\ndone        %d (results %d, failed %d, rejected %d)\npending     %s\nremaining   %s\neta         %s\nstarted     %s\nupdated     %s (%s)\n",
		rows, r.TasksPaid, r.Done, r.Results, r.Failed, r.Rejected, pending, remaining,
		eta, r.Started.Format(time.RFC3339), r.Updated.Format(time.RFC3339), count(int64(r.Sessions), "session", "sessions"))
}

// estimateRows estimates the rows of the input at name, which a run reads
// to its end only as fast as it submits: the line ends of the file, less a
// CSV's header, if it is still the plain file of size bytes the journal
// fingerprinted; else -1. (Blank and comment lines, and CSV fields across
// lines, make it a little high.) It reads the file once, without parsing.
func estimateRows(name string, size int64) int64 {
	f, err := os.Open(name)
	if err != nil {
		return -1
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var lines, n int64
	var last byte
	for {
		k, err := f.Read(buf)
		if n == 0 && k >= 2 && buf[0] == 0x1f && buf[1] == 0x8b {
			return -1 // gzip: its lines are not counted without decompressing
		}
		lines += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if k > 0 {
			last = buf[k-1]
		}
		n += int64(k)
		if err != nil {
			break
		}
	}
	if n != size {
		return -1 // another file, or grown: not the rows of the running session
	}
	if n > 0 && last != '\n' {
		lines++
	}
	if format, _ := records.FormatFromName(name); format == "csv" && lines > 0 {
		lines--
	}
	return lines
}

// report makes the status of a checkpoint whose state is st and sessions
// sessions (see [job.Sessions]), with a run holding it (pid) or not, at
// time now; rowsEstimate is an estimate of the input's rows when the
// journal does not know them yet, else -1.
func report(path string, st *checkpoint.State, sessions []job.SessionSummary, running bool, pid int, rowsEstimate int64, now time.Time) statusReport {
	r := statusReport{
		Checkpoint: path, Input: st.Header.InputName, Running: running, PID: pid, Rows: st.Rows,
		Submitted: st.Submitted, TasksPaid: st.Submitted, Done: st.DoneCount(),
		Results: st.Results, Failed: st.Failed, Rejected: st.Rejected,
		Pending: int64(st.PendingCount()), Remaining: -1, ETASeconds: -1,
		Started: st.Started, Updated: st.Updated, Sessions: len(st.Sessions),
	}
	if st.Rows >= 0 {
		r.Remaining = st.Rows - r.Done
	}
	near := now.Add(-(job.ResultsWindow - time.Hour))
	st.EachPending(func(_ int64, p checkpoint.Pending) bool {
		if p.SubmittedAt.IsZero() {
			return true
		}
		if p.SubmittedAt.Before(near) {
			r.NearWindow++
		}
		if r.OldestPending == nil || p.SubmittedAt.Before(*r.OldestPending) {
			t := p.SubmittedAt
			r.OldestPending = &t
		}
		return true
	})
	// The running session is the journal's last, once its first sync has
	// recorded it: until then the last is an earlier one, which ended.
	if running && len(sessions) > 0 && sessions[len(sessions)-1].End == nil {
		c := sessions[len(sessions)-1]
		c.Outcome = "running"
		r.Current = &c
		sessions = sessions[:len(sessions)-1]
	}
	if len(sessions) > 0 {
		r.LastSession = &sessions[len(sessions)-1]
	}
	// An ETA only while a run is going, from its own pace: the rows its
	// session completed (the journal is synced every 100 ms) over the time
	// since it started. Another process's progress is not known otherwise.
	switch c := r.Current; {
	case !running:
		r.ETANote = "no run is going"
	case r.Remaining == 0:
		r.ETASeconds = 0
	case r.Remaining < 0 && rowsEstimate < 0:
		r.ETANote = "the input was not read to its end yet: the number of rows is not known"
	case c == nil || c.RowsCompleted <= 0 || !now.After(c.Start):
		r.ETANote = "no row completed in this session yet"
	default:
		left := r.Remaining
		if left < 0 {
			left = max(rowsEstimate-r.Done, 0)
			r.ETANote = fmt.Sprintf("estimated: the input was not read to its end yet; its %d lines are taken for its rows", rowsEstimate)
		}
		r.RowsPerSec = float64(c.RowsCompleted) / now.Sub(c.Start).Seconds()
		r.ETASeconds = float64(left) / r.RowsPerSec
	}
	return r
}

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/decodo-batch/decodo-batch/io/checkpoint"
)

// statusReport is what `status` prints; --json prints it as is.
type statusReport struct {
	Checkpoint string    `json:"checkpoint"`
	Input      string    `json:"input"`
	Rows       int64     `json:"rows"` // -1 while the input was not read to its end
	Submitted  int64     `json:"submitted"`
	Done       int64     `json:"done"`
	Results    int64     `json:"results"`
	Failed     int64     `json:"failed"`
	Rejected   int64     `json:"rejected"`
	Pending    int64     `json:"pending"`
	Remaining  int64     `json:"remaining"` // rows not done; -1 if unknown
	RowsPerSec float64   `json:"rows_per_second"`
	ETASeconds float64   `json:"eta_seconds"` // -1 if unknown
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
	Sessions   int       `json:"sessions"`
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
	r := report(path, st, time.Now())
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	rows, remaining, eta := "unknown (input not read to its end yet)", "unknown", "unknown"
	if r.Rows >= 0 {
		rows = fmt.Sprint(r.Rows)
		remaining = fmt.Sprint(r.Remaining)
	}
	if r.ETASeconds >= 0 {
		eta = (time.Duration(r.ETASeconds) * time.Second).String()
	}
	fmt.Fprintf(stdout, "checkpoint  %s\ninput       %s\nrows        %s\nsubmitted   %s\ndone        %d (results %d, failed %d, rejected %d)\npending     %d\nremaining   %s\nrate        %.1f rows/s\neta         %s\nstarted     %s\nupdated     %s (%s)\n",
		r.Checkpoint, r.Input, rows, count(r.Submitted, "task", "tasks"), r.Done, r.Results, r.Failed, r.Rejected, r.Pending, remaining,
		r.RowsPerSec, eta, r.Started.Format(time.RFC3339), r.Updated.Format(time.RFC3339), count(int64(r.Sessions), "session", "sessions"))
	return nil
}

func report(path string, st *checkpoint.State, now time.Time) statusReport {
	r := statusReport{
		Checkpoint: path, Input: st.Header.InputName, Rows: st.Rows,
		Submitted: st.Submitted, Done: st.DoneCount(),
		Results: st.Results, Failed: st.Failed, Rejected: st.Rejected,
		Pending: int64(st.PendingCount()), Remaining: -1, ETASeconds: -1,
		Started: st.Started, Updated: st.Updated, Sessions: len(st.Sessions),
	}
	if st.Rows >= 0 {
		r.Remaining = st.Rows - r.Done
	}
	// The rate of the last session: only its end is known.
	if k := len(st.Sessions); k > 0 {
		s := st.Sessions[k-1]
		n := r.Done - s.DoneAtStart
		if secs := st.Updated.Sub(s.Start).Seconds(); n > 0 && secs > 0 {
			r.RowsPerSec = float64(n) / secs
		}
	}
	if r.Remaining == 0 {
		r.ETASeconds = 0
	} else if r.Remaining > 0 && r.RowsPerSec > 0 {
		r.ETASeconds = float64(r.Remaining) / r.RowsPerSec
	}
	return r
}

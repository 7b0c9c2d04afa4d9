// Package job runs a whole decodo-batch job: it wires the input reader, the
// batcher and the poller to the output files and the checkpoint, which one
// goroutine (the owner, in this package) writes. Data flows
//
//	records -> batcher -> poller -> results
//
// with the checkpoint beside it, and every row of the input ends in exactly
// one output file, exactly once, however often the run is interrupted.
package job

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/decodo-batch/decodo-batch/batcher"
	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/records"
	"github.com/decodo-batch/decodo-batch/io/results"
	"github.com/decodo-batch/decodo-batch/poller"
)

// ErrStopped is returned by [Run] when the run stopped before every row was
// done (a signal, --max-runtime, --no-wait): run again to continue.
var ErrStopped = errors.New("stopped before the end; run the same command again to continue")

// ResultsWindow is how long the API keeps results; a task submitted longer
// ago than this (less a margin) is submitted again on resume.
const ResultsWindow = 24 * time.Hour

// DefaultMaxInFlight bounds the tasks submitted and not yet done. At the
// API's pace (3000 tasks a second, a few seconds each) a run has some
// 20,000 in flight; the bound only bites when results come back slower
// than batches go out.
const DefaultMaxInFlight = 50_000

// Config is a run's settings.
type Config struct {
	Input      string // path, or "-" for stdin
	Out        string // output directory
	Checkpoint string // journal path; "" for Out/checkpoint
	Records    records.Options
	Batch      batcher.Config
	Poll       poller.Config
	Retries    int           // resubmissions of a faulted or expired task
	MaxRuntime time.Duration // stop cleanly after this long; 0 for none
	NoWait     bool          // submit everything, then stop
	Restart    bool          // discard an existing checkpoint and outputs
	Compress   bool          // gzip the output files
	Progress   string        // "bar", "log" or "none"
	// MaxInFlight holds submissions back while this many tasks are being
	// polled [DefaultMaxInFlight].
	MaxInFlight int
	API         API
	Stderr      io.Writer
	Log         *slog.Logger
}

func (c *Config) checkpointPath() string {
	if c.Checkpoint != "" {
		return c.Checkpoint
	}
	return filepath.Join(c.Out, "checkpoint")
}

// Fingerprint returns the size and sha256 of the input file; stdin has
// none (size -1).
func Fingerprint(path string) (int64, string, error) {
	if path == "-" {
		return -1, "", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, "", fmt.Errorf("open input: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("read input %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// shape is the canonical text of the options that decide which rows exist
// and what they ask for; a change between runs refuses the resume.
func shape(c *Config) string {
	return fmt.Sprintf("format=%q target=%q params=%s", c.Records.Format, c.Records.DefaultTarget, c.Records.Defaults)
}

// event is what the producers (reader, batcher, poller) tell the owner.
type event interface{}

type (
	evReject struct {
		row, line     int64
		input, reason string
	}
	evRefused struct {
		items  []batcher.Item
		reason string
	} // the API refused them
	evFailed struct {
		items  []batcher.Item
		reason string
	} // could not be submitted
	evSubmitted struct {
		items []batcher.Item
		ids   []string
		at    time.Time
	}
	evDone struct {
		t   *poller.Task
		res []decodo.Result
		at  time.Time
	}
	evLost struct {
		t      *poller.Task
		reason string
	}
	evResume struct {
		rec records.Record
		p   checkpoint.Pending
	}
	evInputEnd struct{ rows int64 }
)

// sink turns batcher and poller callbacks into events for the owner.
// Submissions have a channel of their own, which the owner serves first:
// until their task ids are in the journal, a crash would pay for them twice.
type sink struct{ ch, submits chan<- event }

func (s sink) Submitted(items []batcher.Item, ids []string, at time.Time) {
	s.submits <- evSubmitted{items, ids, at}
}
func (s sink) Rejected(items []batcher.Item, reason string) { s.ch <- evRefused{items, reason} }
func (s sink) Failed(items []batcher.Item, reason string)   { s.ch <- evFailed{items, reason} }
func (s sink) Done(t *poller.Task, res []decodo.Result, at time.Time) {
	s.ch <- evDone{t, res, at}
}
func (s sink) Lost(t *poller.Task, reason string) { s.ch <- evLost{t, reason} }

// resumeView is the checkpoint's state frozen at start, for the reader
// (the live state belongs to the owner).
type resumeView struct {
	done    []uint64
	pending map[int64]checkpoint.Pending
}

func (v *resumeView) isDone(row int64) bool {
	i := row >> 6
	return i < int64(len(v.done)) && v.done[i]&(1<<(row&63)) != 0
}

func freeze(st *checkpoint.State) *resumeView {
	v := &resumeView{pending: make(map[int64]checkpoint.Pending, st.PendingCount())}
	maxRow := st.MaxSubmittedRow()
	v.done = make([]uint64, maxRow/64+1)
	for r := int64(1); r <= maxRow; r++ {
		if st.Done(r) {
			v.done[r>>6] |= 1 << (r & 63)
		}
	}
	st.EachPending(func(row int64, p checkpoint.Pending) bool {
		v.pending[row] = p
		return true
	})
	return v
}

// Run runs the job to its end, or until it stops. It returns the summary
// (also written to OUT/summary.json) and: nil when every row is done;
// [ErrStopped] when it stopped early; *[checkpoint.LockedError] when another
// run holds the checkpoint; [decodo.ErrAuth] when the token is refused; or
// another fatal error (input, output, checkpoint).
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	started := time.Now()
	size, hash, err := Fingerprint(cfg.Input)
	if err != nil {
		return nil, err
	}
	hdr := checkpoint.Header{InputName: cfg.Input, InputSize: size, InputHash: hash, Shape: shape(&cfg)}
	if cfg.Input == "-" {
		hdr.InputHash = "stdin"
		if _, err := os.Stat(cfg.checkpointPath()); err == nil && !cfg.Restart {
			return nil, fmt.Errorf("%s holds a checkpoint, and input from stdin cannot be checked against it: resume with the input file, or use --restart", cfg.Out)
		}
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	j, err := checkpoint.Open(cfg.checkpointPath(), hdr, cfg.Restart)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	st := j.State()
	// After --restart the state is new: its offsets are zero.
	w, err := results.Open(cfg.Out, cfg.Compress, results.Offsets(st.Offsets))
	if err != nil {
		return nil, err
	}
	defer w.Close()
	resumed := st.DoneCount() > 0 || st.PendingCount() > 0
	view := freeze(st)
	if resumed {
		cfg.Log.Info("resuming", "done", st.DoneCount(), "pending", st.PendingCount(), "checkpoint", cfg.checkpointPath())
	}

	api := newCounted(cfg.API)
	events, submits := make(chan event, 1024), make(chan event, 16)
	snk := sink{events, submits}
	o := &owner{
		cfg: &cfg, j: j, st: st, w: w, api: api, events: events, submits: submits,
		sum:   Summary{Input: cfg.Input, Rows: -1, Started: started, Resumed: resumed},
		total: -1,
	}
	o.sum.Skipped = st.DoneCount()
	o.p = poller.New(api, snk, cfg.Poll)
	maxInFlight := cfg.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}
	// Memory grows with the tasks in flight: submitting faster than
	// results come back only piles them up.
	cfg.Batch.Hold = func() bool { return o.p.Len() >= maxInFlight }
	o.b = batcher.New(api, snk, cfg.Batch)

	rctx, stopRead := context.WithCancel(context.Background())
	bctx, stopBatch := context.WithCancel(context.Background())
	pctx, stopPoll := context.WithCancel(context.Background())
	o.stopRead, o.stopBatch, o.stopPoll = stopRead, stopBatch, stopPoll
	defer stopRead()
	defer stopBatch()
	defer stopPoll()

	items := make(chan batcher.Item)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Add(3)
	go func() { defer wg.Done(); errs <- o.read(rctx, view, items) }()
	go func() { defer wg.Done(); errs <- o.b.Run(bctx, items) }()
	go func() { defer wg.Done(); errs <- o.p.Run(pctx) }()
	quiet := make(chan struct{})
	go func() { wg.Wait(); close(quiet) }()

	prog := newProgress(cfg.Progress, cfg.Stderr, cfg.Log, o)
	err = o.loop(ctx, errs, quiet)
	prog.stop()
	return o.finish(err)
}

// read streams the input: bad rows to the owner, rows done by an earlier
// run skipped, rows pending from an earlier run to the owner, new rows to
// the batcher.
func (o *owner) read(ctx context.Context, view *resumeView, out chan<- batcher.Item) error {
	defer close(out)
	rd, err := records.Open(o.cfg.Input, o.cfg.Records)
	if err != nil {
		return err
	}
	defer rd.Close()
	var rows int64
	send := func(e event) bool {
		select {
		case o.events <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			send(evInputEnd{rows})
			return nil
		}
		var bad *records.RowError
		if errors.As(err, &bad) {
			rows = bad.Row
			if !view.isDone(bad.Row) && !send(evReject{bad.Row, bad.Line, bad.Input, bad.Reason}) {
				return nil
			}
			continue
		}
		if err != nil {
			return err
		}
		rows = rec.Row
		if view.isDone(rec.Row) {
			continue
		}
		if p, ok := view.pending[rec.Row]; ok {
			if !send(evResume{rec, p}) {
				return nil
			}
			continue
		}
		o.queued.Add(1)
		select {
		case out <- batcher.Item{Record: rec, Attempt: 1}:
		case <-ctx.Done():
			o.queued.Add(-1)
			return nil
		}
	}
}

func taskID(id string) (uint64, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the API answered task id %q, which is not a decimal number: cannot record it in the checkpoint", id)
	}
	return n, nil
}

func rowOf(it *batcher.Item) results.Row {
	return results.Row{Row: it.Row, Line: it.Line, ID: it.ID, Target: it.Target, URL: it.URL, Query: it.Query}
}

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
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/decodo-batch/decodo-batch/batcher"
	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/durable"
	"github.com/decodo-batch/decodo-batch/io/records"
	"github.com/decodo-batch/decodo-batch/io/results"
	"github.com/decodo-batch/decodo-batch/poller"
)

// Errors [Run] returns besides fatal ones; the command line maps them to
// exit codes.
var (
	// ErrStopped: the run stopped before every row was done (a signal, the
	// runtime limit, no-wait): run again to continue.
	ErrStopped = errors.New("stopped before the end; run the same command again to continue")
	// ErrPartial: the run finished, but some rows failed or were rejected.
	ErrPartial = errors.New("finished, but some rows failed or were rejected")
	// ErrStdinCheckpoint: OUT holds a checkpoint, and input from stdin
	// cannot be checked against it.
	ErrStdinCheckpoint = errors.New("the output directory holds a checkpoint, and input from stdin cannot be checked against it")
	// ErrForeignCheckpoint: most of the checkpoint's tasks are unknown to
	// the API: another account or endpoint. Nothing is paid for again.
	ErrForeignCheckpoint = errors.New("the API does not know the tasks of this checkpoint: another account or endpoint?")
)

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
	Retries    int // resubmissions of a faulted or expired task
	// OutageBudget: how long the API may fail every request before the run
	// stops with decodo.ErrUnavailable [decodo.DefaultOutageBudget].
	OutageBudget time.Duration
	MaxRuntime   time.Duration // stop cleanly after this long; 0 for none
	NoWait       bool          // submit everything, then stop
	Restart      bool          // discard an existing checkpoint and outputs
	Compress     bool          // gzip the output files
	Progress     string        // "bar", "log" or "none"
	// MaxInFlight holds submissions back while this many tasks are being
	// polled [DefaultMaxInFlight].
	MaxInFlight int
	API         API
	Stderr      io.Writer
	Log         *slog.Logger

	forceCompact bool // compact the journal at every commit (tests)
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
	s := fmt.Sprintf("format=%q target=%q params=%s", c.Records.Format, c.Records.DefaultTarget, c.Records.Defaults)
	if allow := c.Records.AllowParams; len(allow) > 0 {
		// Allowed parameters decide which rows are valid. (Written only
		// when set, so that checkpoints written before the option resume.)
		s += fmt.Sprintf(" allow=%q", slices.Sorted(slices.Values(allow)))
	}
	return s
}

// Run runs the job to its end, or until it stops. It returns the summary
// (also written to OUT/summary.json) and: nil when every row has a result;
// [ErrPartial] when every row is done but some failed or were rejected;
// [ErrStopped] when it stopped early; *[checkpoint.LockedError] when another
// run holds the checkpoint; *[checkpoint.MismatchError] when the checkpoint
// belongs to another input; [ErrStdinCheckpoint]; [decodo.ErrAuth] (wrapped)
// when the token is refused; or another fatal error (input, output,
// checkpoint).
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	// One outage for submissions and polls: the API is down until any
	// request succeeds.
	outage := &decodo.Outage{Budget: cfg.OutageBudget}
	cfg.Batch.Outage, cfg.Poll.Outage = outage, outage
	started := time.Now()
	size, hash, err := Fingerprint(cfg.Input)
	if err != nil {
		return nil, err
	}
	hdr := checkpoint.Header{InputName: cfg.Input, InputSize: size, InputHash: hash, Shape: shape(&cfg)}
	if cfg.Input == "-" {
		hdr.InputHash = "stdin"
		if _, err := os.Stat(cfg.checkpointPath()); err == nil && !cfg.Restart {
			return nil, fmt.Errorf("%s: %w", cfg.Out, ErrStdinCheckpoint)
		}
	}
	// The names of OUT (and of the checkpoint's directory) must survive a
	// power cut before the journal records a task that is paid for.
	dirs := []string{cfg.Out}
	if d := filepath.Dir(cfg.checkpointPath()); filepath.Clean(d) != filepath.Clean(cfg.Out) {
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		if err := durable.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("create output directory: %w", err)
		}
	}
	j, err := checkpoint.Open(cfg.checkpointPath(), hdr, cfg.Restart)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	st := j.State()
	// After a restart the state is new: its offsets are zero.
	w, err := results.Open(cfg.Out, cfg.Compress, st.Offsets)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	resumed := st.DoneCount() > 0 || st.PendingCount() > 0
	if resumed {
		cfg.Log.Info("resuming", "done", st.DoneCount(), "pending", st.PendingCount(), "checkpoint", cfg.checkpointPath())
	}

	api := newCounted(cfg.API)
	o := newOwner(&cfg, j, w, api)
	o.sum = Summary{Input: cfg.Input, Rows: -1, Started: started, Resumed: resumed, Skipped: st.DoneCount()}

	rctx, stopRead := context.WithCancel(context.Background())
	bctx, stopBatch := context.WithCancel(context.Background())
	pctx, stopPoll := context.WithCancel(context.Background())
	o.stopRead, o.stopBatch, o.stopPoll = stopRead, stopBatch, stopPoll
	defer stopRead()
	defer stopBatch()
	defer stopPoll()

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Add(3)
	go func() { defer wg.Done(); errs <- read(rctx, cfg.Input, cfg.Records, o.reads) }()
	go func() {
		defer wg.Done()
		errs <- o.b.Run(bctx, batcher.Input{Rows: o.rows, Again: o.again, Hold: o.hold}, o.batches)
	}()
	go func() { defer wg.Done(); errs <- o.p.Run(pctx, o.polls) }()
	quiet := make(chan struct{})
	go func() { wg.Wait(); close(quiet) }()

	prog := newProgress(cfg.Progress, cfg.Stderr, cfg.Log, &o.prog)
	err = o.loop(ctx, errs, quiet)
	prog.stop()
	return o.finish(err)
}

// readEvent is what the reader tells the owner: a valid record, a bad row,
// or the end of the input (End, with the number of rows).
type readEvent struct {
	rec  records.Record
	bad  *records.RowError
	end  bool
	rows int64
}

// read streams the input to the owner, which decides what each row needs.
// It returns nil at the end of the input or when ctx is done, and a fatal
// read error otherwise.
func read(ctx context.Context, path string, opt records.Options, out chan<- readEvent) error {
	defer close(out)
	rd, err := records.Open(path, opt)
	if err != nil {
		return err
	}
	defer rd.Close()
	var rows int64
	send := func(e readEvent) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		rec, err := rd.Next()
		var bad *records.RowError
		switch {
		case err == io.EOF:
			send(readEvent{end: true, rows: rows})
			return nil
		case errors.As(err, &bad):
			rows = bad.Row
			if !send(readEvent{bad: bad}) {
				return nil
			}
		case err != nil:
			return err
		default:
			rows = rec.Row
			if !send(readEvent{rec: rec}) {
				return nil
			}
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

func rowOf(rec *records.Record) results.Row {
	r := results.Row{Row: rec.Row, Line: rec.Line, ID: rec.ID, Target: rec.Target, Params: string(rec.Params)}
	if in, v := rec.Input(); in != decodo.InputNone {
		r.Field, r.Input = in.String(), v
	}
	return r
}

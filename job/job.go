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
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/decodo-batch/decodo-batch/batcher"
	"github.com/decodo-batch/decodo-batch/callback"
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
	// RetryFailed puts the failed rows back to work, those of
	// RetryClasses only when it is not empty (see [Classes]).
	RetryFailed  bool
	RetryClasses []string
	// Dedupe: rows asking for the same (target, input, parameters) share
	// one task; each still gets its own output line.
	Dedupe bool
	// MaxTasks: never pay for more than this many tasks over the whole
	// job, first submissions and resubmissions; rows past it fail with
	// class budget. 0: no limit.
	MaxTasks int64
	// OutageBudget: how long the API may fail every request before the run
	// stops with decodo.ErrUnavailable [decodo.DefaultOutageBudget].
	OutageBudget time.Duration
	MaxRuntime   time.Duration // stop cleanly after this long; 0 for none
	NoWait       bool          // submit everything, then stop
	Restart      bool          // discard an existing checkpoint and outputs
	Compress     bool          // compress the output files (gzip unless Codec says zstd)
	Codec        string        // with Compress: "gzip" (also "") or "zstd"
	ContentDir   bool          // each page's content in its own file under Out/content
	RotateSize   int64         // start a new results part past this many bytes; 0: never
	Progress     string        // "bar", "log" or "none"
	// MaxInFlight holds submissions back while this many tasks are being
	// polled [DefaultMaxInFlight].
	MaxInFlight int
	// CallbackURL, when set, is the public address the API POSTs finished
	// tasks to (see package callback); Callback tunes the receiver that
	// listens for them (Callback.Addr). A URL whose port is 0 takes the
	// port the receiver got (tests, the sandbox).
	CallbackURL string
	Callback    callback.Config
	API         API
	Stderr      io.Writer
	Log         *slog.Logger

	forceCompact bool // compact the journal at every commit (tests)
}

// outputs returns how the output files are written; the content files of
// rows st does not say are done are removed.
func (c *Config) outputs(st *checkpoint.State) results.Options {
	o := results.Options{RotateSize: c.RotateSize, ContentDir: c.ContentDir, Done: st.Done}
	if c.Compress {
		o.Compress = cmp.Or(c.Codec, results.Gzip)
	}
	return o
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
	n, hash, _, err := fingerprint(f, -1)
	return n, hash, err
}

// fingerprint reads f once, from where it is, and returns its size and
// sha256, and the sha256 of its first prefix bytes when it is longer than
// prefix (>= 0) and those bytes can be the whole of an earlier version
// that it grew from: they end with a line end, or f is gzip (members
// appended), or there are none; else prefixHash is "". A checkpoint
// resumes an input that only grew by comparing prefixHash with the hash it
// recorded (see [checkpoint.OpenGrowing]).
func fingerprint(f *os.File, prefix int64) (size int64, hash, prefixHash string, err error) {
	t := &hashTracker{h: sha256.New()}
	buf := make([]byte, 256<<10)
	if prefix >= 0 {
		_, err = io.CopyBuffer(t, io.LimitReader(f, prefix), buf)
		if err == nil && t.n == prefix {
			sum := hex.EncodeToString(t.h.Sum(nil)) // Sum leaves the state as it is
			gzip := t.head == [2]byte{0x1f, 0x8b}
			if prefix == 0 || gzip || t.last == '\n' {
				prefixHash = sum
			}
		}
	}
	if err == nil {
		_, err = io.CopyBuffer(t, f, buf)
	}
	if err != nil {
		return 0, "", "", fmt.Errorf("read input %s: %w", f.Name(), err)
	}
	if t.n <= prefix {
		prefixHash = ""
	}
	return t.n, hex.EncodeToString(t.h.Sum(nil)), prefixHash, nil
}

// hashTracker hashes what is written to it, and keeps its count, its first
// two bytes and its last byte.
type hashTracker struct {
	h    hash.Hash
	n    int64
	head [2]byte
	last byte
}

func (t *hashTracker) Write(p []byte) (int, error) {
	for i := t.n; i < 2 && int(i-t.n) < len(p); i++ {
		t.head[i] = p[i-t.n]
	}
	if len(p) > 0 {
		t.last = p[len(p)-1]
	}
	t.n += int64(len(p))
	return t.h.Write(p)
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
	// The input is read once to fingerprint it, under the checkpoint's
	// lock, where the size the journal recorded is known: an input that
	// only grew at its end resumes.
	hdr := checkpoint.Header{InputName: cfg.Input, InputSize: -1, InputHash: "stdin", Shape: shape(&cfg)}
	var in *os.File
	if cfg.Input == "-" {
		if _, err := os.Stat(cfg.checkpointPath()); err == nil && !cfg.Restart {
			return nil, fmt.Errorf("%s: %w", cfg.Out, ErrStdinCheckpoint)
		}
	} else {
		f, err := os.Open(cfg.Input)
		if err != nil {
			return nil, fmt.Errorf("open input: %w", err)
		}
		defer f.Close()
		in = f
	}
	grewFrom := int64(-1) // the size the journal recorded, when the input is longer
	fp := func(prefix int64) (checkpoint.Header, string, error) {
		if in == nil {
			return hdr, "", nil
		}
		var prefixHash string
		var err error
		hdr.InputSize, hdr.InputHash, prefixHash, err = fingerprint(in, prefix)
		if prefixHash != "" {
			grewFrom = prefix
		}
		return hdr, prefixHash, err
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
	j, err := checkpoint.OpenGrowing(cfg.checkpointPath(), fp, cfg.Restart)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	st := j.State()
	opts := cfg.outputs(st)
	retaken, unknown, err := retake(&cfg, j, opts.Compress)
	if err != nil {
		return nil, err
	}
	if retaken > 0 {
		cfg.Log.Info("failed rows taken back to work", "rows", retaken)
	}
	// After a restart the state is new: its offsets are zero.
	w, err := results.Open(cfg.Out, opts, st.Offsets)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	resumed := st.DoneCount() > 0 || st.PendingCount() > 0
	if resumed {
		cfg.Log.Info("resuming", "done", st.DoneCount(), "pending", st.PendingCount(), "checkpoint", cfg.checkpointPath())
	}
	if grewFrom >= 0 && st.Header.InputSize > grewFrom {
		cfg.Log.Info("the input grew at its end since the last run: taking the new rows", "was_bytes", grewFrom, "now_bytes", st.Header.InputSize)
	}

	var cb *callback.Receiver
	if cfg.CallbackURL != "" {
		if cb, err = startCallbacks(&cfg); err != nil {
			return nil, err
		}
		serveErr := make(chan error, 1)
		go func() { serveErr <- cb.Serve() }()
		// The receiver answers until the run has drained, then gets a
		// moment for the requests under way.
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			cb.Shutdown(sctx) //nolint:errcheck // the run is over
			if err := <-serveErr; err != nil {
				cfg.Log.Warn("callback receiver", "err", err)
			}
		}()
	}

	api := newCounted(cfg.API)
	o := newOwner(&cfg, j, w, api)
	o.unknown = unknown
	o.cb = cb
	o.sum = Summary{Input: cfg.Input, Rows: -1, Started: started, Resumed: resumed, Skipped: st.DoneCount(),
		prev: readSummary(cfg.Out), paidAtStart: st.Submitted}

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
	// The rows are read from the file fingerprinted, up to the size
	// fingerprinted: rows appended meanwhile, or a file renamed over the
	// input, are the next run's.
	var src io.Reader
	if in != nil {
		src = io.NewSectionReader(in, 0, st.Header.InputSize)
	}
	go func() { defer wg.Done(); errs <- read(rctx, cfg.Input, src, cfg.Records, o.reads) }()
	go func() {
		defer wg.Done()
		errs <- o.b.Run(bctx, batcher.Input{Rows: o.rows, Again: o.again, Hold: o.hold}, o.batches)
	}()
	go func() { defer wg.Done(); errs <- o.p.Run(pctx, o.polls) }()
	if cb != nil {
		// Verified callbacks go straight to the poller, not through the
		// owner, which may be busy syncing files: a nudge writes nothing,
		// and moves a task's next look to now (a faulted one's status
		// first); a task finished or unknown to the poller is left alone.
		go func() {
			for {
				select {
				case e := <-cb.Events():
					o.p.Nudge(e.ID, e.Faulted)
				case <-pctx.Done():
					return
				}
			}
		}()
	}
	quiet := make(chan struct{})
	go func() { wg.Wait(); close(quiet) }()

	if st.Rows >= 0 {
		o.prog.total.Store(st.Rows) // an earlier session read the input to its end
	} else if cfg.Progress == "bar" || cfg.Progress == "log" {
		go countTotal(cfg.Input, cfg.Records.Format, &o.prog)
	}
	prog := newProgress(cfg.Progress, cfg.Stderr, cfg.Log, &o.prog)
	err = o.loop(ctx, errs, quiet)
	prog.stop()
	return o.finish(err)
}

// startCallbacks loads the job's callback secret (beside the checkpoint),
// starts listening, and sets the batcher and the poller up for callbacks.
func startCallbacks(cfg *Config) (*callback.Receiver, error) {
	u, err := url.Parse(cfg.CallbackURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("callback URL %q: want an http(s) URL", cfg.CallbackURL)
	}
	secret, err := callback.LoadSecret(cfg.checkpointPath() + ".secret")
	if err != nil {
		return nil, err
	}
	signer := callback.NewSigner(secret)
	ccfg := cfg.Callback
	if ccfg.Path == "" && u.Path != "" && u.Path != "/" {
		ccfg.Path = u.Path // anything else is answered 404 (a proxy in front must keep the path)
	}
	if ccfg.Addr == "" {
		port := cmp.Or(u.Port(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
		ccfg.Addr = ":" + port
		// A loopback URL (the sandbox, a tunnel's local end) needs no
		// other interface.
		if ip := net.ParseIP(u.Hostname()); u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) {
			ccfg.Addr = net.JoinHostPort(cmp.Or(u.Hostname(), "127.0.0.1"), port)
		}
	}
	if ccfg.Log == nil {
		ccfg.Log = cfg.Log
	}
	cb := callback.New(ccfg, signer)
	if err := cb.Listen(); err != nil {
		return nil, err
	}
	if u.Port() == "0" {
		if a, ok := cb.Addr().(*net.TCPAddr); ok {
			u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(a.Port))
		}
	}
	cfg.Batch.CallbackURL = u.String()
	cfg.Batch.Passthrough = cb.Passthrough
	cfg.Poll.Callbacks = true
	cfg.Log.Info("callback receiver listening", "addr", cb.Addr().String(), "url", cfg.Batch.CallbackURL)
	return cb, nil
}

// readEvent is what the reader tells the owner: a valid record, a bad row,
// or the end of the input (End, with the number of rows).
type readEvent struct {
	rec  records.Record
	bad  *records.RowError
	end  bool
	rows int64
}

// read streams the input to the owner, which decides what each row needs:
// src, named path, or the file at path when src is nil (stdin). It returns
// nil at the end of the input or when ctx is done, and a fatal read error
// otherwise.
func read(ctx context.Context, path string, src io.Reader, opt records.Options, out chan<- readEvent) error {
	defer close(out)
	var rd *records.Reader
	var err error
	if src == nil {
		rd, err = records.Open(path, opt)
	} else {
		rd, err = records.NewReader(src, path, opt)
	}
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

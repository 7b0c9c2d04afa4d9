package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/decodo-batch/decodo-batch/batcher"
	"github.com/decodo-batch/decodo-batch/callback"
	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/records"
	"github.com/decodo-batch/decodo-batch/io/results"
	"github.com/decodo-batch/decodo-batch/job"
	"github.com/decodo-batch/decodo-batch/poller"
)

// stringsFlag collects a repeated flag's values.
type stringsFlag []string

func (f *stringsFlag) String() string     { return strings.Join(*f, ",") }
func (f *stringsFlag) Set(v string) error { *f = append(*f, v); return nil }

// parseParams parses every --param KEY=VALUE into one set of parameters,
// after all flags are read: --allow-param may come after the --param it
// allows.
func parseParams(kvs, allow []string) (records.Params, error) {
	var all records.Params
	for _, kv := range kvs {
		p, err := records.ParseParam(kv, allow)
		if errors.Is(err, records.ErrUnknownParam) {
			return "", usagef("--param: %v (--allow-param NAME passes a parameter the tables do not list, unchecked; the target is --target)", err)
		}
		if err != nil {
			return "", usagef("--param: %v", err)
		}
		all = all.Merge(p)
	}
	return all, nil
}

type runFlags struct {
	out, format, target, endpoint, tokenFile, checkpoint string
	progress, logFormat, sandboxArgs                     string
	params                                               stringsFlag
	batchSize, workers, retries                          int
	maxTasks                                             int64
	batchInterval, maxRuntime, outageBudget              time.Duration
	taskRate                                             float64
	allowParams                                          stringsFlag
	sandbox, noWait, restart, strict, dryRun, contentDir bool
	compress                                             compressFlag
	retryFailed                                          retryFlag
	rotateSize                                           sizeFlag
	verbose, quiet, dedupe                               bool

	// The callback receiver (--callback-*).
	callbackURL, callbackListen, callbackCert, callbackKey string
}

func runFlagSet(f *runFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.out, "out", "", "output directory (created); required")
	fs.StringVar(&f.out, "o", "", "shorthand for --out")
	fs.StringVar(&f.format, "format", "", "input format: csv, jsonl or txt (default: from the file name)")
	fs.StringVar(&f.target, "target", "", "target for rows that name none (default: universal for url rows)")
	fs.Var(&f.params, "param", "a task parameter for every row, KEY=VALUE (repeatable; VALUE parsed as JSON when it parses)")
	fs.StringVar(&f.endpoint, "endpoint", "", "API base URL (env DECODO_ENDPOINT; default "+decodo.DefaultEndpoint+")")
	fs.BoolVar(&f.sandbox, "sandbox", false, "run against an in-process simulated API; no token needed")
	fs.StringVar(&f.sandboxArgs, "sandbox-args", "", `flags of the in-process sandbox, e.g. "--fault-rate 0.05 --delay uniform:1s-5s" (see "decodo-batch sandbox -h")`)
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the Basic token (else env DECODO_TOKEN, or DECODO_USERNAME and DECODO_PASSWORD)")
	fs.IntVar(&f.batchSize, "batch-size", decodo.MaxBatchItems, "items per batch, 1..3000")
	fs.DurationVar(&f.batchInterval, "batch-interval", time.Second, "least time between two batch submissions")
	fs.Float64Var(&f.taskRate, "task-rate", 10, "single tasks (prompt, product_id rows: POST /v3/task) submitted per second")
	fs.Var(&f.allowParams, "allow-param", "pass a parameter the target's table does not list, unchecked (repeatable)")
	fs.IntVar(&f.workers, "workers", 32, "concurrent polling and result requests")
	fs.IntVar(&f.retries, "retries", 2, "resubmissions of a faulted or expired task")
	fs.Var(&f.retryFailed, "retry-failed", "put the failed rows back to work: --retry-failed (all), or --retry-failed=CLASSES, of "+strings.Join(job.Classes, ",")+" (comma-separated)")
	fs.BoolVar(&f.dedupe, "dedupe", false, "submit rows that ask for the same (target, input, parameters) once; each row still gets its own line")
	fs.Int64Var(&f.maxTasks, "max-tasks", 0, "never pay for more than N tasks in this job, over all runs (submissions and resubmissions); rows past it fail with class budget")
	fs.DurationVar(&f.outageBudget, "outage-budget", decodo.DefaultOutageBudget, "how long the API may fail every request before the run stops, rows unsubmitted (exit 69)")
	fs.DurationVar(&f.maxRuntime, "max-runtime", 0, "stop cleanly after this long, leaving a resumable checkpoint (exit 75)")
	fs.BoolVar(&f.noWait, "no-wait", false, "submit everything, then exit 75; a later run collects the results")
	fs.StringVar(&f.checkpoint, "checkpoint", "", "where the journal lives (default OUT/checkpoint)")
	fs.BoolVar(&f.restart, "restart", false, "discard an existing checkpoint and outputs")
	fs.BoolVar(&f.strict, "strict", false, "validate the whole input first; any bad row aborts before anything is submitted")
	fs.BoolVar(&f.dryRun, "dry-run", false, "validate and count rows, batches and the least run time; no network")
	fs.Var(&f.compress, "compress", "compress the output files: --compress (gzip), --compress=gzip or --compress=zstd")
	fs.BoolVar(&f.contentDir, "content-dir", false, "write each result's content to its own file under OUT/content; results lines name it")
	fs.Var(&f.rotateSize, "rotate-size", "start a new results part (results-00001.jsonl, ...) when the current one passes `SIZE` on disk (e.g. 512MB, 64KB, 1GiB)")
	fs.StringVar(&f.progress, "progress", "auto", "progress display: auto, bar, log or none")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text or json")
	fs.BoolVar(&f.verbose, "v", false, "verbose logging")
	fs.BoolVar(&f.quiet, "q", false, "quiet: errors only, no progress or summary")
	fs.StringVar(&f.callbackURL, "callback-url", "", "public http(s) URL the API POSTs finished tasks to; a receiver verifies them and polling becomes the safety net (see README, Callbacks)")
	fs.StringVar(&f.callbackListen, "callback-listen", "", "where the callback receiver listens, HOST:PORT (default: the --callback-url's port, on all interfaces; loopback for a loopback URL)")
	fs.StringVar(&f.callbackCert, "callback-cert", "", "TLS certificate file: the callback receiver serves HTTPS (with --callback-key)")
	fs.StringVar(&f.callbackKey, "callback-key", "", "TLS key file of --callback-cert")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: decodo-batch run [flags] INPUT

INPUT is a CSV, JSONL or TXT file (gzip too), or "-" for stdin; without
INPUT, a pipe or file on stdin is read. The format is --format, else the
file's extension, else its content: a JSONL line starts with '{', a CSV
starts with a header naming a known column (url, query, target, ...), and
anything else is a TXT list of URLs.

Flags (one-letter ones combine: -qv):
`)
		fs.PrintDefaults()
	}
	return fs
}

func newLogger(w io.Writer, format string, verbose, quiet bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	if quiet {
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var f runFlags
	fs := runFlagSet(&f, stderr)
	pos, err := parseArgs(fs, args, stdout)
	if err != nil {
		return err
	}
	if err := compressTypo(f.compress.codec != "", pos); err != nil {
		return err
	}
	if err := f.retryFailed.typo(pos); err != nil {
		return err
	}
	if len(pos) == 0 && stdinPiped() {
		pos = []string{"-"} // INPUT defaults to stdin when it is a pipe or a file
	}
	switch {
	case len(pos) != 1:
		return usagef("run takes one INPUT (a file, or - for stdin), got %d", len(pos))
	case f.out == "" && !f.dryRun:
		return usagef("run needs --out DIR")
	case f.batchSize < 1 || f.batchSize > decodo.MaxBatchItems:
		return usagef("--batch-size must be 1..%d", decodo.MaxBatchItems)
	case f.workers < 1:
		return usagef("--workers must be at least 1")
	case f.maxTasks < 0:
		return usagef("--max-tasks must be 0 (no limit) or more")
	case f.outageBudget <= 0:
		return usagef("--outage-budget must be more than 0")
	case f.retries < 0:
		return usagef("--retries must be 0 or more")
	case f.taskRate <= 0:
		return usagef("--task-rate must be positive")
	case f.batchInterval <= 0:
		return usagef("--batch-interval must be positive")
	case f.logFormat != "text" && f.logFormat != "json":
		return usagef("--log-format must be text or json, not %q", f.logFormat)
	case !slices.Contains([]string{"auto", "bar", "log", "none"}, f.progress):
		return usagef("--progress must be auto, bar, log or none, not %q", f.progress)
	case f.format != "" && !slices.Contains([]string{"csv", "jsonl", "txt"}, f.format):
		return usagef("--format must be csv, jsonl or txt, not %q", f.format)
	}
	if err := checkCallbackFlags(&f); err != nil {
		return err
	}
	input := pos[0]
	if fi, err := os.Stat(input); err == nil && fi.IsDir() {
		return fmt.Errorf("INPUT %s is a directory: give a CSV, JSONL or TXT file", input)
	}
	defaults, err := parseParams(f.params, f.allowParams)
	if err != nil {
		return err
	}
	progress := progressMode(f.progress, f.quiet, stderr)
	if progress == "bar" {
		// Log lines clear the progress line before they print.
		stderr = job.NewScreen(stderr)
	}
	log := newLogger(stderr, f.logFormat, f.verbose, f.quiet)
	if f.logFormat == "json" {
		defer func() { err = logError(log, err) }()
	}
	// The format: --format, else the file's name, else its content; stdin's
	// is told by its content as the reader starts.
	format := f.format
	if input != "-" {
		if format, err = records.Sniff(input, format); err != nil {
			return err // an empty file, a CSV without a header: exit 1
		}
	}
	ropts := records.Options{Format: format, DefaultTarget: f.target, Defaults: defaults, AllowParams: f.allowParams}

	if f.dryRun {
		return dryRun(input, ropts, f, stdout, stderr)
	}
	if f.strict {
		if input == "-" {
			// It reads the input through before the run reads it again.
			return usagef("--strict needs an input file, not stdin")
		}
		if err := strict(input, ropts, stderr); err != nil {
			return err
		}
	} else if input != "-" {
		// Options the input cannot be read with (a txt input with a query
		// target, an unknown format) fail here, before any output exists.
		rd, err := records.Open(input, ropts)
		if err != nil {
			return err
		}
		rd.Close()
	}

	stopProfile, err := cpuProfile("DECODO_BATCH_CPUPROFILE")
	if err != nil {
		return err
	}
	defer stopProfile()
	api, closeAPI, err := connect(ctx, &f, log, stderr)
	if err != nil {
		return err
	}
	// The sandbox's state is saved unless another run holds OUT: that one
	// owns the state.
	saveSandbox := true
	defer func() { closeAPI(saveSandbox) }()

	pcfg := poller.Config{Workers: f.workers, Backoff: decodo.DefaultBackoff, Log: log}
	if v := os.Getenv("DECODO_BATCH_STATUS_AFTER"); v != "" {
		// For tests: how long a task may be pending before its status is
		// checked, until the run has learned completion times.
		if pcfg.StatusAfter, err = time.ParseDuration(v); err != nil {
			return usagef("DECODO_BATCH_STATUS_AFTER: %v", err)
		}
	}
	cfg := job.Config{
		Input: input, Out: f.out, Checkpoint: f.checkpoint,
		Records: ropts,
		Batch:   batcher.Config{Size: f.batchSize, Interval: f.batchInterval, TaskRate: f.taskRate, Backoff: decodo.DefaultBackoff, Log: log},
		Poll:    pcfg,
		Retries: f.retries, OutageBudget: f.outageBudget, MaxTasks: f.maxTasks, Dedupe: f.dedupe,
		RetryFailed: f.retryFailed.on, RetryClasses: f.retryFailed.classes,
		MaxRuntime: f.maxRuntime, NoWait: f.noWait, Restart: f.restart,
		Compress: f.compress.codec != "", Codec: f.compress.codec, ContentDir: f.contentDir, RotateSize: int64(f.rotateSize),
		Progress: progress,
		API:      api, Stderr: stderr, Log: log,
		CallbackURL: f.callbackURL,
		Callback:    callback.Config{Addr: f.callbackListen, CertFile: f.callbackCert, KeyFile: f.callbackKey},
	}
	sum, err := job.Run(ctx, cfg)
	var locked *checkpoint.LockedError
	if errors.As(err, &locked) {
		saveSandbox = false
		return fmt.Errorf("%w (output %s)", err, f.out)
	}
	if sum != nil && !f.quiet && (sum.Outcome != "error" || sum.Results+sum.Failed+sum.Rejected+sum.Pending > 0) {
		if f.logFormat == "json" {
			logSummary(log, sum, f.out)
		} else {
			printSummary(stderr, sum, f.out, results.Ext(f.compress.codec))
		}
	}
	return err
}

func progressMode(mode string, quiet bool, stderr io.Writer) string {
	if quiet {
		return "none"
	}
	if mode != "auto" {
		return mode
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return "bar"
	}
	return "log"
}

// connect returns the API client: the real API (or --endpoint) with the
// user's token, or an in-process sandbox with a token of its own.
//
// The sandbox keeps its state in OUT (see keepSandbox); the function it
// returns closes the API and, with save, writes the sandbox's state.
func connect(ctx context.Context, f *runFlags, log *slog.Logger, stderr io.Writer) (job.API, func(save bool), error) {
	cc := decodo.Config{Conns: f.workers, Version: strings.Fields(versionText())[0]}
	if !f.sandbox {
		token, err := loadToken(f.tokenFile)
		if err != nil {
			return nil, nil, err
		}
		endpoint := f.endpoint
		if endpoint == "" {
			endpoint = os.Getenv("DECODO_ENDPOINT")
		}
		if endpoint == "" {
			endpoint = decodo.DefaultEndpoint
		}
		c, err := decodo.New(endpoint, token, cc)
		if err != nil {
			return nil, nil, err
		}
		return c, func(bool) {}, nil
	}
	scfg := sandbox.Config{Delay: sandbox.Delay{Kind: sandbox.Uniform, Min: 500 * time.Millisecond, Max: 3 * time.Second}, BatchInterval: f.batchInterval}
	sfs := flag.NewFlagSet("sandbox-args", flag.ContinueOnError)
	sfs.SetOutput(io.Discard)
	scfg.RegisterFlags(sfs)
	if err := sfs.Parse(strings.Fields(f.sandboxArgs)); err != nil {
		return nil, nil, usagef("--sandbox-args: %v", err)
	}
	token := randomToken()
	scfg.Tokens = []string{token}
	sb := sandbox.New(scfg)
	kept, err := keepSandbox(sb, filepath.Join(f.out, sandboxStateFile), log)
	if err != nil {
		return nil, nil, err
	}
	srv, addr, err := serveSandbox("127.0.0.1:0", sb)
	if err != nil {
		kept.close(false)
		return nil, nil, err
	}
	log.Info("sandbox API serving", "addr", addr, "delay", scfg.Delay.String(), "state", kept.path, "tasks_known", kept.loaded)
	c, err := decodo.New("http://"+addr, token, cc)
	if err != nil {
		srv.Close()
		kept.close(false)
		return nil, nil, err
	}
	return savingAPI{API: c, k: kept}, func(save bool) {
		srv.Close()
		sb.Close()
		if err := kept.close(save); err != nil {
			log.Error("the sandbox's state was not saved: a rerun meets a sandbox that forgot the latest tasks", "err", err)
		}
	}, nil
}

// serveSandbox serves a sandbox on addr until the caller closes the server
// (run --sandbox keeps it past the first signal: requests in flight finish).
func serveSandbox(addr string, sb *sandbox.Server) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("sandbox: %w", err)
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(sb.Close)
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().String(), nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString([]byte("sandbox:" + hex.EncodeToString(b)))
}

// loadToken finds the Basic token: --token-file, DECODO_TOKEN, or
// DECODO_USERNAME + DECODO_PASSWORD.
func loadToken(file string) (string, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read token file: %w", err)
		}
		if t := strings.TrimSpace(string(data)); t != "" {
			return strings.TrimPrefix(t, "Basic "), nil
		}
		return "", fmt.Errorf("token file %s is empty", file)
	}
	if t := strings.TrimSpace(os.Getenv("DECODO_TOKEN")); t != "" {
		return strings.TrimPrefix(t, "Basic "), nil
	}
	u, p := os.Getenv("DECODO_USERNAME"), os.Getenv("DECODO_PASSWORD")
	if u != "" && p != "" {
		return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)), nil
	}
	return "", errors.New("no API token: set DECODO_TOKEN (the Basic token from the Decodo dashboard), or DECODO_USERNAME and DECODO_PASSWORD, or use --token-file; or try --sandbox")
}

// printSummary prints the closing lines; ext is the output files' codec
// extension ("", ".gz", ".zst").
func printSummary(w io.Writer, s *job.Summary, out, ext string) {
	rows := "?"
	if s.Rows >= 0 {
		rows = fmt.Sprint(s.Rows)
	}
	// Two lines, each within 80 columns.
	fmt.Fprintf(w, "decodo-batch: %s rows: %d %s, %d failed, %d rejected, %d pending\n",
		rows, s.Results, plural(s.Results, "result", "results"), s.Failed, s.Rejected, s.Pending)
	// The rest is this run's (summary.json has every run's and the totals).
	c := s.Current()
	if c == nil {
		c = &job.SessionSummary{Batches: s.Batches, Seconds: s.Seconds, TasksPerSec: s.TasksPerSec, GetsPerTask: s.GetsPerTask, OverBudget: s.OverBudget}
	}
	fmt.Fprintf(w, "decodo-batch: this run: %s in %.1fs, %.1f tasks/s, %.2f GETs/task\n",
		count(c.Batches, "batch", "batches"), c.Seconds, c.TasksPerSec, c.GetsPerTask)
	if c.OverBudget > 0 {
		fmt.Fprintf(w, "decodo-batch: %s not submitted: the task budget (--max-tasks) is spent; a higher --max-tasks with --retry-failed=budget takes them back\n", count(c.OverBudget, "row", "rows"))
	}
	if s.Outcome == "stopped" {
		fmt.Fprintf(w, "decodo-batch: stopped (%s): run the same command again to continue\n", s.Stopped)
	}
	var see []string
	if s.Failed > 0 {
		see = append(see, filepath.Join(out, results.FailedFile+ext))
	}
	if s.Rejected > 0 {
		see = append(see, filepath.Join(out, results.RejectsFile+ext))
	}
	if len(see) > 0 {
		fmt.Fprintf(w, "decodo-batch: see %s\n", strings.Join(see, " and "))
	}
}

// plural returns one or many by n.
func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// count returns n and its noun, e.g. "1 batch", "3 batches".
func count(n int64, one, many string) string { return fmt.Sprintf("%d %s", n, plural(n, one, many)) }

// retryFlag is --retry-failed[=CLASSES]: off, all classes, or a list.
type retryFlag struct {
	on      bool
	classes []string // empty: all
}

func (r *retryFlag) String() string {
	if r == nil || !r.on {
		return ""
	}
	return strings.Join(r.classes, ",")
}

func (r *retryFlag) IsBoolFlag() bool { return true }

func (r *retryFlag) Set(v string) error {
	switch v {
	case "false":
		*r = retryFlag{}
		return nil
	case "true", "all":
		*r = retryFlag{on: true}
		return nil
	}
	var classes []string
	for c := range strings.SplitSeq(v, ",") {
		c = strings.TrimSpace(c)
		if !slices.Contains(job.Classes, c) {
			return fmt.Errorf("unknown error class %q: want some of %s", c, strings.Join(job.Classes, ","))
		}
		classes = append(classes, c)
	}
	*r = retryFlag{on: true, classes: classes}
	return nil
}

// typo refuses "--retry-failed faulted": the classes go after an equals
// sign, else they read as INPUT.
func (r *retryFlag) typo(pos []string) error {
	if !r.on || len(pos) == 0 {
		return nil
	}
	if (&retryFlag{}).Set(pos[0]) == nil && pos[0] != "true" && pos[0] != "false" {
		if _, err := os.Stat(pos[0]); err != nil {
			return usagef("--retry-failed takes its classes after an equals sign: --retry-failed=%s (%q is no INPUT file)", pos[0], pos[0])
		}
	}
	return nil
}

// checkCallbackFlags checks the --callback-* flags: an http(s) URL with a
// host, and a certificate and key together.
func checkCallbackFlags(f *runFlags) error {
	if f.callbackURL == "" {
		if f.callbackListen != "" || f.callbackCert != "" || f.callbackKey != "" {
			return usagef("--callback-listen, --callback-cert and --callback-key need --callback-url")
		}
		return nil
	}
	u, err := url.Parse(f.callbackURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return usagef("--callback-url must be an http(s) URL with a host, like https://cb.example.com/decodo, not %q", f.callbackURL)
	}
	if (f.callbackCert == "") != (f.callbackKey == "") {
		return usagef("--callback-cert and --callback-key go together")
	}
	if f.callbackListen != "" {
		if _, _, err := net.SplitHostPort(f.callbackListen); err != nil {
			return usagef("--callback-listen must be HOST:PORT or :PORT: %v", err)
		}
	}
	return nil
}

// cpuProfile profiles the CPU into the file the environment variable env
// names, if set, until the returned stop is called. For development: where
// the CPU goes in a run or in the sandbox (go tool pprof).
func cpuProfile(env string) (stop func(), err error) {
	path := os.Getenv(env)
	if path == "" {
		return func() {}, nil
	}
	pf, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(pf); err != nil {
		pf.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		pf.Close()
	}, nil
}

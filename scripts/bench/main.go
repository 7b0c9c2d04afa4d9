//go:build unix

// Command bench measures decodo-batch against the strategy of Decodo's
// published example, each side against a fresh sandbox API of identical
// configuration in another process, and prints the two side by side with
// the targets they are held to.
//
//	go run ./scripts/bench                                   # 30000 rows, both sides
//	go run ./scripts/bench --rows 3000 --delay lognormal:2s,0.6,1s-10s
//	go run ./scripts/bench --rows 200000 --delay 0 --batch-interval 10ms --only tool
//
// The baseline is the published example's loop, made concurrent so that it
// is not starved: batches of 3000 at one per batch interval, then for every
// task GET /v3/task/{id} every 3 s until it is done (or faulted), then
// GET /v3/task/{id}/results once. The counters come from the sandbox
// (GET /_sandbox/stats), so both sides are measured by the same yardstick.
//
// The bench builds the binary once into a temporary directory, talks to
// nothing but 127.0.0.1, stops every process it started and removes its
// files (unless --keep), and gives up after --timeout.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

const (
	batchItems     = 3000            // the API's most items in one batch
	baselinePoll   = 3 * time.Second // the published example's poll interval
	benchToken     = "bench"         // the sandbox accepts any non-empty token
	gnuTime        = "/usr/bin/time"
	maxGetsRatio   = 0.8   // target: GETs/task at most this fraction of the baseline's
	maxMakespan    = 1.05  // target: last result at most this × the API's makespan
	minTasksPerSec = 10000 // throughput target
	maxCPUPerTask  = 50.0  // µs, throughput target
)

type options struct {
	rows            int
	delay           string
	batchInterval   time.Duration
	seed            int64
	only            string
	workers         int
	baselineWorkers int
	jsonOut         bool
	timeout         time.Duration
	keep            bool
	sites           string

	// The heavy-content mode (see heavy.go).
	heavy        string   // modes to run, comma-separated; "" for the usual bench
	contentSize  int      // bytes of content per result
	sandboxExtra []string // more flags for the sandbox process
	toolExtra    []string // more flags for decodo-batch run

	// The callback modes (see callbacks.go).
	callbacks, callbackLoad bool
	callbackLoss            float64
	garbageRate             int
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var usage *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.rows, "rows", 30000, "input rows (distinct URLs)")
	fs.StringVar(&o.delay, "delay", "lognormal:6s,0.6,1s-60s", "sandbox task delay (see decodo-batch sandbox -h); 0 for the throughput mode")
	fs.DurationVar(&o.batchInterval, "batch-interval", time.Second, "batch pacing of the sandbox, the tool and the baseline")
	fs.Int64Var(&o.seed, "seed", 1, "sandbox seed (same for both sides)")
	fs.StringVar(&o.only, "only", "both", "which side to run: both, tool or baseline")
	fs.IntVar(&o.workers, "workers", 0, "--workers passed to decodo-batch (0: its default)")
	fs.IntVar(&o.baselineWorkers, "baseline-workers", 64, "concurrent requests of the baseline")
	fs.BoolVar(&o.jsonOut, "json", false, "print the results as JSON instead of a table")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up (and clean up) after this long")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (binary, input, outputs, logs)")
	fs.StringVar(&o.sites, "sites", "", "a top-sites JSON file ([{\"rootDomain\": ...}]) to draw hosts from (default: example.com)")
	fs.StringVar(&o.heavy, "heavy", "", "heavy-content mode: run decodo-batch alone, once per output mode listed (plain,gzip,zstd,content-dir; or all), on pages like real ones of --content-size bytes, with a fixed 2s task delay unless --delay is given")
	fs.IntVar(&o.contentSize, "content-size", 100_000, "bytes of content per result in the heavy-content mode")
	fs.BoolVar(&o.callbacks, "callbacks", false, "callback mode: decodo-batch polling, decodo-batch with --callback-url, and the baseline, side by side")
	fs.Float64Var(&o.callbackLoss, "callback-loss", 0, "callback mode: fraction of callbacks the sandbox loses")
	fs.BoolVar(&o.callbackLoad, "callback-load", false, "load the callback receiver: verified callbacks per second, and a job's time alone and under --garbage-rate junk requests a second")
	fs.IntVar(&o.garbageRate, "garbage-rate", 1000, "junk requests a second to the receiver in --callback-load")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: go run ./scripts/bench [flags]\n\nMeasures decodo-batch against Decodo's published polling example on a local sandbox.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return &usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	case o.rows < 1:
		return &usageError{"--rows must be at least 1"}
	case o.only != "both" && o.only != "tool" && o.only != "baseline":
		return &usageError{"--only must be both, tool or baseline"}
	case o.batchInterval <= 0:
		return &usageError{"--batch-interval must be positive"}
	case o.workers < 0, o.baselineWorkers < 1:
		return &usageError{"--workers must be 0 or more, --baseline-workers 1 or more"}
	case o.timeout <= 0:
		return &usageError{"--timeout must be positive"}
	}
	if o.heavy != "" {
		delaySet := false
		fs.Visit(func(f *flag.Flag) { delaySet = delaySet || f.Name == "delay" })
		if !delaySet {
			o.delay = "2s"
		}
	}
	delay, err := sandbox.ParseDelay(o.delay)
	if err != nil {
		return &usageError{err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	began := time.Now()
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "bench: %6.1fs "+format+"\n", append([]any{time.Since(began).Seconds()}, a...)...)
	}

	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "decodo-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if o.keep {
			logf("kept %s", tmp)
			return
		}
		os.RemoveAll(tmp)
	}()

	bin := filepath.Join(tmp, "decodo-batch")
	logf("building decodo-batch in %s", root)
	// -buildvcs=false: stamping would run git in the repository, for nothing.
	build := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-o", bin, ".")
	build.Dir = root
	// GOPROXY=off: the bench talks to nothing but 127.0.0.1, builds included.
	build.Env = append(os.Environ(), "GOPROXY=off")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build (offline; run \"go mod download\" first if modules are missing): %v\n%s", err, out)
	}
	input := filepath.Join(tmp, "input.csv")
	urls, err := writeInput(input, o.rows, o.sites)
	if err != nil {
		return err
	}

	if o.heavy != "" {
		return runHeavy(ctx, &o, bin, tmp, input, urls, stdout, logf)
	}
	if o.callbacks {
		return runCallbackMode(ctx, &o, bin, tmp, input, urls, stdout, logf)
	}
	if o.callbackLoad {
		return runCallbackLoad(ctx, &o, bin, tmp, input, urls, stdout, logf)
	}
	rep := &report{
		Rows: o.rows, Delay: delay.String(), BatchInterval: o.batchInterval.String(), Seed: o.seed,
		Workers: o.workers, BaselineWorkers: o.baselineWorkers,
		Throughput: delay.Kind == sandbox.Fixed && delay.Fixed == 0, CPUs: runtime.NumCPU(),
	}
	client := loopbackClient(o.baselineWorkers)
	defer client.CloseIdleConnections()
	var failures []string
	for _, side := range []string{"tool", "baseline"} {
		if o.only != "both" && o.only != side {
			continue
		}
		res, err := measure(ctx, side, &o, client, bin, tmp, input, urls, logf)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w (after --timeout %v or a signal)", side, err, o.timeout)
			}
			return fmt.Errorf("%s: %w", side, err)
		}
		if res.VerifyError != "" {
			failures = append(failures, side+": "+res.VerifyError)
		}
		if side == "tool" {
			rep.Tool = res
		} else {
			rep.Baseline = res
		}
	}
	rep.judge()
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.print(stdout)
	}
	if len(failures) > 0 {
		return fmt.Errorf("output verification failed: %s", strings.Join(failures, "; "))
	}
	return nil
}

// measure runs one side against a fresh sandbox and gathers its numbers.
func measure(ctx context.Context, side string, o *options, client *http.Client, bin, tmp, input string, urls []string, logf func(string, ...any)) (*sideResult, error) {
	sb, err := startSandbox(ctx, client, bin, filepath.Join(tmp, side+"-sandbox.log"), o)
	if err != nil {
		return nil, err
	}
	defer sb.stop()
	logf("%s: sandbox on %s (delay %s, batch interval %v, seed %d)", side, sb.base, o.delay, o.batchInterval, o.seed)

	res := &sideResult{Side: side, Rows: o.rows, LoadBefore: loadAverage()}
	var outDir string
	if side == "tool" {
		logf("tool: running decodo-batch on %d rows", o.rows)
		outDir, err = runTool(ctx, o, bin, tmp, sb.base, input, res)
	} else {
		logf("baseline: polling every %v with %d workers on %d rows", baselinePoll, o.baselineWorkers, o.rows)
		outDir, err = runBaseline(ctx, o, client, sb.base, tmp, urls, res)
	}
	if err != nil {
		return nil, err
	}
	res.LoadAfter = loadAverage()
	st, err := sb.stats(ctx, client)
	if err != nil {
		return nil, err
	}
	sb.stop()
	if ps := sb.cmd.ProcessState; ps != nil {
		res.SandboxCPU = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	if err := res.fromStats(st, o); err != nil {
		return nil, err
	}
	logf("%s: done in %.1fs; verifying %s", side, res.Wall, outDir)
	res.verify(outDir, urls)
	return res, nil
}

// loadAverage is the machine's 1-minute load average, or 0 if unknown.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _, _ := strings.Cut(string(data), " ")
	v, _ := strconv.ParseFloat(f, 64)
	return v
}

// moduleRoot is the directory of the module the bench is run from.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the bench from inside the decodo-batch module (go run ./scripts/bench)")
	}
	return filepath.Dir(gomod), nil
}

// writeInput writes a CSV of n distinct URLs and returns them by row.
func writeInput(path string, n int, sitesFile string) ([]string, error) {
	hosts := []string{"example.com"}
	if sitesFile != "" {
		data, err := os.ReadFile(sitesFile)
		if err != nil {
			return nil, err
		}
		var sites []struct {
			RootDomain string `json:"rootDomain"`
		}
		if err := json.Unmarshal(data, &sites); err != nil {
			return nil, fmt.Errorf("%s: %w", sitesFile, err)
		}
		hosts = hosts[:0]
		for _, s := range sites {
			if s.RootDomain != "" && !strings.ContainsAny(s.RootDomain, ",\"\r\n/") {
				hosts = append(hosts, s.RootDomain)
			}
		}
		if len(hosts) == 0 {
			return nil, fmt.Errorf("%s: no rootDomain found", sitesFile)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("id,url\n")
	urls := make([]string, n)
	for i := range n {
		urls[i] = "https://" + hosts[i%len(hosts)] + "/p/" + strconv.Itoa(i+1)
		fmt.Fprintf(w, "r%d,%s\n", i+1, urls[i])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	return urls, f.Close()
}

// loopbackClient is an HTTP client that dials nothing but loopback
// addresses and uses no proxy.
func loopbackClient(conns int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
				return nil, fmt.Errorf("bench: refusing to dial %s: loopback only", addr)
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        2*conns + 8,
		MaxIdleConnsPerHost: 2*conns + 8,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// --- the sandbox process ---

type sandboxProc struct {
	cmd    *exec.Cmd
	base   string
	exited chan struct{}
	once   sync.Once
}

// startSandbox starts "decodo-batch sandbox" on a free loopback port and
// waits until it answers.
func startSandbox(ctx context.Context, client *http.Client, bin, logPath string, o *options) (*sandboxProc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	var lastErr error
	for range 3 { // a free port may be taken between probe and bind
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(bin, append([]string{"sandbox", "--addr", addr, "--delay", o.delay,
			"--seed", strconv.FormatInt(o.seed, 10), "--batch-interval", o.batchInterval.String()}, o.sandboxExtra...)...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's Ctrl-C is ours to relay
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start sandbox: %w", err)
		}
		p := &sandboxProc{cmd: cmd, base: "http://" + addr, exited: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(p.exited) }()
		if lastErr = p.waitReady(ctx, client); lastErr == nil {
			return p, nil
		}
		p.stop()
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("sandbox did not start (log %s): %w", logPath, lastErr)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (p *sandboxProc) waitReady(ctx context.Context, client *http.Client) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/_sandbox/stats", nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("stats answered %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer after 15s: %w", err)
		}
		select {
		case <-p.exited:
			return errors.New("the sandbox exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends the sandbox's process group: SIGTERM, then SIGKILL after 7s.
func (p *sandboxProc) stop() {
	p.once.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		pid := p.cmd.Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(7 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-p.exited
		}
	})
}

func (p *sandboxProc) stats(ctx context.Context, client *http.Client) (sandbox.Stats, error) {
	var st sandbox.Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/_sandbox/stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return st, fmt.Errorf("sandbox stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("sandbox stats: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("sandbox stats: %w", err)
	}
	return st, nil
}

// --- the decodo-batch side ---

// runTool runs decodo-batch under /usr/bin/time -v (or, without it, reads
// the child's rusage) and returns its output directory.
func runTool(ctx context.Context, o *options, bin, tmp, endpoint, input string, res *sideResult) (string, error) {
	out := filepath.Join(tmp, "tool-out")
	args := []string{"run", "--endpoint", endpoint, input, "-o", out, "--progress", "none",
		"--batch-interval", o.batchInterval.String()}
	if o.workers > 0 {
		args = append(args, "--workers", strconv.Itoa(o.workers))
	}
	args = append(args, o.toolExtra...)
	timeFile := filepath.Join(tmp, "tool.time")
	name, argv := bin, args
	useTime := haveGNUTime(ctx, bin, tmp)
	if useTime {
		name, argv = gnuTime, append([]string{"-v", "-o", timeFile, bin}, args...)
	}
	logPath := filepath.Join(tmp, "tool.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logFile.Close()

	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = toolEnv(endpoint)
	// Its own process group: GNU time ignores SIGINT, so a stop is sent to
	// the group, where decodo-batch gets it and exits cleanly (75).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 20 * time.Second
	res.cpu0 = readCPUStat()
	res.start = time.Now()
	err = cmd.Run()
	res.end = time.Now()
	res.cpu1 = readCPUStat()
	res.Wall = res.end.Sub(res.start).Seconds()
	if cmd.Process != nil && ctx.Err() != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever outlived the wrapper
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return "", fmt.Errorf("decodo-batch: %w", err)
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("decodo-batch stopped: %w", ctx.Err())
	}
	res.ExitCode = cmd.ProcessState.ExitCode()
	if res.ExitCode != 0 && res.ExitCode != 3 {
		return "", fmt.Errorf("decodo-batch exited %d; its log ends:\n%s", res.ExitCode, tail(logPath, 20))
	}

	user, sys, rss, err := 0.0, 0.0, int64(0), errors.New("not run under "+gnuTime)
	if useTime {
		user, sys, rss, err = parseGNUTime(timeFile)
	}
	if err == nil {
		res.CPUUser, res.CPUSys, res.PeakRSSMB = user, sys, float64(rss)/1024
		res.CPUSource = gnuTime + " -v"
	} else {
		res.CPUUser = cmd.ProcessState.UserTime().Seconds()
		res.CPUSys = cmd.ProcessState.SystemTime().Seconds()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.PeakRSSMB = float64(ru.Maxrss) / 1024 // kilobytes on Linux
		}
		res.CPUSource = "rusage"
	}
	res.CPU = res.CPUUser + res.CPUSys
	res.CPUPerTaskUS = res.CPU / float64(res.Rows) * 1e6
	if data, err := os.ReadFile(filepath.Join(out, "summary.json")); err == nil && json.Valid(data) {
		res.ToolSummary = json.RawMessage(data)
	}
	return out, nil
}

// toolEnv is the environment without the user's Decodo settings, with the
// bench token and the sandbox as endpoint. DECODO_BATCH_CPUPROFILE is kept:
// it profiles the tool's run.
func toolEnv(endpoint string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DECODO_") || strings.HasPrefix(kv, "DECODO_BATCH_CPUPROFILE=") {
			env = append(env, kv)
		}
	}
	return append(env, "DECODO_TOKEN="+benchToken, "DECODO_ENDPOINT="+endpoint)
}

var (
	gnuTimeOnce sync.Once
	gnuTimeOK   bool
)

// haveGNUTime reports whether /usr/bin/time -v -o works here.
func haveGNUTime(ctx context.Context, bin, tmp string) bool {
	gnuTimeOnce.Do(func() {
		probe := filepath.Join(tmp, "probe.time")
		if exec.CommandContext(ctx, gnuTime, "-v", "-o", probe, bin, "version").Run() != nil {
			return
		}
		_, _, _, err := parseGNUTime(probe)
		gnuTimeOK = err == nil
	})
	return gnuTimeOK
}

// parseGNUTime reads user and system seconds and the peak RSS (kB) from the
// report of GNU time -v.
func parseGNUTime(path string) (user, sys float64, rssKB int64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, err
	}
	found := 0
	for line := range strings.Lines(string(data)) {
		key, val, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			continue
		}
		var perr error
		switch key {
		case "User time (seconds)":
			user, perr = strconv.ParseFloat(val, 64)
		case "System time (seconds)":
			sys, perr = strconv.ParseFloat(val, 64)
		case "Maximum resident set size (kbytes)":
			rssKB, perr = strconv.ParseInt(val, 10, 64)
		default:
			continue
		}
		if perr != nil {
			return 0, 0, 0, fmt.Errorf("%s: %q: %w", path, line, perr)
		}
		found++
	}
	if found != 3 {
		return 0, 0, 0, fmt.Errorf("%s: not a GNU time -v report", path)
	}
	return user, sys, rssKB, nil
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// --- the baseline side ---

// baseline is the published example's strategy with a pool of workers:
// status every 3 s until done, then the results once.
type baseline struct {
	client   *http.Client
	base     string
	urls     []string
	interval time.Duration

	mu    sync.Mutex
	queue pollHeap
	wake  chan struct{}

	left     atomic.Int64 // tasks not finished yet
	finished chan struct{}
	out      chan []byte

	posts429, faulted, lost atomic.Int64
}

type pollTask struct {
	row  int // 0-based
	id   string
	next time.Time
	done bool // the status said done: fetch the results
	errs int
}

type apiTask struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Status string `json:"status"`
}

// runBaseline runs the baseline to its end and returns its output directory.
func runBaseline(ctx context.Context, o *options, client *http.Client, base, tmp string, urls []string, res *sideResult) (string, error) {
	outDir := filepath.Join(tmp, "baseline-out")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	f, err := os.Create(filepath.Join(outDir, "results.jsonl"))
	if err != nil {
		return "", err
	}
	b := &baseline{
		client: client, base: base, urls: urls, interval: o.batchInterval,
		wake: make(chan struct{}, 1), finished: make(chan struct{}), out: make(chan []byte, 1024),
	}
	b.left.Store(int64(len(urls)))

	writerDone := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(f, 1<<20)
		var err error
		for line := range b.out {
			if err == nil {
				_, err = w.Write(line)
			}
		}
		if err == nil {
			err = w.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		writerDone <- err
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res.start = time.Now()
	var submitErr error
	var wg, workers sync.WaitGroup
	wg.Go(func() {
		if err := b.submit(ctx); err != nil && ctx.Err() == nil {
			submitErr = err
			cancel()
		}
	})
	work := make(chan *pollTask)
	wg.Go(func() {
		defer close(work)
		b.dispatch(ctx, work)
	})
	for range o.baselineWorkers {
		workers.Go(func() {
			for t := range work {
				b.look(ctx, t)
			}
		})
	}
	select {
	case <-b.finished:
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	workers.Wait()
	close(b.out)
	werr := <-writerDone
	res.end = time.Now()
	res.Wall = res.end.Sub(res.start).Seconds()
	switch {
	case submitErr != nil:
		return "", submitErr
	case werr != nil:
		return "", fmt.Errorf("write results: %w", werr)
	}
	select {
	case <-b.finished:
	default:
		return "", fmt.Errorf("baseline stopped with %d tasks left: %w", b.left.Load(), context.Cause(ctx))
	}
	res.FailedLines = int(b.faulted.Load() + b.lost.Load())
	return outDir, nil
}

// submit sends the batches, one per interval, and hands their tasks to the
// pollers; a 429 waits its Retry-After and sends the same batch again.
func (b *baseline) submit(ctx context.Context) error {
	var last time.Time
	for lo := 0; lo < len(b.urls); lo += batchItems {
		chunk := b.urls[lo:min(lo+batchItems, len(b.urls))]
		body, err := json.Marshal(map[string]any{"target": "universal", "url": chunk})
		if err != nil {
			return err
		}
		var tasks []apiTask
		for attempt := 1; ; attempt++ {
			if !last.IsZero() {
				if err := decodo.Sleep(ctx, time.Until(last.Add(b.interval))); err != nil {
					return err
				}
			}
			last = time.Now()
			var retry time.Duration
			tasks, retry, err = b.post(ctx, body)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if retry <= 0 {
				if attempt >= 5 {
					return fmt.Errorf("submit batch %d: %w", lo/batchItems+1, err)
				}
				retry = time.Second
			}
			if err := decodo.Sleep(ctx, retry); err != nil {
				return err
			}
		}
		rowOf := make(map[string]int, len(chunk))
		for i, u := range chunk {
			rowOf[u] = lo + i
		}
		now := time.Now()
		ts := make([]*pollTask, 0, len(tasks))
		for _, t := range tasks {
			row, ok := rowOf[t.URL]
			if !ok {
				return fmt.Errorf("submit batch %d: the answer has a task for %q, not submitted or twice", lo/batchItems+1, t.URL)
			}
			delete(rowOf, t.URL)
			ts = append(ts, &pollTask{row: row, id: t.ID, next: now.Add(baselinePoll)})
		}
		if len(rowOf) > 0 {
			return fmt.Errorf("submit batch %d: %d urls got no task", lo/batchItems+1, len(rowOf))
		}
		b.add(ts)
	}
	return nil
}

// post sends one batch. A 429 returns the wait before the next try.
func (b *baseline) post(ctx context.Context, body []byte) ([]apiTask, time.Duration, error) {
	code, data, retry, err := b.do(ctx, http.MethodPost, "/v3/task/batch", body)
	switch {
	case err != nil:
		return nil, 0, err
	case code == http.StatusTooManyRequests:
		b.posts429.Add(1)
		return nil, max(retry, b.interval), errors.New("429")
	case code != http.StatusOK:
		return nil, 0, fmt.Errorf("POST /v3/task/batch: %d: %.200s", code, data)
	}
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' { // the bare-array form some clients read
		var ts []apiTask
		err := json.Unmarshal(data, &ts)
		return ts, 0, err
	}
	// The SDK form; its batch id is a bare number above 2^53 and is not needed.
	var obj struct {
		Queries []apiTask `json:"queries"`
	}
	err = json.Unmarshal(data, &obj)
	return obj.Queries, 0, err
}

// do makes one request and reads the whole answer.
func (b *baseline) do(ctx context.Context, method, path string, body []byte) (int, []byte, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, rd)
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Authorization", "Basic "+benchToken)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, 0, err
	}
	var retry time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		retry = time.Duration(s) * time.Second
	}
	return resp.StatusCode, data, retry, nil
}

func (b *baseline) add(ts []*pollTask) {
	b.mu.Lock()
	for _, t := range ts {
		heap.Push(&b.queue, t)
	}
	b.mu.Unlock()
	b.poke()
}

func (b *baseline) again(t *pollTask, at time.Time) {
	t.next = at
	b.add([]*pollTask{t})
}

func (b *baseline) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// dispatch hands the tasks to the workers as their polls come due.
func (b *baseline) dispatch(ctx context.Context, work chan<- *pollTask) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var t *pollTask
		wait := time.Hour
		b.mu.Lock()
		if len(b.queue) > 0 {
			if d := time.Until(b.queue[0].next); d <= 0 {
				t = heap.Pop(&b.queue).(*pollTask)
			} else {
				wait = d
			}
		}
		b.mu.Unlock()
		if t != nil {
			select {
			case work <- t:
				continue
			case <-ctx.Done():
				return
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		case <-timer.C:
		}
	}
}

// look polls the status of t, and fetches its results once it is done.
func (b *baseline) look(ctx context.Context, t *pollTask) {
	if !t.done {
		code, data, retry, err := b.do(ctx, http.MethodGet, "/v3/task/"+t.id, nil)
		if !b.ok(ctx, t, code, retry, err) {
			return
		}
		var st struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(data, &st); err != nil {
			b.retry(t)
			return
		}
		switch st.Status {
		case "done":
			t.done = true
		case "faulted":
			b.faulted.Add(1)
			b.finish(ctx, nil)
			return
		default:
			b.again(t, time.Now().Add(baselinePoll))
			return
		}
	}
	code, data, retry, err := b.do(ctx, http.MethodGet, "/v3/task/"+t.id+"/results", nil)
	if !b.ok(ctx, t, code, retry, err) {
		return
	}
	if code == http.StatusNoContent { // done, yet no results: ask again later
		b.again(t, time.Now().Add(baselinePoll))
		return
	}
	line, err := json.Marshal(struct {
		Row     int             `json:"row"`
		URL     string          `json:"url"`
		TaskID  string          `json:"task_id"`
		Results json.RawMessage `json:"response"`
	}{t.row + 1, b.urls[t.row], t.id, data})
	if err != nil {
		b.retry(t)
		return
	}
	b.finish(ctx, append(line, '\n'))
}

// ok reports whether an answer is usable, and otherwise schedules t again
// (429, 5xx, network) or gives it up (404, other refusals).
func (b *baseline) ok(ctx context.Context, t *pollTask, code int, retry time.Duration, err error) bool {
	switch {
	case ctx.Err() != nil:
		return false
	case err != nil:
		b.retry(t)
	case code == http.StatusTooManyRequests:
		b.again(t, time.Now().Add(max(retry, time.Second)))
	case code >= 500:
		b.retry(t)
	case code == http.StatusOK || code == http.StatusNoContent:
		t.errs = 0
		return true
	default:
		b.lost.Add(1)
		b.finish(ctx, nil)
	}
	return false
}

// retry looks at t again after the poll interval, or gives it up after 10
// failed requests in a row.
func (b *baseline) retry(t *pollTask) {
	if t.errs++; t.errs > 10 {
		b.lost.Add(1)
		b.finish(context.Background(), nil)
		return
	}
	b.again(t, time.Now().Add(baselinePoll))
}

// finish hands a result line (nil for none) to the writer and counts the
// task as finished.
func (b *baseline) finish(ctx context.Context, line []byte) {
	if line != nil {
		select {
		case b.out <- line:
		case <-ctx.Done():
			return
		}
	}
	if b.left.Add(-1) == 0 {
		close(b.finished)
	}
}

type pollHeap []*pollTask

func (h pollHeap) Len() int           { return len(h) }
func (h pollHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h pollHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pollHeap) Push(x any)        { *h = append(*h, x.(*pollTask)) }
func (h *pollHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// --- numbers and the report ---

// sideResult is what one side did. Durations are in seconds.
type sideResult struct {
	Side     string `json:"side"`
	ExitCode int    `json:"exit_code"`
	Rows     int    `json:"rows"`

	ResultLines  int    `json:"result_lines"`
	DistinctRows int    `json:"distinct_rows"`
	FailedLines  int    `json:"failed_rows"`
	RejectLines  int    `json:"rejected_rows"`
	VerifyError  string `json:"verify_error,omitempty"`

	Tasks       int     `json:"tasks"`
	Gets        int     `json:"gets"`
	StatusGets  int     `json:"status_gets"`
	Results200  int     `json:"results_gets_200"`
	Results204  int     `json:"results_gets_204"`
	OtherGets   int     `json:"other_gets"`
	GetsPerTask float64 `json:"gets_per_task"`

	WaitCount int     `json:"result_wait_count"`
	WaitMean  float64 `json:"result_wait_mean_seconds"`
	WaitP50   float64 `json:"result_wait_p50_seconds"`
	WaitP95   float64 `json:"result_wait_p95_seconds"`
	WaitMax   float64 `json:"result_wait_max_seconds"`

	APIMakespan       float64 `json:"api_makespan_seconds"`
	Makespan          float64 `json:"makespan_seconds"`
	LastFetchMakespan float64 `json:"last_fetch_makespan_seconds,omitempty"`
	MakespanRatio     float64 `json:"makespan_ratio"`

	Batches     int     `json:"batches"`
	SubmitSpan  float64 `json:"submission_span_seconds"`
	SubmitBound float64 `json:"submission_span_bound_seconds"`
	// BatchOffsets are the arrival times of the accepted batches after the first.
	BatchOffsets []float64 `json:"batch_arrivals_seconds"`
	MinBatchGap  float64   `json:"batch_gap_min_seconds"`
	MaxBatchGap  float64   `json:"batch_gap_max_seconds"`
	Pacing429    int       `json:"batch_429s"`
	All429       int       `json:"all_429s"`

	Wall        float64 `json:"wall_seconds"`
	TasksPerSec float64 `json:"tasks_per_second"`

	CPUUser      float64 `json:"cpu_user_seconds,omitempty"`
	CPUSys       float64 `json:"cpu_sys_seconds,omitempty"`
	CPU          float64 `json:"cpu_seconds,omitempty"`
	CPUPerTaskUS float64 `json:"cpu_us_per_task,omitempty"`
	PeakRSSMB    float64 `json:"peak_rss_mb,omitempty"`
	CPUSource    string  `json:"cpu_source,omitempty"`

	SandboxCPU float64 `json:"sandbox_cpu_seconds"`
	// LoadBefore and LoadAfter are the 1-minute load averages of the
	// machine around the side's run (0 where /proc/loadavg is missing):
	// other work on the machine skews every time measured here.
	LoadBefore  float64         `json:"load_before"`
	LoadAfter   float64         `json:"load_after"`
	Requests    map[string]int  `json:"sandbox_requests"`
	ToolSummary json.RawMessage `json:"tool_summary,omitempty"`

	start, end, firstBatch time.Time
	cpu0, cpu1             cpuStat // the machine's CPU time around the tool's run
}

func (r *sideResult) fromStats(st sandbox.Stats, o *options) error {
	if len(st.BatchTimes) == 0 {
		return errors.New("the sandbox accepted no batch")
	}
	r.Requests = st.Requests
	r.Tasks = st.TasksCreated
	for key, n := range st.Requests {
		method, rest, _ := strings.Cut(key, " ")
		if method != http.MethodGet {
			if strings.HasSuffix(key, " 429") {
				r.All429 += n
			}
			if key == "POST /v3/task/batch 429" {
				r.Pacing429 += n
			}
			continue
		}
		r.Gets += n
		if strings.HasSuffix(key, " 429") {
			r.All429 += n
		}
		path, status, _ := strings.Cut(rest, " ")
		switch {
		case path == "/v3/task/{id}":
			r.StatusGets += n
		case path == "/v3/task/{id}/results" && status == "200":
			r.Results200 += n
		case path == "/v3/task/{id}/results" && status == "204":
			r.Results204 += n
		default:
			r.OtherGets += n
		}
	}
	if r.Tasks > 0 {
		r.GetsPerTask = float64(r.Gets) / float64(r.Tasks)
	}
	w := st.ResultWaits
	r.WaitCount = w.Count
	r.WaitMean, r.WaitP50, r.WaitP95, r.WaitMax = w.Mean.Seconds(), w.P50.Seconds(), w.P95.Seconds(), w.Max.Seconds()

	first, last := st.BatchTimes[0], st.BatchTimes[len(st.BatchTimes)-1]
	r.APIMakespan = st.LastCompletion.Sub(st.FirstCreated).Seconds()
	r.Makespan = r.end.Sub(first).Seconds()
	if r.APIMakespan > 0 {
		r.MakespanRatio = r.Makespan / r.APIMakespan
	}
	r.Batches = len(st.BatchTimes)
	r.SubmitSpan = last.Sub(first).Seconds()
	for i, t := range st.BatchTimes {
		r.BatchOffsets = append(r.BatchOffsets, t.Sub(first).Seconds())
		if i == 0 {
			continue
		}
		gap := t.Sub(st.BatchTimes[i-1]).Seconds()
		if i == 1 || gap < r.MinBatchGap {
			r.MinBatchGap = gap
		}
		r.MaxBatchGap = max(r.MaxBatchGap, gap)
	}
	r.SubmitBound = (time.Duration(r.Batches-1)*o.batchInterval + time.Second).Seconds()
	if r.Wall > 0 {
		r.TasksPerSec = float64(r.Rows) / r.Wall
	}
	r.firstBatch = first
	return nil
}

// verify checks that the side wrote one result line for each row, each
// row once, with its own URL.
func (r *sideResult) verify(dir string, urls []string) {
	var problems []string
	problem := func(format string, a ...any) {
		if len(problems) < 5 {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "results*.jsonl*"))
	slices.Sort(files)
	if len(files) == 0 {
		problem("no results*.jsonl in %s", dir)
	}
	seen := make([]bool, len(urls)+1)
	var lastFetch time.Time
	for _, name := range files {
		err := eachLine(name, func(line []byte) {
			r.ResultLines++
			var l struct {
				Row       int       `json:"row"`
				URL       string    `json:"url"`
				FetchedAt time.Time `json:"fetched_at"`
			}
			if err := json.Unmarshal(line, &l); err != nil {
				problem("%s line %d: %v", filepath.Base(name), r.ResultLines, err)
				return
			}
			switch {
			case l.Row < 1 || l.Row > len(urls):
				problem("row %d out of range", l.Row)
			case seen[l.Row]:
				problem("row %d twice", l.Row)
			default:
				seen[l.Row] = true
				r.DistinctRows++
				if l.URL != urls[l.Row-1] {
					problem("row %d has url %q, want %q", l.Row, l.URL, urls[l.Row-1])
				}
			}
			if l.FetchedAt.After(lastFetch) {
				lastFetch = l.FetchedAt
			}
		})
		if err != nil {
			problem("%s: %v", filepath.Base(name), err)
		}
	}
	if r.Side == "tool" {
		for _, f := range [2]struct {
			n    *int
			name string
		}{{&r.FailedLines, "failed.jsonl"}, {&r.RejectLines, "rejects.jsonl"}} {
			if names, _ := filepath.Glob(filepath.Join(dir, f.name+"*")); len(names) > 0 {
				*f.n = countLines(names[0]) // plain, .gz or .zst
			}
		}
		if !lastFetch.IsZero() {
			r.LastFetchMakespan = lastFetch.Sub(r.firstBatch).Seconds()
		}
	}
	if r.ResultLines != len(urls) || r.DistinctRows != len(urls) {
		problem("%d result lines, %d distinct rows, want %d", r.ResultLines, r.DistinctRows, len(urls))
	}
	r.VerifyError = strings.Join(problems, "; ")
}

func eachLine(name string, fn func([]byte)) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var rd io.Reader = f
	switch {
	case strings.HasSuffix(name, ".gz"):
		gz, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		defer gz.Close()
		rd = gz
	case strings.HasSuffix(name, ".zst"):
		zr, err := zstd.NewReader(f)
		if err != nil {
			return err
		}
		defer zr.Close()
		rd = zr
	}
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			fn(sc.Bytes())
		}
	}
	return sc.Err()
}

func countLines(name string) int {
	n := 0
	if err := eachLine(name, func([]byte) { n++ }); err != nil {
		return 0
	}
	return n
}

// report is the whole outcome; it is also the --json output.
type report struct {
	Rows            int         `json:"rows"`
	Delay           string      `json:"delay"`
	BatchInterval   string      `json:"batch_interval"`
	Seed            int64       `json:"seed"`
	Workers         int         `json:"workers"`
	BaselineWorkers int         `json:"baseline_workers"`
	Throughput      bool        `json:"throughput_mode"`
	CPUs            int         `json:"cpus"`
	Tool            *sideResult `json:"decodo_batch,omitempty"`
	Baseline        *sideResult `json:"baseline,omitempty"`
	Targets         []check     `json:"targets"`
}

// check is one target of decodo-batch; Met is nil when it was not judged
// (no baseline, or a target of the other mode).
type check struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Target string  `json:"target"`
	Met    *bool   `json:"met"`
	Note   string  `json:"note,omitempty"`
}

func (rep *report) judge() {
	rep.Targets = []check{}
	t, b := rep.Tool, rep.Baseline
	if t == nil {
		return
	}
	add := func(name string, value float64, target string, judged, met bool, note string) {
		c := check{Name: name, Value: value, Target: target, Note: note}
		if judged {
			c.Met = &met
		}
		rep.Targets = append(rep.Targets, c)
	}
	latency := !rep.Throughput
	if b != nil {
		limit := maxGetsRatio * b.GetsPerTask
		add("gets_per_task", t.GetsPerTask, fmt.Sprintf("≤ %.2f (%.1f× baseline)", limit, maxGetsRatio),
			latency, t.GetsPerTask <= limit, "")
		add("result_wait_mean_seconds", t.WaitMean, fmt.Sprintf("≤ %.2fs (baseline)", b.WaitMean),
			latency, t.WaitMean <= b.WaitMean, "")
	} else {
		add("gets_per_task", t.GetsPerTask, fmt.Sprintf("≤ %.1f× baseline", maxGetsRatio), false, false, "no baseline run")
		add("result_wait_mean_seconds", t.WaitMean, "≤ baseline", false, false, "no baseline run")
	}
	add("makespan_ratio", t.MakespanRatio, fmt.Sprintf("≤ %.2f", maxMakespan), latency, t.MakespanRatio <= maxMakespan,
		map[bool]string{true: "", false: "not in throughput mode"}[latency])
	add("submission_span_seconds", t.SubmitSpan, fmt.Sprintf("≤ %.2fs ((batches−1)×interval + 1s)", t.SubmitBound), true,
		t.SubmitSpan <= t.SubmitBound, "")
	add("batch_429s", float64(t.Pacing429), "0 (pacing)", true, t.Pacing429 == 0, "")
	note := map[bool]string{true: "", false: "throughput mode only"}[rep.Throughput]
	add("tasks_per_second", t.TasksPerSec, fmt.Sprintf("≥ %d /s (rows / wall)", minTasksPerSec), rep.Throughput,
		t.TasksPerSec >= minTasksPerSec, note)
	add("cpu_us_per_task", t.CPUPerTaskUS, fmt.Sprintf("≤ %.0f µs", maxCPUPerTask), rep.Throughput,
		t.CPUPerTaskUS <= maxCPUPerTask, note)
}

func (rep *report) target(name string) (string, string) {
	for _, c := range rep.Targets {
		if c.Name != name {
			continue
		}
		met := "-"
		if c.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*c.Met]
		}
		target := c.Target
		if c.Met == nil && c.Note != "" {
			target += " [" + c.Note + "]"
		}
		return target, met
	}
	return "", ""
}

func (rep *report) print(w io.Writer) {
	type row struct{ metric, tool, base, target, met string }
	var rows []row
	cell := func(r *sideResult, f func(*sideResult) string) string {
		if r == nil {
			return "-"
		}
		return f(r)
	}
	line := func(metric string, f func(*sideResult) string, targetName string) {
		rw := row{metric: metric, tool: cell(rep.Tool, f), base: cell(rep.Baseline, f)}
		if targetName != "" {
			rw.target, rw.met = rep.target(targetName)
		}
		rows = append(rows, rw)
	}
	secs := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "s" }
	onlyTool := func(f func(*sideResult) string) func(*sideResult) string {
		return func(r *sideResult) string {
			if r.Side != "tool" {
				return "-"
			}
			return f(r)
		}
	}

	line("rows with a result (lines / distinct)", func(r *sideResult) string {
		s := fmt.Sprintf("%d / %d", r.ResultLines, r.DistinctRows)
		if r.VerifyError != "" {
			s += " BAD"
		}
		return s
	}, "")
	line("failed / rejected rows", func(r *sideResult) string { return fmt.Sprintf("%d / %d", r.FailedLines, r.RejectLines) }, "")
	line("GETs per task (all GETs / tasks)", func(r *sideResult) string { return fmt.Sprintf("%.3f", r.GetsPerTask) }, "gets_per_task")
	line("  GETs: status / results 200 / results 204", func(r *sideResult) string {
		s := fmt.Sprintf("%d / %d / %d", r.StatusGets, r.Results200, r.Results204)
		if r.OtherGets > 0 {
			s += fmt.Sprintf(" (+%d other)", r.OtherGets)
		}
		return s
	}, "")
	line("result wait after completion, mean", func(r *sideResult) string { return secs(r.WaitMean) }, "result_wait_mean_seconds")
	line("result wait after completion, p50 / p95", func(r *sideResult) string { return secs(r.WaitP50) + " / " + secs(r.WaitP95) }, "")
	line("result wait after completion, max (n)", func(r *sideResult) string { return fmt.Sprintf("%s (%d)", secs(r.WaitMax), r.WaitCount) }, "")
	line("API makespan (last completion − first created)", func(r *sideResult) string { return secs(r.APIMakespan) }, "")
	line("makespan: 1st batch → last result written (exit)", func(r *sideResult) string { return secs(r.Makespan) }, "")
	line("  1st batch → last result fetched (fetched_at)", onlyTool(func(r *sideResult) string { return secs(r.LastFetchMakespan) }), "")
	line("makespan / API makespan", func(r *sideResult) string { return fmt.Sprintf("%.3f", r.MakespanRatio) }, "makespan_ratio")
	line("batches accepted", func(r *sideResult) string { return strconv.Itoa(r.Batches) }, "")
	line("batch submission span (last − first arrival)", func(r *sideResult) string { return secs(r.SubmitSpan) }, "submission_span_seconds")
	line("  gaps between batch arrivals, min / max", func(r *sideResult) string {
		if r.Batches < 2 {
			return "-"
		}
		return fmt.Sprintf("%.3fs / %.3fs", r.MinBatchGap, r.MaxBatchGap)
	}, "")
	line("429s: batch POST / all", func(r *sideResult) string { return fmt.Sprintf("%d / %d", r.Pacing429, r.All429) }, "batch_429s")
	line("wall time", func(r *sideResult) string { return secs(r.Wall) }, "")
	line("throughput (rows / wall)", func(r *sideResult) string { return fmt.Sprintf("%.0f tasks/s", r.TasksPerSec) }, "tasks_per_second")
	line("CPU user + sys", onlyTool(func(r *sideResult) string { return fmt.Sprintf("%.2fs + %.2fs", r.CPUUser, r.CPUSys) }), "")
	line("CPU per task", onlyTool(func(r *sideResult) string { return fmt.Sprintf("%.1f µs", r.CPUPerTaskUS) }), "cpu_us_per_task")
	line("sandbox process CPU (user + sys)", func(r *sideResult) string { return secs(r.SandboxCPU) }, "")
	line("machine load average (1 min), before / after", func(r *sideResult) string {
		return fmt.Sprintf("%.2f / %.2f", r.LoadBefore, r.LoadAfter)
	}, "")
	line("peak RSS", onlyTool(func(r *sideResult) string { return fmt.Sprintf("%.1f MB (%s)", r.PeakRSSMB, r.CPUSource) }), "")

	fmt.Fprintf(w, "rows %d, delay %s, batch interval %s, seed %d, tool workers %s, baseline workers %d, %d CPUs\n\n",
		rep.Rows, rep.Delay, rep.BatchInterval, rep.Seed,
		map[bool]string{true: "default", false: strconv.Itoa(rep.Workers)}[rep.Workers == 0], rep.BaselineWorkers, rep.CPUs)
	header := row{"metric", "decodo-batch", "baseline", "target (decodo-batch)", "met"}
	width := [5]int{}
	for _, r := range append([]row{header}, rows...) {
		for i, s := range [5]string{r.metric, r.tool, r.base, r.target, r.met} {
			width[i] = max(width[i], len([]rune(s)))
		}
	}
	pr := func(r row) {
		cells := [5]string{r.metric, r.tool, r.base, r.target, r.met}
		var b strings.Builder
		for i, s := range cells {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(s)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-len([]rune(s))))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	pr(header)
	sep := make([]string, 5)
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	fmt.Fprintln(w, strings.Join(sep, "-|-"))
	for _, r := range rows {
		pr(r)
	}
	if rep.Tool != nil && rep.Tool.VerifyError != "" {
		fmt.Fprintln(w, "\ndecodo-batch output:", rep.Tool.VerifyError)
	}
	if rep.Baseline != nil && rep.Baseline.VerifyError != "" {
		fmt.Fprintln(w, "\nbaseline output:", rep.Baseline.VerifyError)
	}
}

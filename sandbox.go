package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
	"github.com/decodo-batch/decodo-batch/job"
)

func sandboxCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8000", "address to serve on")
	state := fs.String("state", "", "keep the simulated API's tasks and counters in this file: loaded at start, saved every few seconds and at exit")
	cfg := sandbox.Config{Delay: sandbox.Delay{Kind: sandbox.Uniform, Min: 500 * time.Millisecond, Max: 3 * time.Second}}
	cfg.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: decodo-batch sandbox [flags]\n\nServes a simulated Decodo Scraper API (the four asynchronous endpoints)\nuntil interrupted. GET /_sandbox/stats shows its counters.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("sandbox takes no arguments, got %q", pos)
	}
	stopProfile, err := cpuProfile("DECODO_SANDBOX_CPUPROFILE")
	if err != nil {
		return err
	}
	defer stopProfile()
	sb := sandbox.New(cfg)
	kept := &keptSandbox{}
	if *state != "" {
		if kept, err = keepSandbox(sb, *state, slog.New(slog.NewTextHandler(stderr, nil))); err != nil {
			return err
		}
	}
	srv, bound, err := serveSandbox(*addr, sb)
	if err != nil {
		kept.close(false)
		return err
	}
	token := "any non-empty token"
	if len(cfg.Tokens) > 0 {
		token = cfg.Tokens[0]
	}
	fmt.Fprintf(stdout, "sandbox API on http://%s (token: %s; delay %s)\n", bound, token, cfg.Delay.String())
	fmt.Fprintf(stdout, "try: DECODO_TOKEN=sandbox decodo-batch run --endpoint http://%s examples/urls.csv -o out\n", bound)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := kept.close(true); err == nil {
		err = serr
	}
	return err
}

// sandboxStateFile is where run --sandbox keeps the simulated API's state,
// in OUT.
const sandboxStateFile = "sandbox-state"

// keptSandbox keeps a sandbox's state in a file, so that a stopped run and
// the same command again meet the same simulated API, as they would the
// real one. The state is loaded at start, saved after each submission the
// sandbox accepts (before the run journals it: [savingAPI]), every few
// seconds, and at the end of the run. A kill -9 loses only what changed
// since the last save besides tasks: counters, results served.
type keptSandbox struct {
	sb     *sandbox.Server
	path   string // "" for a sandbox that keeps nothing
	loaded int    // tasks known from an earlier session
	stop   chan struct{}
	done   chan struct{}
	log    *slog.Logger
	mu     sync.Mutex // one save at a time
}

// savingAPI saves the in-process sandbox's state after each submission it
// accepted, before the answer reaches the run and its journal: a kill -9
// then leaves no task in the journal that the next session's sandbox does
// not know. (The periodic saves keep what changed otherwise: counters,
// results served.)
type savingAPI struct {
	job.API
	k *keptSandbox
}

func (a savingAPI) SubmitBatch(ctx context.Context, req decodo.BatchRequest) (*decodo.BatchResponse, error) {
	resp, err := a.API.SubmitBatch(ctx, req)
	if err == nil {
		a.k.saveNow()
	}
	return resp, err
}

func (a savingAPI) Submit(ctx context.Context, params json.RawMessage) (*decodo.Task, error) {
	t, err := a.API.Submit(ctx, params)
	if err == nil {
		a.k.saveNow()
	}
	return t, err
}

// saveNow saves the state at once, logging a failure.
func (k *keptSandbox) saveNow() {
	if k.path == "" {
		return
	}
	if err := k.save(); err != nil {
		k.log.Warn("saving the sandbox's state", "err", err)
	}
}

// keepEvery is the least time between two saves of a sandbox's state; a
// large state is saved less often (keepCost).
const (
	keepEvery = 5 * time.Second
	keepCost  = 20 // at most 1/keepCost of the time goes to saving
)

func keepSandbox(sb *sandbox.Server, path string, log *slog.Logger) (*keptSandbox, error) {
	k := &keptSandbox{sb: sb, path: path, stop: make(chan struct{}), done: make(chan struct{}), log: log}
	if path == "" {
		close(k.done)
		return k, nil
	}
	if ok, err := sb.Load(path); err != nil {
		return nil, fmt.Errorf("%w (delete it to start the sandbox afresh)", err)
	} else if ok {
		k.loaded = sb.Stats().TasksCreated
	}
	go k.saveEvery()
	return k, nil
}

func (k *keptSandbox) saveEvery() {
	defer close(k.done)
	wait := keepEvery
	for {
		t := time.NewTimer(wait)
		select {
		case <-k.stop:
			t.Stop()
			return
		case <-t.C:
		}
		start := time.Now()
		if err := k.save(); err != nil {
			k.log.Warn("saving the sandbox's state", "err", err)
		}
		wait = max(keepEvery, keepCost*time.Since(start))
	}
}

// save writes the state, if OUT exists (a run that failed before creating
// it has nothing to keep).
func (k *keptSandbox) save() error {
	if _, err := os.Stat(filepath.Dir(k.path)); err != nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sb.Save(k.path)
}

// close stops the saves and, with final, saves once more.
func (k *keptSandbox) close(final bool) error {
	if k.path == "" {
		return nil
	}
	select {
	case <-k.stop:
		return nil // closed before
	default:
	}
	close(k.stop)
	<-k.done
	if !final {
		return nil
	}
	return k.save()
}

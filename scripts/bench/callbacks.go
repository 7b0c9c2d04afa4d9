//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/decodo-batch/decodo-batch/callback"
)

// The callback mode runs decodo-batch twice on identical sandboxes, once
// polling and once with --callback-url (the sandbox calls back on
// loopback), and the baseline, and prints them side by side with the
// callback mode's targets: at most 1.05 GETs per task, and a mean wait
// after completion under 0.25 s.
//
//	go run ./scripts/bench --callbacks                       # 30000 rows, lognormal delays
//	go run ./scripts/bench --callbacks --rows 5000 --callback-loss 0.05
//
// The load mode measures the receiver alone: verified callbacks per second
// on this machine (an in-process receiver, loopback clients), then a job's
// time with callbacks, alone and under --garbage-rate junk requests a
// second to its receiver.
//
//	go run ./scripts/bench --callback-load --rows 5000

const (
	maxCallbackGets = 1.05 // target: GETs per task in callback mode
	maxCallbackWait = 0.25 // target: mean seconds from completion to the results GET
)

type callbackReport struct {
	Rows         int         `json:"rows"`
	Delay        string      `json:"delay"`
	CallbackLoss float64     `json:"callback_loss_rate"`
	CPUs         int         `json:"cpus"`
	Polling      *sideResult `json:"polling"`
	Callbacks    *sideResult `json:"callbacks"`
	Baseline     *sideResult `json:"baseline,omitempty"`
	Targets      []check     `json:"targets"`
}

func runCallbackMode(ctx context.Context, o *options, bin, tmp, input string, urls []string, stdout io.Writer, logf func(string, ...any)) error {
	client := loopbackClient(o.baselineWorkers)
	defer client.CloseIdleConnections()
	rep := &callbackReport{Rows: o.rows, Delay: o.delay, CallbackLoss: o.callbackLoss, CPUs: runtime.NumCPU()}
	var failures []string
	out := filepath.Join(tmp, "tool-out")
	for _, side := range []string{"polling", "callbacks", "baseline"} {
		if side == "baseline" && o.only == "tool" {
			continue
		}
		mo := *o
		name := "tool"
		switch side {
		case "callbacks":
			port, err := freePort()
			if err != nil {
				return err
			}
			mo.toolExtra = append(mo.toolExtra, "--callback-url", fmt.Sprintf("http://127.0.0.1:%d/decodo", port))
			if o.callbackLoss > 0 {
				mo.sandboxExtra = append(mo.sandboxExtra, "--callback-loss-rate", strconv.FormatFloat(o.callbackLoss, 'g', -1, 64))
			}
		case "baseline":
			name = "baseline"
		}
		logf("callbacks: side %s", side)
		res, err := measure(ctx, name, &mo, client, bin, tmp, input, urls, logf)
		if err != nil {
			return fmt.Errorf("%s: %w", side, err)
		}
		res.Side = side
		if res.VerifyError != "" {
			failures = append(failures, side+": "+res.VerifyError)
		}
		switch side {
		case "polling":
			rep.Polling = res
		case "callbacks":
			rep.Callbacks = res
		default:
			rep.Baseline = res
		}
		if err := os.RemoveAll(out); err != nil {
			return err
		}
	}
	c := rep.Callbacks
	judge := func(name string, v float64, target string, met bool) {
		rep.Targets = append(rep.Targets, check{Name: name, Value: v, Target: target, Met: &met})
	}
	judge("callback_gets_per_task", c.GetsPerTask, fmt.Sprintf("≤ %.2f", maxCallbackGets), c.GetsPerTask <= maxCallbackGets)
	judge("callback_result_wait_mean_seconds", c.WaitMean, fmt.Sprintf("< %.2fs", maxCallbackWait), c.WaitMean < maxCallbackWait)
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printCallbacks(stdout, o, rep)
	}
	if len(failures) > 0 {
		return fmt.Errorf("output verification failed: %s", strings.Join(failures, "; "))
	}
	return nil
}

func printCallbacks(w io.Writer, o *options, rep *callbackReport) {
	fmt.Fprintf(w, "rows %d, delay %s, batch interval %s, seed %d, callback loss %.2f, %d CPUs\n\n",
		rep.Rows, rep.Delay, o.batchInterval, o.seed, rep.CallbackLoss, rep.CPUs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	sides := []*sideResult{rep.Polling, rep.Callbacks, rep.Baseline}
	fmt.Fprint(tw, "metric\tpolling\tcallbacks\tbaseline\ttarget (callbacks)\n")
	row := func(metric string, f func(*sideResult) string, target string) {
		cells := []string{metric}
		for _, s := range sides {
			if s == nil {
				cells = append(cells, "-")
			} else {
				cells = append(cells, f(s))
			}
		}
		fmt.Fprintln(tw, strings.Join(append(cells, target), "\t"))
	}
	met := func(name string) string {
		for _, c := range rep.Targets {
			if c.Name == name {
				return c.Target + " " + map[bool]string{true: "yes", false: "NO"}[*c.Met]
			}
		}
		return ""
	}
	secs := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) + "s" }
	row("rows with a result (lines / distinct)", func(r *sideResult) string {
		s := fmt.Sprintf("%d / %d", r.ResultLines, r.DistinctRows)
		if r.VerifyError != "" {
			s += " BAD"
		}
		return s
	}, "")
	row("tasks created", func(r *sideResult) string { return strconv.Itoa(r.Tasks) }, "")
	row("GETs per task", func(r *sideResult) string { return fmt.Sprintf("%.3f", r.GetsPerTask) }, met("callback_gets_per_task"))
	row("  status / results 200 / results 204", func(r *sideResult) string {
		return fmt.Sprintf("%d / %d / %d", r.StatusGets, r.Results200, r.Results204)
	}, "")
	row("wait after completion, mean", func(r *sideResult) string { return secs(r.WaitMean) }, met("callback_result_wait_mean_seconds"))
	row("wait after completion, p50 / p95 / max", func(r *sideResult) string {
		return secs(r.WaitP50) + " / " + secs(r.WaitP95) + " / " + secs(r.WaitMax)
	}, "")
	row("makespan / API makespan", func(r *sideResult) string { return fmt.Sprintf("%.3f", r.MakespanRatio) }, "")
	row("wall time", func(r *sideResult) string { return secs(r.Wall) }, "")
	row("tool CPU user + sys", func(r *sideResult) string {
		if r.Side == "baseline" {
			return "-"
		}
		return fmt.Sprintf("%.2fs + %.2fs", r.CPUUser, r.CPUSys)
	}, "")
	row("machine load before / after", func(r *sideResult) string { return fmt.Sprintf("%.2f / %.2f", r.LoadBefore, r.LoadAfter) }, "")
	tw.Flush()
	if c := rep.Callbacks; c != nil && len(c.ToolSummary) > 0 {
		var s struct {
			Callbacks json.RawMessage `json:"callbacks"`
		}
		if json.Unmarshal(c.ToolSummary, &s) == nil && len(s.Callbacks) > 0 {
			fmt.Fprintf(w, "\ncallback receiver (summary.json): %s\n", s.Callbacks)
		}
	}
}

// loadReport is the load mode's outcome.
type loadReport struct {
	CPUs            int     `json:"cpus"`
	Clients         int     `json:"clients"`
	Verified        int64   `json:"verified_callbacks"`
	VerifiedSeconds float64 `json:"verified_seconds"`
	VerifiedPerSec  float64 `json:"verified_per_second"`
	Rows            int     `json:"job_rows"`
	JobAlone        float64 `json:"job_wall_alone_seconds"`
	JobGarbage      float64 `json:"job_wall_under_garbage_seconds"`
	WaitAlone       float64 `json:"job_wait_mean_alone_seconds"`
	WaitGarbage     float64 `json:"job_wait_mean_under_garbage_seconds"`
	RatioAlone      float64 `json:"job_makespan_ratio_alone"`
	RatioGarbage    float64 `json:"job_makespan_ratio_under_garbage"`
	GarbageRate     int     `json:"garbage_per_second"`
	GarbageSent     int64   `json:"garbage_sent"`
	GarbageAnswered int64   `json:"garbage_answered_4xx"`
	GarbageOther    int64   `json:"garbage_other_answers"`
	Rejected        any     `json:"job_receiver_rejected,omitempty"`
}

func runCallbackLoad(ctx context.Context, o *options, bin, tmp, input string, urls []string, stdout io.Writer, logf func(string, ...any)) error {
	rep := &loadReport{CPUs: runtime.NumCPU(), Clients: 64, Rows: o.rows, GarbageRate: o.garbageRate}

	// 1. The receiver alone: how many verified callbacks a second.
	logf("load: verified callbacks against an in-process receiver, %d clients", rep.Clients)
	n, secs, err := verifiedRate(ctx, rep.Clients, 5*time.Second)
	if err != nil {
		return err
	}
	rep.Verified, rep.VerifiedSeconds, rep.VerifiedPerSec = n, secs, float64(n)/secs

	// 2. A job with callbacks, alone, then under garbage.
	client := loopbackClient(o.baselineWorkers)
	defer client.CloseIdleConnections()
	out := filepath.Join(tmp, "tool-out")
	for _, garbage := range []bool{false, true} {
		port, err := freePort()
		if err != nil {
			return err
		}
		mo := *o
		cbURL := fmt.Sprintf("http://127.0.0.1:%d/decodo", port)
		mo.toolExtra = append(mo.toolExtra, "--callback-url", cbURL)
		var stop func() (int64, int64, int64)
		if garbage {
			logf("load: job with %d garbage requests a second to its receiver", o.garbageRate)
			stop = sendGarbage(ctx, cbURL, o.garbageRate)
		} else {
			logf("load: job alone")
		}
		res, err := measure(ctx, "tool", &mo, client, bin, tmp, input, urls, logf)
		if stop != nil {
			rep.GarbageSent, rep.GarbageAnswered, rep.GarbageOther = stop()
		}
		if err != nil {
			return err
		}
		if res.VerifyError != "" {
			return fmt.Errorf("job output: %s", res.VerifyError)
		}
		if garbage {
			rep.JobGarbage, rep.WaitGarbage, rep.RatioGarbage = res.Wall, res.WaitMean, res.MakespanRatio
			var s struct {
				Callbacks struct {
					Rejected any `json:"rejected"`
				} `json:"callbacks"`
			}
			if json.Unmarshal(res.ToolSummary, &s) == nil {
				rep.Rejected = s.Callbacks.Rejected
			}
		} else {
			rep.JobAlone, rep.WaitAlone, rep.RatioAlone = res.Wall, res.WaitMean, res.MakespanRatio
		}
		if err := os.RemoveAll(out); err != nil {
			return err
		}
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "receiver alone: %d verified callbacks in %.1fs = %.0f /s (%d keep-alive clients, %d CPUs, client in the same process)\n",
		rep.Verified, rep.VerifiedSeconds, rep.VerifiedPerSec, rep.Clients, rep.CPUs)
	fmt.Fprintf(stdout, "job of %d rows, delay %s, with callbacks: %.2fs alone, %.2fs under %d garbage requests/s (%+.1f%%)\n",
		rep.Rows, o.delay, rep.JobAlone, rep.JobGarbage, rep.GarbageRate, 100*(rep.JobGarbage/rep.JobAlone-1))
	fmt.Fprintf(stdout, "  mean wait after completion %.3fs alone, %.3fs under garbage; last result / API makespan %.3f alone, %.3f under garbage\n",
		rep.WaitAlone, rep.WaitGarbage, rep.RatioAlone, rep.RatioGarbage)
	fmt.Fprintf(stdout, "garbage: %d sent, %d answered 4xx, %d other answers or errors; receiver counted %v\n",
		rep.GarbageSent, rep.GarbageAnswered, rep.GarbageOther, rep.Rejected)
	return nil
}

// verifiedRate runs an in-process receiver and has clients POST distinct
// verified callbacks to it for d; it returns how many were accepted.
func verifiedRate(ctx context.Context, clients int, d time.Duration) (int64, float64, error) {
	signer := callback.NewSigner([]byte(strings.Repeat("k", callback.SecretSize)))
	r := callback.New(callback.Config{Addr: "127.0.0.1:0", Buffer: 1 << 20}, signer)
	if err := r.Listen(); err != nil {
		return 0, 0, err
	}
	go r.Serve() //nolint:errcheck
	defer r.Shutdown(context.Background())
	go func() { // the owner's side: take the events
		for range r.Events() {
		}
	}()
	const perClient = 1 << 20
	pt := signer.Sign(1)
	ids := make([]string, 0, 1<<16)
	for i := range cap(ids) {
		ids = append(ids, strconv.Itoa(7_000_000_000_000_000_000+i))
	}
	r.Expect(pt, ids...)
	url := "http://" + r.Addr().String() + "/decodo"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	var sent, ok atomic.Int64
	dctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for i := 0; i < perClient && dctx.Err() == nil; i++ {
				// Distinct ids first (accepted), then duplicates (verified
				// too, answered 200 at the same cost).
				k := sent.Add(1)
				id := ids[int(k)%len(ids)]
				body := `{"id":"` + id + `","status":"done","passthrough":"` + pt + `"}`
				req, _ := http.NewRequestWithContext(dctx, http.MethodPost, url, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	hc.CloseIdleConnections()
	return ok.Load(), secs, nil
}

// sendGarbage sends rate junk requests a second to url until the returned
// function is called, which reports how many were sent, answered 4xx, and
// answered otherwise or not at all (the receiver not up yet, or the job
// over).
func sendGarbage(ctx context.Context, url string, rate int) func() (int64, int64, int64) {
	ctx, cancel := context.WithCancel(ctx)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	var sent, bad, other atomic.Int64
	var wg sync.WaitGroup
	junk := []func(r *rand.Rand) (string, string){
		func(*rand.Rand) (string, string) { return http.MethodPost, `{"id":` },
		func(r *rand.Rand) (string, string) {
			return http.MethodPost, fmt.Sprintf(`{"id":"%d","status":"done","passthrough":"v1.%d.AAAA"}`, r.Uint64()>>1, r.Uint64())
		},
		func(r *rand.Rand) (string, string) {
			return http.MethodPost, fmt.Sprintf(`{"task_id":%d,"status":"faulted","passtrough":"nope"}`, r.Uint64()>>1)
		},
		func(*rand.Rand) (string, string) { return http.MethodGet, "" },
		func(*rand.Rand) (string, string) {
			return http.MethodPost, `{"pad":"` + strings.Repeat("x", 70_000) + `"}`
		},
	}
	wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		sem := make(chan struct{}, 64)
		r := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			method, body := junk[r.IntN(len(junk))](r)
			sent.Add(1)
			select {
			case sem <- struct{}{}:
			default:
				other.Add(1) // more than 64 outstanding: counted, not sent
				continue
			}
			wg.Go(func() {
				defer func() { <-sem }()
				req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
				resp, err := hc.Do(req)
				if err != nil {
					other.Add(1)
					return
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck
				resp.Body.Close()
				if resp.StatusCode >= 400 && resp.StatusCode < 500 {
					bad.Add(1)
				} else {
					other.Add(1)
				}
			})
		}
	})
	return func() (int64, int64, int64) {
		cancel()
		wg.Wait()
		hc.CloseIdleConnections()
		return sent.Load(), bad.Load(), other.Load()
	}
}

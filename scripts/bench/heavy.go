//go:build unix

package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// The heavy-content mode measures how fast decodo-batch moves large pages
// from the network to disk in each of its output modes, against a sandbox
// that answers pages like real ones (--content-kind html) of
// --content-size bytes, with a fixed task delay: each mode runs alone
// against a fresh sandbox, and the figure that matters is the tool's last
// result against the API's last completion. The target: with zstd,
// within 1.10× on 2 cores.
//
//	go run ./scripts/bench --heavy all                       # 30000 rows of 100 KB
//	go run ./scripts/bench --heavy zstd,content-dir --rows 10000

// heavyModes are the output modes and the flags that select them.
var heavyModes = []struct {
	name string
	args []string
}{
	{"plain", nil},
	{"gzip", []string{"--compress"}},
	{"zstd", []string{"--compress=zstd"}},
	{"content-dir", []string{"--content-dir"}},
}

// maxHeavyRatio is the target of the zstd mode.
const maxHeavyRatio = 1.10

// heavyResult is one mode's figures. Durations are in seconds.
type heavyResult struct {
	Mode string `json:"mode"`
	// Ratio is the tool's last result written (its exit) over the API's
	// last completion, both from the first batch; FetchRatio uses the last
	// result fetched instead (the lines' fetched_at).
	Ratio       float64 `json:"ratio_last_result_to_api_last_completion"`
	FetchRatio  float64 `json:"ratio_last_fetch_to_api_last_completion"`
	APIMakespan float64 `json:"api_makespan_seconds"`
	// IdealRatio is the tool's last result over the API's makespan had
	// every batch gone out full at the batch interval: (⌈rows / 3000⌉ − 1)
	// × interval + the task delay. A tool that falls behind may also send
	// its batches later or less full, which stretches the API's makespan
	// and flatters Ratio.
	IdealMakespan float64 `json:"ideal_api_makespan_seconds"`
	IdealRatio    float64 `json:"ratio_last_result_to_ideal_api_makespan"`
	Wall          float64 `json:"wall_seconds"`
	CPUUser       float64 `json:"cpu_user_seconds"`
	CPUSys        float64 `json:"cpu_sys_seconds"`
	PeakRSSMB     float64 `json:"peak_rss_mb"`
	BytesWritten  int64   `json:"bytes_written"`
	Files         int     `json:"files_written"`
	SandboxCPU    float64 `json:"sandbox_cpu_seconds"`
	// MachineBusy and MachineIOWait are the shares of all the machine's
	// CPU time over the run spent busy (any process) and waiting for disk.
	MachineBusy float64 `json:"machine_busy"`
	// BusyAfterFirst is MachineBusy over the time from the first possible
	// completion (the task delay in) to the end: before it there is
	// nothing to fetch, so a tool bound by the CPU is busy only after.
	AfterFirst     float64 `json:"seconds_after_first_completion"`
	BusyAfterFirst float64 `json:"machine_busy_after_first_completion"`
	MachineIOWait  float64 `json:"machine_iowait"`
	DiskRate       float64 `json:"disk_write_rate_bytes_per_second"` // of a plain 512 MB write and fsync, before the modes
	Limit          string  `json:"limit"`
	VerifyError    string  `json:"verify_error,omitempty"`
}

func runHeavy(ctx context.Context, o *options, bin, tmp, input string, urls []string, stdout io.Writer, logf func(string, ...any)) error {
	want := map[string]bool{}
	for _, m := range strings.Split(o.heavy, ",") {
		want[strings.TrimSpace(m)] = true
	}
	client := loopbackClient(o.baselineWorkers)
	defer client.CloseIdleConnections()
	disk, err := diskRate(tmp)
	if err != nil {
		logf("heavy: the disk's rate is unknown (%v): no mode is said to be bound by it but for waiting on it", err)
	} else {
		logf("heavy: this disk writes and fsyncs %.0f MB/s (512 MB in 1 MB writes)", disk/1e6)
	}
	var results []*heavyResult
	var failures []string
	for _, m := range heavyModes {
		if !want[m.name] && !want["all"] {
			continue
		}
		mo := *o
		mo.sandboxExtra = []string{"--content-size", strconv.Itoa(o.contentSize), "--content-kind", "html"}
		mo.toolExtra = m.args
		logf("heavy: mode %s: %d rows of %d bytes, delay %s", m.name, o.rows, o.contentSize, o.delay)
		res, err := measure(ctx, "tool", &mo, client, bin, tmp, input, urls, logf)
		if err != nil {
			return fmt.Errorf("mode %s: %w", m.name, err)
		}
		h := &heavyResult{Mode: m.name, Ratio: res.MakespanRatio, APIMakespan: res.APIMakespan, Wall: res.Wall,
			CPUUser: res.CPUUser, CPUSys: res.CPUSys, PeakRSSMB: res.PeakRSSMB, SandboxCPU: res.SandboxCPU,
			VerifyError: res.VerifyError}
		if res.APIMakespan > 0 {
			h.FetchRatio = res.LastFetchMakespan / res.APIMakespan
		}
		if d, err := sandbox.ParseDelay(o.delay); err == nil && d.Kind == sandbox.Fixed {
			full := (o.rows + batchItems - 1) / batchItems // batches at full pace
			h.IdealMakespan = (time.Duration(full-1)*o.batchInterval + d.Fixed).Seconds()
			h.IdealRatio = res.Makespan / h.IdealMakespan
		}
		h.MachineBusy, h.MachineIOWait = res.cpu1.share(res.cpu0)
		h.AfterFirst, h.BusyAfterFirst = h.Wall, h.MachineBusy
		if d, err := sandbox.ParseDelay(o.delay); err == nil && d.Kind == sandbox.Fixed && h.Wall > d.Fixed.Seconds() {
			h.AfterFirst = h.Wall - d.Fixed.Seconds()
			h.BusyAfterFirst = min(1, h.MachineBusy*h.Wall/h.AfterFirst)
		}
		out := filepath.Join(tmp, "tool-out")
		h.BytesWritten, h.Files = du(out)
		h.DiskRate = disk
		h.Limit = limitOf(h)
		if h.VerifyError != "" {
			failures = append(failures, m.name+": "+h.VerifyError)
		}
		results = append(results, h)
		logf("heavy: mode %s: ratio %.3f, wall %.1fs, %.0f MB written", m.name, h.Ratio, h.Wall, float64(h.BytesWritten)/1e6)
		if err := os.RemoveAll(out); err != nil { // gigabytes: not kept for the next mode
			return err
		}
	}
	if len(results) == 0 {
		return &usageError{"--heavy: no known mode in " + strconv.Quote(o.heavy) + " (plain, gzip, zstd, content-dir, all)"}
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"rows": o.rows, "content_size": o.contentSize, "delay": o.delay,
			"batch_interval": o.batchInterval.String(), "cpus": runtime.NumCPU(), "modes": results}); err != nil {
			return err
		}
	} else {
		printHeavy(stdout, o, results)
	}
	if len(failures) > 0 {
		return fmt.Errorf("output verification failed: %s", strings.Join(failures, "; "))
	}
	return nil
}

// limitOf names what most likely held the mode back: the CPU when the
// machine was nearly all busy once results could come, the disk when the
// mode wrote at most of the disk's rate over that time or waited for it a
// good share of the time, else the network or something else.
func limitOf(h *heavyResult) string {
	switch {
	case h.Ratio <= maxHeavyRatio:
		return "API pace (kept up)"
	case h.BusyAfterFirst >= 0.9:
		return "CPU"
	case h.DiskRate > 0 && float64(h.BytesWritten)/h.AfterFirst >= 0.6*h.DiskRate, h.MachineIOWait >= 0.08:
		return "disk"
	}
	return "network / other"
}

func printHeavy(w io.Writer, o *options, rs []*heavyResult) {
	fmt.Fprintf(w, "heavy content: %d rows of %d bytes (html like real pages), delay %s, batch interval %v, %d CPUs\n\n",
		o.rows, o.contentSize, o.delay, o.batchInterval, runtime.NumCPU())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\tlast result / API last completion\tlast fetch / API\tAPI makespan (ideal)\tlast result / ideal\twall\tCPU user + sys\tpeak RSS\twritten\tsandbox CPU\tmachine busy / iowait\tlimit")
	for _, h := range rs {
		ratio := fmt.Sprintf("%.3f", h.Ratio)
		if h.Mode == "zstd" {
			ratio += map[bool]string{true: " (target ≤ 1.10: met)", false: " (target ≤ 1.10: NOT met)"}[h.Ratio <= maxHeavyRatio]
		}
		if h.VerifyError != "" {
			ratio += " BAD OUTPUT"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.1fs (%.1fs)\t%.3f\t%.1fs\t%.1fs + %.1fs\t%.0f MB\t%.0f MB in %d files (%.0f MB/s)\t%.1fs\t%.0f%% / %.0f%%\t%s\n",
			h.Mode, ratio, h.FetchRatio, h.APIMakespan, h.IdealMakespan, h.IdealRatio, h.Wall, h.CPUUser, h.CPUSys, h.PeakRSSMB,
			float64(h.BytesWritten)/1e6, h.Files, float64(h.BytesWritten)/1e6/max(h.Wall, 1e-9), h.SandboxCPU,
			100*h.MachineBusy, 100*h.MachineIOWait, h.Limit)
	}
	tw.Flush()
}

// du returns the bytes and files under dir.
func du(dir string) (int64, int) {
	var n int64
	files := 0
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
			files++
		}
		return nil
	})
	return n, files
}

// cpuStat is the machine's CPU time from /proc/stat, in ticks.
type cpuStat struct {
	total, idle, iowait int64
	at                  time.Time
}

func readCPUStat() cpuStat {
	st := cpuStat{at: time.Now()}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return st
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return st
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest time is counted in user already
			break
		}
		st.total += n
		switch i {
		case 3:
			st.idle = n
		case 4:
			st.iowait = n
		}
	}
	return st
}

// share returns the busy and iowait shares of the CPU time since before.
func (s cpuStat) share(before cpuStat) (busy, iowait float64) {
	total := float64(s.total - before.total)
	if total <= 0 {
		return 0, 0
	}
	idle := float64(s.idle - before.idle + s.iowait - before.iowait)
	return 1 - idle/total, float64(s.iowait-before.iowait) / total
}

// diskRate returns the bytes a second this disk takes in a plain sequential
// write of 512 MB in 1 MB writes, fsynced, under dir.
func diskRate(dir string) (float64, error) {
	f, err := os.CreateTemp(dir, "disk-probe-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	rand.Read(buf) // not compressible, should the file system compress

	start := time.Now()
	for range 512 {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return 512 * (1 << 20) / time.Since(start).Seconds(), nil
}

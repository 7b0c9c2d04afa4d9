package job

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/batcher"
	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/results"
	"github.com/decodo-batch/decodo-batch/poller"
)

// urlLines returns the TXT lines of rows lo..hi.
func urlLines(lo, hi int) string {
	var b strings.Builder
	for i := lo; i <= hi; i++ {
		fmt.Fprintf(&b, "https://example.com/g/%d\n", i)
	}
	return b.String()
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestGrownInputTakesNewRows is the nightly cron job: 1,000 rows appended
// to a finished job's input are submitted, and only they (the sandbox
// counts the tasks created); the run exits 0 with every row once. The
// summary then covers both sessions, and a third run with nothing to do
// keeps the figures of the first two instead of erasing them.
func TestGrownInputTakesNewRows(t *testing.T) {
	t.Parallel()
	sb, api := fastSandbox(t, sandbox.Config{})
	input := writeFile(t, "in.txt", urlLines(1, 2000))
	cfg := testConfig(t, api, input)
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("first run: %v", err)
	}
	if n := sb.Stats().TasksCreated; n != 2000 {
		t.Fatalf("first run created %d tasks, want 2000", n)
	}
	appendFile(t, input, []byte(urlLines(2001, 3000)))

	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run of the grown input: %v", err)
	}
	if n := sb.Stats().TasksCreated; n != 3000 {
		t.Fatalf("the grown input's run created %d tasks, want exactly the 1000 new rows", n-2000)
	}
	if sum.Rows != 3000 || sum.Results != 3000 {
		t.Fatalf("summary: %d rows, %d results; want 3000, 3000", sum.Rows, sum.Results)
	}
	seen := outcomes(t, cfg.Out)
	if len(seen) != 3000 {
		t.Fatalf("%d rows in the outputs, want 3000", len(seen))
	}
	for _, m := range readLines(t, filepath.Join(cfg.Out, "results.jsonl")) {
		row := int64(m["row"].(float64))
		if want := fmt.Sprintf("https://example.com/g/%d", row); m["url"] != want {
			t.Fatalf("row %d has url %v, want %s", row, m["url"], want)
		}
	}
	st, err := checkpoint.Read(filepath.Join(cfg.Out, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(input)
	if st.Header.InputSize != fi.Size() || st.Rows != 3000 {
		t.Errorf("journal: input size %d, rows %d; want %d, 3000", st.Header.InputSize, st.Rows, fi.Size())
	}

	// The summary: both sessions, what each paid for and completed.
	checkSessions(t, sum, []int64{2000, 1000}, []int64{2000, 1000})
	if sum.TasksPaid != 3000 {
		t.Errorf("tasks paid %d, want 3000", sum.TasksPaid)
	}

	// A run with nothing to do keeps the figures of the earlier sessions.
	before := sum.Requests["POST /v3/task/batch 200"]
	sum, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("no-op rerun: %v", err)
	}
	checkSessions(t, sum, []int64{2000, 1000, 0}, []int64{2000, 1000, 0})
	var onDisk Summary
	if err := results.ReadSummary(cfg.Out, &onDisk); err != nil {
		t.Fatal(err)
	}
	checkSessions(t, &onDisk, []int64{2000, 1000, 0}, []int64{2000, 1000, 0})
	if onDisk.TasksPaid != 3000 || onDisk.Results != 3000 || onDisk.Requests["POST /v3/task/batch 200"] != before || before == 0 {
		t.Errorf("summary.json after a no-op rerun: %d paid, %d results, %d batch POSTs (before: %d)",
			onDisk.TasksPaid, onDisk.Results, onDisk.Requests["POST /v3/task/batch 200"], before)
	}
	if onDisk.GetsPerTask <= 0 || onDisk.Seconds <= 0 || onDisk.Batches == 0 {
		t.Errorf("summary.json after a no-op rerun lost its totals: %+v", onDisk)
	}
}

// checkSessions checks the summary's sessions: how many, the rows each
// completed, the tasks each paid for, and that each ended as done.
func checkSessions(t *testing.T, s *Summary, completed, paid []int64) {
	t.Helper()
	if len(s.Sessions) != len(completed) {
		t.Fatalf("%d sessions in the summary, want %d", len(s.Sessions), len(completed))
	}
	var reqs int64
	for i, e := range s.Sessions {
		if e.RowsCompleted != completed[i] || e.TasksPaid != paid[i] || e.Outcome != "done" || e.End == nil || e.Start.IsZero() {
			t.Errorf("session %d: %d rows completed, %d paid, outcome %q, end %v; want %d, %d, done", i+1, e.RowsCompleted, e.TasksPaid, e.Outcome, e.End, completed[i], paid[i])
		}
		for _, n := range e.Requests {
			reqs += n
		}
	}
	var total int64
	for _, n := range s.Requests {
		total += n
	}
	if total != reqs {
		t.Errorf("requests total %d, the sessions' sum %d", total, reqs)
	}
}

// TestGrownGzipInput proves a .gz input grown by an appended gzip member
// resumes and takes only the new rows.
func TestGrownGzipInput(t *testing.T) {
	t.Parallel()
	sb, api := fastSandbox(t, sandbox.Config{})
	member := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	input := filepath.Join(t.TempDir(), "in.txt.gz")
	if err := os.WriteFile(input, member(urlLines(1, 300)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, api, input)
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("first run: %v", err)
	}
	appendFile(t, input, member(urlLines(301, 500)))
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run of the grown input: %v", err)
	}
	if n := sb.Stats().TasksCreated; n != 500 || sum.Results != 500 || len(outcomes(t, cfg.Out)) != 500 {
		t.Fatalf("%d tasks created, %d results; want 500 each", n, sum.Results)
	}
}

// TestChangedInputStillRefused proves that growth is the only change a
// resume accepts: an input changed before its end, or whose last line had
// no line end before more was appended (the last row itself changed), is
// refused with a MismatchError and nothing is submitted.
func TestChangedInputStillRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		first  string
		change func(path string)
	}{
		{"a byte changed before the end, then rows appended", urlLines(1, 100), func(p string) {
			data, _ := os.ReadFile(p)
			data[30] = 'X'
			os.WriteFile(p, append(data, urlLines(101, 110)...), 0o644)
		}},
		{"no line end at the old end", strings.TrimSuffix(urlLines(1, 100), "\n"), func(p string) {
			appendFile(t, p, []byte("0\n"+urlLines(101, 110)))
		}},
		{"shrunk", urlLines(1, 100), func(p string) {
			os.WriteFile(p, []byte(urlLines(1, 90)), 0o644)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb, api := fastSandbox(t, sandbox.Config{})
			input := writeFile(t, "in.txt", tt.first)
			cfg := testConfig(t, api, input)
			if _, err := Run(context.Background(), cfg); err != nil {
				t.Fatalf("first run: %v", err)
			}
			tt.change(input)
			_, err := Run(context.Background(), cfg)
			var mm *checkpoint.MismatchError
			if !errors.As(err, &mm) {
				t.Fatalf("err = %v, want a MismatchError", err)
			}
			if n := sb.Stats().TasksCreated; n != 100 {
				t.Errorf("%d tasks created, want the first run's 100", n)
			}
		})
	}
}

// TestPowerLossGrown cuts the run of a grown input at each of its fsyncs,
// with and without journal compaction, builds the states a power cut can
// leave, and resumes each: every row of the grown input ends in results
// once, and the rows of the first run are never paid for again.
func TestPowerLossGrown(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("many resumed runs; skipped with -short")
	}
	const first, rows, batchSize = 20, 40, 10
	for _, compact := range []bool{false, true} {
		t.Run(fmt.Sprintf("compact=%v", compact), func(t *testing.T) {
			t.Parallel()
			sb, api := fastSandbox(t, sandbox.Config{BatchInterval: time.Millisecond,
				Delay: sandbox.Delay{Kind: sandbox.Uniform, Min: time.Millisecond, Max: 15 * time.Millisecond}})
			rng := rand.New(rand.NewPCG(3, uint64(len(t.Name()))))
			states := 0
			for k := 1; ; k++ {
				input := writeFile(t, "in.txt", urlLines(1, first))
				config := func(out string) Config {
					return Config{
						Input: input, Out: out, forceCompact: compact,
						Batch: batcher.Config{Size: batchSize, Interval: 2 * time.Millisecond, FillWait: time.Millisecond, InFlight: inFlight,
							Backoff: decodo.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}},
						Poll: poller.Config{Workers: 4, MaxGap: 5 * time.Millisecond, StatusAfter: time.Second,
							Backoff: decodo.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}},
						API: api,
					}
				}
				root := t.TempDir()
				rec := &recorder{root: root, cutAt: -1, sb: sb, durable: newDisk()}
				watchPath(t, root, rec.fsync)
				out := filepath.Join(root, "out")
				if _, err := Run(context.Background(), config(out)); err != nil {
					t.Fatalf("first run: %v", err)
				}
				appendFile(t, input, []byte(urlLines(first+1, rows)))
				rec.mu.Lock()
				rec.cutAt = rec.n + k
				rec.mu.Unlock()
				base := sb.Stats().TasksCreated
				_, err := Run(context.Background(), config(out))
				rec.mu.Lock()
				cut := rec.cut
				rec.mu.Unlock()
				if !cut {
					if err != nil {
						t.Fatalf("grown run without a cut: %v", err)
					}
					break
				}
				for v := range fewerStates() {
					dst := t.TempDir()
					if err := rec.build(dst, rng, v == 0); err != nil {
						t.Fatal(err)
					}
					before := sb.Stats().TasksCreated
					out := filepath.Join(dst, "out")
					if _, err := Run(context.Background(), config(out)); err != nil {
						t.Fatalf("cut at fsync %d, state %d: resume: %v", k, v, err)
					}
					checkOutputs(t, out, false, rows, fmt.Sprintf("cut at fsync %d, state %d", k, v))
					paid := rec.created - base + sb.Stats().TasksCreated - before
					if twice := paid - (rows - first); twice < 0 || twice > (inFlight+1)*batchSize {
						t.Errorf("cut at fsync %d, state %d: %d tasks paid for the %d new rows", k, v, paid, rows-first)
					}
					states++
				}
			}
			t.Logf("%d crash states of a grown input resumed", states)
		})
	}
}

// TestSummaryWithoutPreviousSummary proves a summary.json that is
// unreadable, or written before summaries had sessions, does not lose the
// sessions: the journal gives each its start and the rows it completed
// (outcome unknown when nothing else is known), and an old summary's
// figures become the entry of the session it described.
func TestSummaryWithoutPreviousSummary(t *testing.T) {
	t.Parallel()
	_, api := fastSandbox(t, sandbox.Config{})
	input := writeFile(t, "in.txt", urlLines(1, 200))
	cfg := testConfig(t, api, input)
	cfg.NoWait = true
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrStopped) {
		t.Fatalf("--no-wait: %v", err)
	}
	path := filepath.Join(cfg.Out, results.SummaryFile)
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.NoWait = false
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := checkpoint.Read(filepath.Join(cfg.Out, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Sessions) != 2 || !sum.Sessions[0].Start.Equal(st.Sessions[0].Start) || sum.Sessions[0].Outcome != "unknown" ||
		sum.Sessions[0].End != nil || sum.Sessions[1].Outcome != "done" || sum.Sessions[1].RowsCompleted != 200 {
		t.Fatalf("after an unreadable summary.json: %+v", sum.Sessions)
	}

	// A summary.json of the old form (no sessions) describing the second
	// session: its figures are that session's entry.
	old := fmt.Sprintf(`{"started":%q,"ended":%q,"outcome":"partial","batches":7,"requests":{"POST /v3/task/batch 200":7},"seconds":2}`,
		st.Sessions[1].Start.Add(-time.Millisecond).Format(time.RFC3339Nano), st.Sessions[1].Start.Add(time.Second).Format(time.RFC3339Nano))
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Sessions) != 3 || sum.Sessions[1].Outcome != "partial" || sum.Sessions[1].Batches != 7 || sum.Sessions[1].RowsCompleted != 200 ||
		sum.Requests["POST /v3/task/batch 200"] != 7 || sum.Sessions[2].RowsCompleted != 0 {
		t.Fatalf("after an old summary.json: %+v, requests %v", sum.Sessions, sum.Requests)
	}
}

package job

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/batcher"
	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/records"
	"github.com/decodo-batch/decodo-batch/poller"
)

const testToken = "dGVzdDp0ZXN0"

// fastSandbox is a sandbox with short delays and a short batch interval,
// so a test of thousands of rows takes a second or two.
func fastSandbox(t *testing.T, cfg sandbox.Config) (*sandbox.Server, *decodo.Client) {
	t.Helper()
	cfg.Tokens = []string{testToken}
	if cfg.BatchInterval == 0 {
		// A little under the client's 20ms: the race detector's jitter
		// must not turn into 429s; pacing itself is checked on arrival times.
		cfg.BatchInterval = 10 * time.Millisecond
	}
	if cfg.Delay == (sandbox.Delay{}) {
		cfg.Delay = sandbox.Delay{Kind: sandbox.Uniform, Min: 5 * time.Millisecond, Max: 150 * time.Millisecond}
	}
	sb := sandbox.New(cfg)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	t.Cleanup(sb.Close)
	c, err := decodo.New(srv.URL, testToken, decodo.Config{Conns: 16})
	if err != nil {
		t.Fatal(err)
	}
	return sb, c
}

func testConfig(t *testing.T, api API, input string) Config {
	t.Helper()
	return Config{
		Input: input, Out: filepath.Join(t.TempDir(), "out"),
		Records: records.Options{Format: "", DefaultTarget: ""},
		Batch: batcher.Config{Interval: 20 * time.Millisecond, MaxAge: 200 * time.Millisecond,
			Backoff: decodo.Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond}},
		Poll:    poller.Config{Workers: 8, MaxGap: 100 * time.Millisecond, StatusAfter: 300 * time.Millisecond, Backoff: decodo.Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond}},
		Retries: 3,
		API:     api,
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// readLines reads a JSONL output file into objects.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: bad line %q: %v", path, sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// outcomes maps each row to the file it ended in, failing on a row in two
// places or twice in one.
func outcomes(t *testing.T, out string) map[int64]string {
	t.Helper()
	seen := map[int64]string{}
	for _, name := range []string{"results.jsonl", "failed.jsonl", "rejects.jsonl"} {
		for _, m := range readLines(t, filepath.Join(out, name)) {
			row := int64(m["row"].(float64))
			if prev, dup := seen[row]; dup {
				t.Fatalf("row %d is in %s and in %s", row, prev, name)
			}
			seen[row] = name
		}
	}
	return seen
}

// mixedCSV returns n rows of url and query rows over several targets and
// parameter sets, with a bad row every 400 rows; it returns the CSV and
// the rows (1-based) that are bad.
func mixedCSV(n int) (string, map[int64]string) {
	var b strings.Builder
	b.WriteString("id,url,query,target,geo\n")
	bad := map[int64]string{}
	for i := 1; i <= n; i++ {
		switch {
		case i%400 == 0:
			b.WriteString(fmt.Sprintf("bad-%d,ftp://example.com/%d,,,\n", i, i))
			bad[int64(i)] = "url"
		case i%400 == 200:
			b.WriteString(fmt.Sprintf("bad-%d,https://example.com/%d,coffee %d,,\n", i, i, i))
			bad[int64(i)] = "both"
		case i%3 == 0:
			b.WriteString(fmt.Sprintf("q-%d,,coffee %d,google_search,\n", i, i))
		case i%3 == 1:
			b.WriteString(fmt.Sprintf("u-%d,https://example.com/p/%d,,,United States\n", i, i))
		default:
			b.WriteString(fmt.Sprintf("u-%d,https://example.org/p/%d,,universal,\n", i, i))
		}
	}
	return b.String(), bad
}

// TestRunWholePath proves the whole path on a mixed input: every good row
// has exactly one result with its own fields, every bad row one reject with
// its line and reason, batches are never closer than the interval, and the
// exit code is 3.
func TestRunWholePath(t *testing.T) {
	t.Parallel()
	sb, api := fastSandbox(t, sandbox.Config{})
	csv, bad := mixedCSV(3600)
	cfg := testConfig(t, api, writeFile(t, "in.csv", csv))
	sum, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrPartial) {
		t.Fatalf("err = %v, want ErrPartial (rows were rejected)", err)
	}
	if sum.Outcome != "partial" || sum.Rejected != int64(len(bad)) || sum.Results != 3600-int64(len(bad)) {
		t.Fatalf("summary: outcome %q, %d results, %d rejected; want partial, %d, %d", sum.Outcome, sum.Results, sum.Rejected, 3600-len(bad), len(bad))
	}
	seen := outcomes(t, cfg.Out)
	if len(seen) != 3600 {
		t.Fatalf("%d rows in the outputs, want 3600", len(seen))
	}
	for _, m := range readLines(t, filepath.Join(cfg.Out, "results.jsonl")) {
		row := int64(m["row"].(float64))
		if _, isBad := bad[row]; isBad {
			t.Fatalf("bad row %d has a result", row)
		}
		if line := int64(m["line"].(float64)); line != row+1 {
			t.Errorf("row %d: line %d, want %d", row, line, row+1)
		}
		id, _ := m["id"].(string)
		if !strings.HasSuffix(id, fmt.Sprintf("-%d", row)) {
			t.Errorf("row %d: id %q", row, id)
		}
		item, _ := m["url"].(string)
		if row%3 == 0 {
			item, _ = m["query"].(string)
			if m["target"] != "google_search" || item != fmt.Sprintf("coffee %d", row) {
				t.Errorf("row %d: target %v query %q", row, m["target"], item)
			}
		} else if m["target"] != "universal" || !strings.HasSuffix(item, fmt.Sprintf("/p/%d", row)) {
			t.Errorf("row %d: target %v url %q", row, m["target"], item)
		}
		if c, _ := m["content"].(string); !strings.Contains(c, item) {
			t.Errorf("row %d: content does not hold its own item %q", row, item)
		}
		if tid, _ := m["task_id"].(string); len(tid) != 19 {
			t.Errorf("row %d: task_id %q", row, tid)
		}
		if m["status_code"] == nil || m["attempts"].(float64) != 1 {
			t.Errorf("row %d: status_code %v attempts %v", row, m["status_code"], m["attempts"])
		}
	}
	for _, m := range readLines(t, filepath.Join(cfg.Out, "rejects.jsonl")) {
		row := int64(m["row"].(float64))
		kind, ok := bad[row]
		if !ok {
			t.Fatalf("good row %d rejected: %v", row, m["error"])
		}
		reason, _ := m["error"].(string)
		if int64(m["line"].(float64)) != row+1 || reason == "" || m["input"] == "" {
			t.Errorf("reject of row %d: %v", row, m)
		}
		if kind == "both" && !strings.Contains(reason, "both") {
			t.Errorf("row %d: reason %q does not say both url and query", row, reason)
		}
	}
	// Paced sends arrive at least 20ms apart; the sandbox refuses closer
	// than 10ms. A gap under 10ms takes a scheduling stall of over 10ms
	// (seen under -race on 2 busy cores); without pacing nearly every gap
	// would be.
	st := sb.Stats()
	short := 0
	for i := 1; i < len(st.BatchTimes); i++ {
		if st.BatchTimes[i].Sub(st.BatchTimes[i-1]) < 10*time.Millisecond {
			short++
		}
	}
	if short*4 > len(st.BatchTimes) {
		t.Errorf("%d of %d batch arrivals closer than 10ms", short, len(st.BatchTimes))
	}
	if sum.RateLimited*4 > sum.Batches {
		t.Errorf("%d 429s for %d batches with pacing on", sum.RateLimited, sum.Batches)
	}
	var s Summary
	data, err := os.ReadFile(filepath.Join(cfg.Out, "summary.json"))
	if err != nil || json.Unmarshal(data, &s) != nil || s.Results != sum.Results {
		t.Errorf("summary.json does not hold the summary: %v", err)
	}
}

// TestRunFaults proves that with faults everywhere (faulted tasks, 5xx,
// dropped connections, 429 on GETs) every row still ends in exactly one
// output, and faulted tasks are rescued by resubmission.
func TestRunFaults(t *testing.T) {
	t.Parallel()
	_, api := fastSandbox(t, sandbox.Config{FaultRate: 0.1, ErrorRate: 0.05, DropRate: 0.03, GetLimitRate: 0.002, Seed: 7})
	var b strings.Builder
	for i := 1; i <= 1000; i++ {
		fmt.Fprintf(&b, "https://example.com/f/%d\n", i)
	}
	cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
	cfg.Batch.Size = 250
	sum, err := Run(context.Background(), cfg)
	if err != nil && !errors.Is(err, ErrPartial) {
		t.Fatal(err)
	}
	seen := outcomes(t, cfg.Out)
	if len(seen) != 1000 {
		t.Fatalf("%d rows in the outputs, want 1000", len(seen))
	}
	if sum.Resubmitted == 0 {
		t.Error("no task was resubmitted with a 10% fault rate")
	}
	// With 3 retries a row fails as faulted only if 4 tasks in a row
	// fault (1e-4). A batch POST hit by an injected 500 or a dropped
	// connection fails its rows as unknown instead (never sent again, which
	// could pay twice): those are not counted here.
	classes := map[string]int{}
	for _, m := range readLines(t, filepath.Join(cfg.Out, "failed.jsonl")) {
		classes[m["error_class"].(string)]++
	}
	if other := int(sum.Failed) - classes["unknown"]; other > 10 {
		t.Errorf("%d rows failed other than as unknown (%v), of %d results", other, classes, sum.Results)
	}
	rescued := 0
	for _, m := range readLines(t, filepath.Join(cfg.Out, "results.jsonl")) {
		if m["attempts"].(float64) > 1 {
			rescued++
		}
	}
	if rescued == 0 {
		t.Error("no result came from a resubmitted task")
	}
}

// TestRunBisection proves that one item the API refuses inside a full
// 3000-item batch is isolated and rejected with the API's message while
// the other 2999 go through.
func TestRunBisection(t *testing.T) {
	t.Parallel()
	_, api := fastSandbox(t, sandbox.Config{})
	var b strings.Builder
	for i := 1; i <= 3000; i++ {
		if i == 1234 {
			fmt.Fprintf(&b, "https://example.com/sandbox-invalid/%d\n", i)
			continue
		}
		fmt.Fprintf(&b, "https://example.com/b/%d\n", i)
	}
	cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
	sum, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrPartial) {
		t.Fatalf("err = %v, want ErrPartial (one row refused)", err)
	}
	if sum.Results != 2999 || sum.Rejected != 1 {
		t.Fatalf("%d results, %d rejected; want 2999, 1", sum.Results, sum.Rejected)
	}
	// The sandbox names the refused item, so it is taken out without a split.
	if sum.Splits != 0 {
		t.Errorf("%d batches split, though the API named the refused item", sum.Splits)
	}
	rej := readLines(t, filepath.Join(cfg.Out, "rejects.jsonl"))
	if rej[0]["row"].(float64) != 1234 || !strings.Contains(rej[0]["error"].(string), "refused by the API") {
		t.Fatalf("reject: %v", rej[0])
	}
}

// TestRunAuth proves a refused token ends the run at once with ErrAuth.
func TestRunAuth(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Config{Tokens: []string{testToken}})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	api, _ := decodo.New(srv.URL, "d3Jvbmc6dG9rZW4=", decodo.Config{})
	cfg := testConfig(t, api, writeFile(t, "in.txt", "https://example.com/\n"))
	start := time.Now()
	sum, err := Run(context.Background(), cfg)
	if !errors.Is(err, decodo.ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if sum.Outcome != "error" {
		t.Errorf("outcome %q, want error", sum.Outcome)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("auth failure took %v to end the run", d)
	}
}

// TestRunResume proves an interrupted run, run again, finishes the job
// with every row exactly once and no task paid twice.
func TestRunResume(t *testing.T) {
	t.Parallel()
	sb, api := fastSandbox(t, sandbox.Config{Delay: sandbox.Delay{Kind: sandbox.Uniform, Min: 50 * time.Millisecond, Max: 400 * time.Millisecond}})
	var b strings.Builder
	for i := 1; i <= 3000; i++ {
		fmt.Fprintf(&b, "https://example.com/r/%d\n", i)
	}
	cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
	cfg.Batch.Size = 100
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	sum, err := Run(ctx, cfg)
	if !errors.Is(err, ErrStopped) || sum.Outcome != "stopped" {
		t.Fatalf("first run: err %v outcome %q, want ErrStopped", err, sum.Outcome)
	}
	first := sum.Results
	sum, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Resumed || sum.Skipped != first {
		t.Errorf("second run: resumed %v skipped %d, want true %d", sum.Resumed, sum.Skipped, first)
	}
	seen := outcomes(t, cfg.Out)
	if len(seen) != 3000 {
		t.Fatalf("%d rows in the outputs, want 3000", len(seen))
	}
	if st := sb.Stats(); st.TasksCreated != 3000 {
		t.Errorf("the API created %d tasks for 3000 rows: paid twice", st.TasksCreated)
	}
}

// TestRunRefusesChangedInput proves a resume with a changed input is
// refused with a MismatchError, and a restart then runs the new input.
func TestRunRefusesChangedInput(t *testing.T) {
	t.Parallel()
	_, api := fastSandbox(t, sandbox.Config{})
	in := writeFile(t, "in.txt", "https://example.com/a\n")
	cfg := testConfig(t, api, in)
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	// Not only grown at its end (which resumes): its first row changed.
	os.WriteFile(in, []byte("https://example.com/c\nhttps://example.com/b\n"), 0o644)
	_, err := Run(context.Background(), cfg)
	var mm *checkpoint.MismatchError
	if !errors.As(err, &mm) || mm.Field != "input size" {
		t.Fatalf("err = %v, want a MismatchError on the input size", err)
	}
	cfg.Restart = true
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Results != 2 {
		t.Fatalf("--restart: err %v, %d results", err, sum.Results)
	}
	if n := len(readLines(t, filepath.Join(cfg.Out, "results.jsonl"))); n != 2 {
		t.Fatalf("--restart left %d result lines, want 2", n)
	}
}

// TestRunNoWaitThenCollect proves --no-wait submits every row and stops
// with exit 75, and a later run collects the results without submitting
// anything again.
func TestRunNoWaitThenCollect(t *testing.T) {
	t.Parallel()
	sb, api := fastSandbox(t, sandbox.Config{Delay: sandbox.Delay{Kind: sandbox.Fixed, Fixed: 300 * time.Millisecond}})
	var b strings.Builder
	for i := 1; i <= 500; i++ {
		fmt.Fprintf(&b, "https://example.com/n/%d\n", i)
	}
	cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
	cfg.Batch.Size = 100
	cfg.NoWait = true
	sum, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrStopped) || sum.Outcome != "stopped" {
		t.Fatalf("--no-wait: err %v outcome %q", err, sum.Outcome)
	}
	if sum.Pending+sum.Results != 500 || sb.Stats().TasksCreated != 500 {
		t.Fatalf("--no-wait left %d pending + %d results, API has %d tasks; want 500", sum.Pending, sum.Results, sb.Stats().TasksCreated)
	}
	cfg.NoWait = false
	sum, err = Run(context.Background(), cfg)
	if err != nil || sum.Results != 500 {
		t.Fatalf("collect: err %v, %d results", err, sum.Results)
	}
	if n := sb.Stats().TasksCreated; n != 500 {
		t.Errorf("the collecting run submitted again: %d tasks", n)
	}
	if len(outcomes(t, cfg.Out)) != 500 {
		t.Error("rows missing")
	}
}

// TestRunMaxRuntime proves --max-runtime stops the run in time with exit
// 75, and the next run finishes the job.
func TestRunMaxRuntime(t *testing.T) {
	t.Parallel()
	_, api := fastSandbox(t, sandbox.Config{})
	var b strings.Builder
	for i := 1; i <= 3000; i++ {
		fmt.Fprintf(&b, "https://example.com/m/%d\n", i)
	}
	cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
	cfg.Batch.Size = 10
	cfg.Batch.Interval = 50 * time.Millisecond // 300 batches: 15s at least
	cfg.MaxRuntime = time.Second
	start := time.Now()
	sum, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrStopped) || sum.Stopped != "runtime limit reached" {
		t.Fatalf("err %v, stopped %q", err, sum.Stopped)
	}
	// The deadline is the feature: a run that ignored it would take 15s.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("--max-runtime 1s took %v to stop", d)
	}
	cfg.MaxRuntime = 0
	cfg.Batch.Size = 1000
	sum, err = Run(context.Background(), cfg)
	if err != nil || len(outcomes(t, cfg.Out)) != 3000 {
		t.Fatalf("second run: %v", err)
	}
}

// TestRunOutageLeavesRowsUnsubmitted proves an API that cannot be reached
// ends the run with ErrUnavailable and no failed row, and the same job
// against a live API then finishes every row exactly once.
func TestRunOutageLeavesRowsUnsubmitted(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	api, err := decodo.New(down, testToken, decodo.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := 1; i <= 300; i++ {
		fmt.Fprintf(&b, "https://example.com/o/%d\n", i)
	}
	cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
	cfg.Batch.Size = 100
	cfg.OutageBudget = 300 * time.Millisecond
	sum, err := Run(context.Background(), cfg)
	if !errors.Is(err, batcher.ErrUnavailable) || sum.Outcome != "unavailable" {
		t.Fatalf("run against a closed port: err %v, outcome %q; want ErrUnavailable", err, sum.Outcome)
	}
	if sum.Failed != 0 || sum.Results != 0 {
		t.Fatalf("%d failed, %d results during the outage; want none", sum.Failed, sum.Results)
	}
	sb, live := fastSandbox(t, sandbox.Config{})
	cfg.API = live
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("the same job against a live API: %v", err)
	}
	if seen := outcomes(t, cfg.Out); len(seen) != 300 {
		t.Fatalf("%d rows in the outputs, want 300", len(seen))
	}
	if n := sb.Stats().TasksCreated; n != 300 {
		t.Errorf("the API created %d tasks for 300 rows", n)
	}
}

// TestRunRefusesForeignCheckpoint proves a resume against an API that knows
// none of the checkpoint's tasks (another account or endpoint) stops with
// ErrForeignCheckpoint before paying for any of them again.
func TestRunRefusesForeignCheckpoint(t *testing.T) {
	t.Parallel()
	_, api := fastSandbox(t, sandbox.Config{Delay: sandbox.Delay{Kind: sandbox.Fixed, Fixed: time.Hour}})
	var b strings.Builder
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&b, "https://example.com/f/%d\n", i)
	}
	cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
	cfg.Batch.Size = 50
	cfg.NoWait = true
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrStopped) {
		t.Fatalf("--no-wait run: %v", err)
	}
	other, api2 := fastSandbox(t, sandbox.Config{})
	cfg.API, cfg.NoWait = api2, false
	_, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrForeignCheckpoint) {
		t.Fatalf("resume against another API: err = %v, want ErrForeignCheckpoint", err)
	}
	if n := other.Stats().TasksCreated; n != 0 {
		t.Errorf("the other API was made to create %d tasks", n)
	}
}

// forgetful is an API that has lost some tasks: it answers 404 for them.
type forgetful struct {
	API
	lost map[string]bool
}

func (f *forgetful) Results(ctx context.Context, id string) ([]decodo.Result, bool, error) {
	if f.lost[id] {
		return nil, false, &decodo.Error{StatusCode: 404, Op: "GET /v3/task/{id}/results"}
	}
	return f.API.Results(ctx, id)
}

func (f *forgetful) Task(ctx context.Context, id string) (*decodo.Task, error) {
	if f.lost[id] {
		return nil, &decodo.Error{StatusCode: 404, Op: "GET /v3/task/{id}"}
	}
	return f.API.Task(ctx, id)
}

// TestRunResubmitsLostTasks proves a resume where the API has lost a few of
// the checkpoint's tasks (404) among many it knows submits those rows again
// and finishes, rather than taking the checkpoint for another account's.
func TestRunResubmitsLostTasks(t *testing.T) {
	t.Parallel()
	sb, api := fastSandbox(t, sandbox.Config{Delay: sandbox.Delay{Kind: sandbox.Fixed, Fixed: 300 * time.Millisecond}})
	var b strings.Builder
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&b, "https://example.com/l/%d\n", i)
	}
	cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
	cfg.Batch.Size = 50
	cfg.NoWait = true
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrStopped) {
		t.Fatalf("--no-wait run: %v", err)
	}
	st, err := checkpoint.Read(filepath.Join(cfg.Out, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	lost := map[string]bool{}
	st.EachPending(func(row int64, p checkpoint.Pending) bool {
		if row%70 == 1 { // rows 1, 71, 141
			lost[strconv.FormatUint(p.TaskID, 10)] = true
		}
		return true
	})
	cfg.API, cfg.NoWait = &forgetful{API: api, lost: lost}, false
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("resume with %d lost tasks: %v", len(lost), err)
	}
	again := 0
	for _, m := range readLines(t, filepath.Join(cfg.Out, "results.jsonl")) {
		if m["attempts"].(float64) == 2 {
			again++
		}
	}
	if got := sb.Stats().TasksCreated; again != len(lost) || got != 200+len(lost) {
		t.Errorf("%d rows submitted again, %d tasks created; want the %d lost ones, %d", again, got, len(lost), 200+len(lost))
	}
}

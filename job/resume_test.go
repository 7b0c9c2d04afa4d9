package job

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
	"github.com/decodo-batch/decodo-batch/io/checkpoint"
)

// statusLog is an API that records when the status checks (GET
// /v3/task/{id}) answered faulted, so a test can tell in which part of a
// session a faulted task was found.
type statusLog struct {
	API
	mu      sync.Mutex
	start   time.Time       // of the session running
	faulted []time.Duration // since start, of each faulted answer
}

func (s *statusLog) Task(ctx context.Context, id string) (*decodo.Task, error) {
	task, err := s.API.Task(ctx, id)
	if err == nil && task.Status == decodo.StatusFaulted {
		s.mu.Lock()
		s.faulted = append(s.faulted, time.Since(s.start))
		s.mu.Unlock()
	}
	return task, err
}

func (s *statusLog) session() {
	s.mu.Lock()
	s.start = time.Now()
	s.mu.Unlock()
}

func (s *statusLog) found() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.faulted...)
}

// TestRecheckAcrossSessions proves a task found faulted after its
// session stopped submitting is checked again at the first look of the
// next session (the owner's recheck rows, journaled with 2 looks), so a
// chain of short sessions gets the row done. Each session here looks at
// the resumed task at about 0, 245 and 490ms, and only the third look
// checks the status: 490ms is past the end of submissions (480ms of
// 600ms) and before the deadline (570ms). Without the recheck every
// session started again from no looks, found the fault at its third look,
// too late to submit again, and the chain never ended.
func TestRecheckAcrossSessions(t *testing.T) {
	t.Parallel()
	const gap = 245 * time.Millisecond
	// Seed 2: the first task faults, the second (its resubmission) not.
	sb, client := fastSandbox(t, sandbox.Config{FaultRate: 0.5, Seed: 2})
	api := &statusLog{API: client}
	cfg := testConfig(t, api, writeFile(t, "in.txt", "https://example.com/recheck/1\n"))
	cfg.Poll.MaxGap = gap
	cfg.Poll.StatusAfter = 100 * time.Millisecond
	// Session 1 only submits: the task is faulted by the time it is looked at.
	cfg.NoWait = true
	api.session()
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrStopped) {
		t.Fatalf("--no-wait session: %v", err)
	}
	// Past its first look's due time: the next session looks at once.
	time.Sleep(gap)
	if st := sb.Stats(); st.TasksCreated != 1 || st.TasksFaulted != 1 {
		t.Fatalf("the sandbox created %d tasks, %d faulted; want 1 faulted (the seed changed meaning?)", st.TasksCreated, st.TasksFaulted)
	}
	cfg.NoWait = false
	cfg.MaxRuntime = 600 * time.Millisecond
	const most = 4 // one finds the fault late, one resubmits, two to spare
	var err error
	sessions := 0
	for sessions = 1; sessions <= most; sessions++ {
		api.session()
		if _, err = Run(context.Background(), cfg); !errors.Is(err, ErrStopped) {
			break
		}
	}
	found := api.found()
	if err != nil {
		t.Fatalf("row not done after %d short sessions (%v); the fault was found at %v into each", most, err, found)
	}
	if len(found) == 0 || found[0] < cfg.MaxRuntime*4/5 {
		// The first session's third look missed the window (a stall
		// pushed it past the deadline): the looks journaled by that
		// session, not the recheck, got the row done.
		t.Logf("inconclusive: the fault was first found at %v, outside the window between the end of submissions and the deadline", found)
	}
	lines := readLines(t, filepath.Join(cfg.Out, "results.jsonl"))
	if len(lines) != 1 || lines[0]["attempts"].(float64) != 2 {
		t.Fatalf("results: %v; want row 1 with attempts 2", lines)
	}
	if st := sb.Stats(); st.TasksCreated != 2 {
		t.Errorf("the sandbox created %d tasks, want 2", st.TasksCreated)
	}
	t.Logf("done in %d sessions after the first; faults found at %v", sessions, found)
}

// TestDedupePrefersServedLeader proves that under --dedupe a row
// done with a result whose task the journal kept leads its request, so
// that a later duplicate reads that task for free. Here the first row of
// the request was done in a run without --dedupe (no task kept), its
// duplicate appended later got its own task, and a third copy appended
// after that must follow the second row, not be paid for again.
func TestDedupePrefersServedLeader(t *testing.T) {
	t.Parallel()
	const line = "https://example.com/lead/1\n"
	sb, api := fastSandbox(t, sandbox.Config{})
	input := writeFile(t, "in.txt", line)
	cfg := testConfig(t, api, input)
	if _, err := Run(context.Background(), cfg); err != nil { // without --dedupe
		t.Fatalf("first run: %v", err)
	}
	cfg.Dedupe = true
	appendFile(t, input, []byte(line))
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if n := sb.Stats().TasksCreated; n != 2 {
		t.Fatalf("%d tasks after the second run, want 2 (row 1's task was not kept)", n)
	}
	appendFile(t, input, []byte(line))
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("third run: %v", err)
	}
	if n := sb.Stats().TasksCreated; n != 2 {
		t.Errorf("the API created %d tasks; want 2: row 3 could read row 2's task", n)
	}
	if n := len(sum.Sessions); n != 3 || sum.Sessions[2].TasksPaid != 0 {
		t.Errorf("%d sessions in the summary; want 3, the last paying for no task", n)
		for i, s := range sum.Sessions {
			t.Logf("session %d: %d tasks paid", i+1, s.TasksPaid)
		}
	}
	byRow := map[float64]map[string]any{}
	for _, m := range readLines(t, filepath.Join(cfg.Out, "results.jsonl")) {
		byRow[m["row"].(float64)] = m
	}
	r2, r3 := byRow[2], byRow[3]
	if r2 == nil || r3 == nil {
		t.Fatalf("results of rows 2 and 3 missing: %v", byRow)
	}
	if r3["duplicate_of"] != 2.0 || r3["task_id"] != r2["task_id"] {
		t.Errorf("row 3: duplicate_of %v, task %v; want 2, row 2's task %v", r3["duplicate_of"], r3["task_id"], r2["task_id"])
	}
}

// TestDedupePrefersServedOverPending proves the other half of
// preferLeader: a row done with a kept task replaces, as the leader of its
// request, an earlier row whose own task is still pending, so a duplicate
// appended later is served at once from the done row's task instead of
// waiting on a task that may never complete. Rows 1 and 2 ask the same
// and got a task each in a run without --dedupe; row 1's stays pending.
func TestDedupePrefersServedOverPending(t *testing.T) {
	t.Parallel()
	const line = "https://example.com/slow/1\n"
	sb, client := fastSandbox(t, sandbox.Config{})
	input := writeFile(t, "in.txt", line+line)
	cfg := testConfig(t, client, input)
	cfg.NoWait = true // without --dedupe: a task for each row
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrStopped) {
		t.Fatalf("--no-wait run: %v", err)
	}
	st, err := checkpoint.Read(filepath.Join(cfg.Out, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	p1, ok := st.Pending(1)
	if !ok {
		t.Fatal("row 1 not pending after the --no-wait run")
	}
	slow := strconv.FormatUint(p1.TaskID, 10)
	cfg.API = &lagging{API: client, lag: map[string]int{slow: 1 << 30}} // row 1's task never completes
	cfg.NoWait, cfg.Dedupe = false, true
	cfg.MaxRuntime = 300 * time.Millisecond
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrStopped) {
		t.Fatalf("second run: %v, want stopped with row 1 pending", err)
	}
	appendFile(t, input, []byte(line))
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrStopped) {
		t.Fatalf("third run: %v, want stopped with row 1 pending", err)
	}
	byRow := map[float64]map[string]any{}
	for _, m := range readLines(t, filepath.Join(cfg.Out, "results.jsonl")) {
		byRow[m["row"].(float64)] = m
	}
	r2, r3 := byRow[2], byRow[3]
	switch {
	case byRow[1] != nil:
		t.Fatalf("row 1 has a result, its task never completes: %v", byRow[1])
	case r2 == nil:
		t.Fatal("row 2 has no result")
	case r3 == nil:
		t.Fatal("row 3 has no result: it waits on row 1's pending task, not row 2's done one")
	case r3["duplicate_of"] != 2.0 || r3["task_id"] != r2["task_id"]:
		t.Errorf("row 3: duplicate_of %v, task %v; want 2, row 2's task %v", r3["duplicate_of"], r3["task_id"], r2["task_id"])
	}
	if n := sb.Stats().TasksCreated; n != 2 {
		t.Errorf("the API created %d tasks, want 2", n)
	}
}

// lagging is an API whose results of the chosen tasks first answer 204,
// as if pending (a read replica behind), then the results.
type lagging struct {
	API
	mu     sync.Mutex
	lag    map[string]int // task -> 204s still to answer
	lagged int            // 204s answered
}

func (l *lagging) Results(ctx context.Context, id string) ([]decodo.Result, bool, error) {
	l.mu.Lock()
	if l.lag[id] > 0 {
		l.lag[id]--
		l.lagged++
		l.mu.Unlock()
		return nil, false, nil
	}
	l.mu.Unlock()
	return l.API.Results(ctx, id)
}

// TestFollowerWaitsWhenKnown proves a duplicate row reading an
// earlier row's task (--dedupe, a later session) that the API first
// answers as pending keeps waiting for its results: the Known event the
// poller sends for it is not its outcome.
func TestFollowerWaitsWhenKnown(t *testing.T) {
	t.Parallel()
	const line = "https://example.com/known/1\n"
	sb, client, cfg, input, task := doneWithDedupe(t, line)
	appendFile(t, input, []byte(line))
	api := &lagging{API: client, lag: map[string]int{task: 1}}
	cfg.API = api
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("second run: %v", err)
	}
	api.mu.Lock()
	lagged := api.lagged
	api.mu.Unlock()
	if lagged != 1 {
		t.Fatalf("the API answered %d 204s for row 1's task, want 1: the test proves nothing", lagged)
	}
	lines := readLines(t, filepath.Join(cfg.Out, "results.jsonl"))
	if len(lines) != 2 {
		t.Fatalf("%d result lines, want 2", len(lines))
	}
	r := lines[1]
	c, _ := r["content"].(string)
	if r["row"] != 2.0 || r["duplicate_of"] != 1.0 || r["task_id"] != task || r["status_code"] == 0.0 || !strings.Contains(c, "/known/1") {
		t.Errorf("row 2's result: row %v duplicate_of %v task %v status %v content %.60q; want row 2 with row 1's task %s and its content",
			r["row"], r["duplicate_of"], r["task_id"], r["status_code"], c, task)
	}
	if n := sb.Stats().TasksCreated; n != 1 {
		t.Errorf("the API created %d tasks, want 1", n)
	}
}

// TestFollowersOfAGoneTaskPayOnce proves that when the kept task of a done
// row is gone (404) and several later duplicates were reading it, the first
// to find out gets a task of its own and the others follow it: one task
// paid, not one per duplicate.
func TestFollowersOfAGoneTaskPayOnce(t *testing.T) {
	t.Parallel()
	const line = "https://example.com/gone/1\n"
	sb, client, cfg, input, task := doneWithDedupe(t, line)
	appendFile(t, input, []byte(line+line+line))
	cfg.API = &forgetful{API: client, lost: map[string]bool{task: true}}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if n := sb.Stats().TasksCreated; n != 2 {
		t.Errorf("the API created %d tasks, want 2: one for row 1, one for its three duplicates once row 1's task was gone", n)
	}
	lines := readLines(t, filepath.Join(cfg.Out, "results.jsonl"))
	if len(lines) != 4 {
		t.Fatalf("%d result lines, want 4", len(lines))
	}
	leads := 0
	var got []string
	for _, r := range lines[1:] {
		got = append(got, fmt.Sprintf("row %v duplicate_of %v task %v", r["row"], r["duplicate_of"], r["task_id"]))
		if r["duplicate_of"] == nil {
			leads++
		} else if r["duplicate_of"] == 1.0 {
			t.Errorf("row %v follows row 1, whose task is gone", r["row"])
		}
	}
	if leads != 1 {
		t.Errorf("%d of rows 2-4 got their own task, want 1: %s", leads, strings.Join(got, "; "))
	}
}

// pendingBut is an API whose results of every task but those in ok answer
// 204, as if still pending.
type pendingBut struct {
	API
	ok map[string]bool
}

func (p *pendingBut) Results(ctx context.Context, id string) ([]decodo.Result, bool, error) {
	if !p.ok[id] {
		return nil, false, nil
	}
	return p.API.Results(ctx, id)
}

// TestGoneTaskFollowersFindPendingLeader proves that a duplicate finding
// its leader's kept task gone follows a row of the same request whose own
// task is pending from an earlier session, instead of paying again. Row 1
// is done and its task kept; rows 2 and 3 come later, when that task is
// gone: the first of them to find out gets a task, the other follows it,
// and the session stops with that task pending. The next session reads
// the follower again, finds row 1's task gone, and must follow the row
// with the pending task.
func TestGoneTaskFollowersFindPendingLeader(t *testing.T) {
	t.Parallel()
	const line = "https://example.com/gone/2\n"
	sb, client, cfg, input, t1 := doneWithDedupe(t, line)
	gone := &forgetful{API: client, lost: map[string]bool{t1: true}}
	appendFile(t, input, []byte(line+line))
	cfg.API = &pendingBut{API: gone, ok: map[string]bool{t1: true}} // row 2's task stays pending
	cfg.MaxRuntime = 600 * time.Millisecond
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrStopped) {
		t.Fatalf("second run: %v, want stopped with row 2's task pending", err)
	}
	if n := sb.Stats().TasksCreated; n != 2 {
		t.Fatalf("%d tasks after the second run, want 2 (row 1's, row 2's)", n)
	}
	cfg.API, cfg.MaxRuntime = gone, 0
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("third run: %v", err)
	}
	if n := sb.Stats().TasksCreated; n != 2 {
		t.Errorf("the API created %d tasks, want 2: the duplicate could follow the pending task", n)
	}
	byRow := map[float64]map[string]any{}
	for _, m := range readLines(t, filepath.Join(cfg.Out, "results.jsonl")) {
		byRow[m["row"].(float64)] = m
	}
	r2, r3 := byRow[2], byRow[3]
	if r2 == nil || r3 == nil || len(byRow) != 3 {
		t.Fatalf("results of rows %v, want 1, 2, 3", byRow)
	}
	lead, follower := 2.0, r3
	if r2["duplicate_of"] != nil {
		lead, follower = 3.0, r2
	}
	if follower["duplicate_of"] != lead || r2["task_id"] != r3["task_id"] {
		t.Errorf("rows 2 and 3: duplicate_of %v and %v, tasks %v and %v; want one to follow the other, with its task",
			r2["duplicate_of"], r3["duplicate_of"], r2["task_id"], r3["task_id"])
	}
}

// doneWithDedupe runs a --dedupe job of the one input line against a new
// sandbox, and returns the sandbox, its client, the config and input for
// the next runs, and the task of the row's result (kept by the journal).
func doneWithDedupe(t *testing.T, line string) (sb *sandbox.Server, client API, cfg Config, input, task string) {
	t.Helper()
	sb, client = fastSandbox(t, sandbox.Config{})
	input = writeFile(t, "in.txt", line)
	cfg = testConfig(t, client, input)
	cfg.Dedupe = true
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("first run: %v", err)
	}
	first := readLines(t, filepath.Join(cfg.Out, "results.jsonl"))
	if len(first) != 1 {
		t.Fatalf("%d results after the first run, want 1", len(first))
	}
	return sb, client, cfg, input, first[0]["task_id"].(string)
}

package poller

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo"
)

// TestEstimatorLearnsQuantiles proves the histogram's quantiles come
// close to those of the observed distribution.
func TestEstimatorLearnsQuantiles(t *testing.T) {
	t.Parallel()
	e := NewEstimator(3 * time.Second)
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		e.Watch()
		e.Observe(0, time.Duration(6*math.Exp(0.6*r.NormFloat64())*float64(time.Second)))
	}
	tests := []struct {
		q    float64
		want float64 // seconds: 6·exp(0.6·z_q)
	}{
		{0.5, 6},
		{0.25, 6 * math.Exp(0.6*-0.6745)},
		{0.95, 6 * math.Exp(0.6*1.645)},
	}
	for _, tt := range tests {
		got, ok := e.Quantile(tt.q)
		if !ok || math.Abs(got.Seconds()-tt.want)/tt.want > 0.05 {
			t.Errorf("quantile %.2f = %v, want %.2fs ±5%%", tt.q, got, tt.want)
		}
	}
}

// TestEstimatorNext proves the schedule: growing looks before anything is
// learned; then a first look at the 30th percentile, gaps never above
// MaxGap, and shorter gaps where completions are dense than in the tail.
func TestEstimatorNext(t *testing.T) {
	t.Parallel()
	e := NewEstimator(2500 * time.Millisecond)
	e.Lambda = 4 // weigh waiting enough that the hazard, not MaxGap, sets the gaps
	if got := e.Next(0); got != 2*time.Second {
		t.Errorf("first look before learning: %v, want 2s", got)
	}
	if got := e.Next(4 * time.Second); got != 6*time.Second {
		t.Errorf("next look before learning: %v, want 6s", got)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		e.Watch()
		e.Observe(0, time.Duration(6*math.Exp(0.6*r.NormFloat64())*float64(time.Second)))
	}
	first := e.Next(0)
	if want := 6 * math.Exp(0.6*-0.5244); math.Abs(first.Seconds()-want) > 0.3 {
		t.Errorf("first look at %v, want about %.1fs", first, want)
	}
	var gaps []time.Duration
	for a := first; a < 40*time.Second; {
		n := e.Next(a)
		if n-a > e.MaxGap || n-a < e.MinGap {
			t.Fatalf("gap %v after %v outside [%v, %v]", n-a, a, e.MinGap, e.MaxGap)
		}
		gaps = append(gaps, n-a)
		a = n
	}
	if gaps[1] >= gaps[len(gaps)-1] {
		t.Errorf("gap near the median %v not shorter than in the tail %v", gaps[1], gaps[len(gaps)-1])
	}
}

// TestEstimatorCensoring proves that tasks still pending keep the estimate
// honest: when only the fast tenth of tasks has completed, the median is
// not taken for the median of those fast ones.
func TestEstimatorCensoring(t *testing.T) {
	t.Parallel()
	e := NewEstimator(3 * time.Second)
	// 3000 tasks: 300 completed between 1s and 2s, 2700 seen pending at 2s.
	for i := range 3000 {
		e.Watch()
		if i < 300 {
			e.Observe(0, time.Second+time.Duration(i)*3*time.Millisecond)
		} else {
			e.Seen(0, 2*time.Second)
		}
	}
	if q, ok := e.Quantile(0.05); !ok || q < time.Second || q > 2*time.Second {
		t.Errorf("5th percentile %v (%v), want within the completions, 1s..2s", q, ok)
	}
	if _, ok := e.Quantile(0.5); ok {
		t.Error("a median was claimed while 90% of the tasks are still pending")
	}
}

// fakeGetter simulates tasks that complete at given times, some faulted,
// some unknown.
type fakeGetter struct {
	mu       sync.Mutex
	doneAt   map[string]time.Time
	faulted  map[string]bool
	gets     atomic.Int64
	status   atomic.Int64
	fail     func(id string) error // injected error for a request, or nil
	resultsN map[string]int
}

func (f *fakeGetter) Results(ctx context.Context, id string) ([]decodo.Result, bool, error) {
	f.gets.Add(1)
	if f.fail != nil {
		if err := f.fail(id); err != nil {
			return nil, false, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.doneAt[id]
	if !ok {
		return nil, false, &decodo.Error{StatusCode: 404}
	}
	if f.faulted[id] || time.Now().Before(at) {
		return nil, false, nil
	}
	f.resultsN[id]++
	return []decodo.Result{{Content: []byte(`"ok"`), StatusCode: 200, TaskID: id}}, true, nil
}

func (f *fakeGetter) Task(ctx context.Context, id string) (*decodo.Task, error) {
	f.status.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.doneAt[id]
	switch {
	case !ok:
		return nil, &decodo.Error{StatusCode: 404}
	case time.Now().Before(at):
		return &decodo.Task{ID: decodo.ID(id), Status: decodo.StatusPending}, nil
	case f.faulted[id]:
		return &decodo.Task{ID: decodo.ID(id), Status: decodo.StatusFaulted}, nil
	}
	return &decodo.Task{ID: decodo.ID(id), Status: decodo.StatusDone}, nil
}

type sinkRec struct {
	mu   sync.Mutex
	done map[string]int
	lost map[string]string
	n    int
	all  chan struct{}
	want int
}

func (s *sinkRec) tick() {
	s.n++
	if s.n == s.want {
		close(s.all)
	}
}

func (s *sinkRec) record(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Lost != "" {
		s.lost[e.Task.ID] = e.Lost
	} else {
		s.done[e.Task.ID]++
	}
	s.tick()
}

func runPoller(t *testing.T, g *fakeGetter, cfg Config, ids []string) *sinkRec {
	t.Helper()
	s := &sinkRec{done: map[string]int{}, lost: map[string]string{}, all: make(chan struct{}), want: len(ids)}
	p := New(g, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	events := make(chan Event)
	go func() { errc <- p.Run(ctx, events) }()
	go func() {
		for {
			select {
			case e := <-events:
				s.record(e)
			case <-ctx.Done():
				return
			}
		}
	}()
	now := time.Now()
	for i, id := range ids {
		p.Add(&Task{ID: id, Row: int64(i + 1), Attempt: 1, Submitted: now})
	}
	select {
	case <-s.all:
	case err := <-errc:
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("only %d of %d tasks reported", s.n, len(ids))
	}
	return s
}

func newFake() *fakeGetter {
	return &fakeGetter{doneAt: map[string]time.Time{}, faulted: map[string]bool{}, resultsN: map[string]int{}}
}

// TestPollerReportsEachOnce proves every task is reported exactly once:
// done ones with their results, faulted ones (whose /results stays 204)
// through the status endpoint, unknown ones as lost.
func TestPollerReportsEachOnce(t *testing.T) {
	t.Parallel()
	g := newFake()
	var ids []string
	now := time.Now()
	for i := range 300 {
		id := string(rune('a'+i%26)) + time.Duration(i).String()
		ids = append(ids, id)
		if i%50 == 7 {
			continue // unknown: 404
		}
		g.doneAt[id] = now.Add(time.Duration(i%40) * 5 * time.Millisecond)
		if i%30 == 3 {
			g.faulted[id] = true
		}
	}
	s := runPoller(t, g, Config{Workers: 8, MaxGap: 50 * time.Millisecond, StatusAfter: 300 * time.Millisecond}, ids)
	for _, id := range ids {
		_, known := g.doneAt[id]
		switch {
		case !known:
			if s.lost[id] == "" {
				t.Errorf("unknown task %s not lost", id)
			}
		case g.faulted[id]:
			if s.lost[id] != "task faulted" {
				t.Errorf("faulted task %s: lost %q", id, s.lost[id])
			}
		default:
			if s.done[id] != 1 || g.resultsN[id] != 1 {
				t.Errorf("task %s: done %d times, results served %d times", id, s.done[id], g.resultsN[id])
			}
		}
	}
	if st := g.status.Load(); st > 100 {
		t.Errorf("%d status requests for 300 tasks, 10 faulted: status must be for long-pending tasks only", st)
	}
}

// TestPollerRetriesErrors proves 5xx and transport errors are retried and
// the task still comes through; a task that always errors is never
// reported lost (submitting it again could pay twice): once the API has
// failed every request for the outage budget, Run ends with ErrUnavailable and the task stays pending for the next run.
func TestPollerRetriesErrors(t *testing.T) {
	t.Parallel()
	g := newFake()
	g.doneAt["ok"] = time.Now()
	g.doneAt["bad"] = time.Now()
	var n atomic.Int64
	g.fail = func(id string) error {
		if id == "bad" {
			return &decodo.Error{StatusCode: 503}
		}
		if n.Add(1) <= 2 {
			return &decodo.Error{StatusCode: 500}
		}
		return nil
	}
	p := New(g, Config{Workers: 2, Outage: &decodo.Outage{Budget: 50 * time.Millisecond}, Backoff: decodo.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}})
	now := time.Now()
	p.Add(&Task{ID: "ok", Row: 1, Attempt: 1, Submitted: now}, &Task{ID: "bad", Row: 2, Attempt: 1, Submitted: now})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events := make(chan Event, 4)
	err := p.Run(ctx, events)
	if !errors.Is(err, decodo.ErrUnavailable) || ctx.Err() != nil {
		t.Fatalf("Run = %v, want ErrUnavailable for the task that always errors", err)
	}
	close(events)
	done := false
	for e := range events {
		if e.Task.ID == "bad" {
			t.Errorf("the unreadable task was reported: %+v", e)
		}
		done = done || e.Task.ID == "ok" && e.Lost == "" && len(e.Results) > 0
	}
	if !done {
		t.Error("the task with 2 transient errors did not come through before the outage budget was spent")
	}
}

// TestPollerRateLimitPauses proves a 429 on a GET makes the workers wait
// for its Retry-After before their next request, and the task is not lost.
// The pauses go through an injected Sleep, so nothing depends on the clock.
func TestPollerRateLimitPauses(t *testing.T) {
	t.Parallel()
	g := newFake()
	var first atomic.Bool
	g.fail = func(id string) error {
		if first.CompareAndSwap(false, true) {
			return &decodo.Error{StatusCode: 429, RetryAfter: time.Hour}
		}
		return nil
	}
	var mu sync.Mutex
	var pauses []time.Duration
	sleep := func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		pauses = append(pauses, d)
		mu.Unlock()
		return ctx.Err() // the hour passes at once
	}
	var ids []string
	for _, id := range []string{"a", "b", "c", "d"} {
		g.doneAt[id] = time.Now()
		ids = append(ids, id)
	}
	s := runPoller(t, g, Config{Workers: 1, Sleep: sleep}, ids)
	if len(s.done) != 4 {
		t.Fatalf("%d done, want 4", len(s.done))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pauses) == 0 || pauses[0] < 59*time.Minute {
		t.Errorf("pauses %v: want the worker to wait out the 1h Retry-After before its next request", pauses)
	}
}

// TestPollerAuthEndsRun proves a 401 on a GET ends Run with ErrAuth.
func TestPollerAuthEndsRun(t *testing.T) {
	t.Parallel()
	g := newFake()
	g.doneAt["a"] = time.Now()
	g.fail = func(string) error { return &decodo.Error{StatusCode: 401} }
	p := New(g, Config{Workers: 1})
	p.Add(&Task{ID: "a", Submitted: time.Now().Add(-time.Hour)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Run(ctx, make(chan Event, 1)); !errors.Is(err, decodo.ErrAuth) || ctx.Err() != nil {
		t.Fatalf("Run = %v (ctx %v), want ErrAuth before the timeout", err, ctx.Err())
	}
}

// The schedule gives tasks back in the order they come due, however pushes
// and pops interleave.
func TestScheduleOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s schedule
	base := time.Now()
	var want []int64 // due times (ns from base) still in the schedule
	for step := range 20000 {
		if len(want) == 0 || rng.IntN(3) > 0 {
			at := rng.Int64N(int64(time.Hour)) - int64(time.Minute)
			s.push(&Task{ID: fmt.Sprint(at)}, base.Add(time.Duration(at)))
			want = append(want, at)
			continue
		}
		slices.Sort(want)
		got, _ := s.pop()
		if got.ID != fmt.Sprint(want[0]) {
			t.Fatalf("step %d: popped task due at %s, want %d", step, got.ID, want[0])
		}
		want = want[1:]
	}
	if len(s.e) != len(want) {
		t.Fatalf("%d left, want %d", len(s.e), len(want))
	}
}

// TestResumedTasksDoNotTeachTheEstimate proves tasks from an earlier
// session, however old, leave the learned completion times as they were:
// resumed again and again, they would otherwise teach the poller that
// tasks take as long as the tool was away.
func TestResumedTasksDoNotTeachTheEstimate(t *testing.T) {
	t.Parallel()
	g := newFake()
	p := New(g, Config{Workers: 8, MaxGap: 20 * time.Millisecond})
	p.Est.MinCount = 50
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan Event, 64)
	go p.Run(ctx, events)
	wait := func(n int) {
		t.Helper()
		for range n {
			select {
			case e := <-events:
				if e.Lost != "" {
					t.Fatalf("task %s lost: %s", e.Task.ID, e.Lost)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("tasks not reported")
			}
		}
	}
	now := time.Now()
	g.mu.Lock()
	for i := range 100 {
		g.doneAt[fmt.Sprint("fresh", i)] = now.Add(time.Duration(i%10) * 10 * time.Millisecond)
	}
	g.mu.Unlock()
	for i := range 100 {
		p.Add(&Task{ID: fmt.Sprint("fresh", i), Row: int64(i + 1), Attempt: 1, Submitted: now})
	}
	wait(100)
	q50, ok := p.Est.Quantile(0.5)
	learned := p.Est.total
	if !ok {
		t.Fatalf("nothing learned from 100 fresh tasks (%d completions)", p.Est.total)
	}
	for session := range 3 {
		// The same tasks resumed, submitted an hour ago, done now.
		long := time.Now().Add(-time.Hour)
		g.mu.Lock()
		for i := range 50 {
			g.doneAt[fmt.Sprint("old", session, i)] = long
		}
		g.mu.Unlock()
		for i := range 50 {
			p.Add(&Task{ID: fmt.Sprint("old", session, i), Row: int64(1000 + i), Attempt: 1, Submitted: long, Resumed: true})
		}
		wait(50)
		if got, _ := p.Est.Quantile(0.5); got != q50 || p.Est.total != learned {
			t.Fatalf("after resumed session %d the estimate has %d completions and a median of %v; it had %d and %v",
				session+1, p.Est.total, got, learned, q50)
		}
	}
}

// TestPollerLooksGoOn proves a resumed task goes on from the looks of
// earlier sessions: with two looks behind it, an old task's first look in
// this session is the third, a status check, which finds it faulted; with
// none behind it, the first look asks for results (204) and the task is
// not reported yet.
func TestPollerLooksGoOn(t *testing.T) {
	t.Parallel()
	for _, looks := range []int{0, 2} {
		g := newFake()
		g.doneAt["old"] = time.Now().Add(-time.Hour)
		g.faulted["old"] = true
		p := New(g, Config{Workers: 1, MaxGap: time.Hour, StatusAfter: time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		events := make(chan Event, 4)
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx, events) }()
		task := &Task{ID: "old", Row: 1, Attempt: 1, Submitted: time.Now().Add(-time.Hour), Resumed: true, Looks: looks}
		p.Add(task)
		var lost string
		if looks == 2 {
			select {
			case e := <-events:
				lost = e.Lost
				if e.Known { // the Known event of a resumed task comes first, if any
					lost = (<-events).Lost
				}
			case <-ctx.Done():
			}
		} else {
			for p.Stats.ResultGets.Load()+p.Stats.StatusGets.Load() == 0 && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
		}
		cancel()
		<-done
		status, results := p.Stats.StatusGets.Load(), p.Stats.ResultGets.Load()
		switch {
		case looks == 2 && (lost != "task faulted" || status != 1 || results != 0):
			t.Errorf("2 looks behind: lost %q after %d status and %d results GETs; want faulted after 1 status GET", lost, status, results)
		case looks == 0 && (status != 0 || results != 1):
			t.Errorf("no looks behind: %d status and %d results GETs; want 1 results GET", status, results)
		}
		if task.Looks != looks+1 {
			t.Errorf("%d looks behind: Looks = %d after one look", looks, task.Looks)
		}
	}
}

// TestPollerOneTaskUnreadable proves a task whose reads always fail ends
// the run once the outage budget has passed, though the API answers the
// other tasks all along (so the API as a whole is never out): it is not
// retried forever, and it is not reported lost.
func TestPollerOneTaskUnreadable(t *testing.T) {
	t.Parallel()
	g := newFake()
	g.doneAt["bad"] = time.Now()
	g.fail = func(id string) error {
		if id == "bad" {
			return &decodo.Error{StatusCode: 500}
		}
		return nil
	}
	var tasks []*Task
	for i := range 20 {
		id := fmt.Sprint("slow", i)
		g.doneAt[id] = time.Now().Add(time.Hour) // pending all along, read fine
		tasks = append(tasks, &Task{ID: id, Row: int64(i + 2), Attempt: 1, Submitted: time.Now()})
	}
	p := New(g, Config{Workers: 4, MaxGap: 5 * time.Millisecond, Outage: &decodo.Outage{Budget: 100 * time.Millisecond},
		Backoff: decodo.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}})
	p.Add(append(tasks, &Task{ID: "bad", Row: 1, Attempt: 1, Submitted: time.Now()})...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events := make(chan Event, 64)
	err := p.Run(ctx, events)
	if !errors.Is(err, decodo.ErrUnavailable) || ctx.Err() != nil {
		t.Fatalf("Run = %v, want ErrUnavailable for the task that cannot be read", err)
	}
	close(events)
	for e := range events {
		if e.Task.ID == "bad" {
			t.Errorf("the unreadable task was reported: %+v", e)
		}
	}
}

// TestPollerTaskRefused proves a task whose every read the API refuses
// with a 4xx (results and status alike) for the outage budget is reported
// unreadable, once, and the run goes on: the API answers, so it is no
// outage, and the task is not lost (its row is not submitted again).
func TestPollerTaskRefused(t *testing.T) {
	t.Parallel()
	g := newFake()
	g.doneAt["bad"] = time.Now()
	g.doneAt["ok"] = time.Now()
	g.fail = func(id string) error {
		if id == "bad" {
			return &decodo.Error{StatusCode: 400, Message: "no"}
		}
		return nil
	}
	p := New(g, Config{Workers: 2, MaxGap: 5 * time.Millisecond, Outage: &decodo.Outage{Budget: 100 * time.Millisecond},
		Backoff: decodo.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}})
	p.Add(&Task{ID: "bad", Row: 1, Attempt: 1, Submitted: time.Now()}, &Task{ID: "ok", Row: 2, Attempt: 1, Submitted: time.Now()})
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan Event, 4)
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx, events) }()
	got := map[string]Event{}
	timeout := time.After(20 * time.Second)
	for len(got) < 2 {
		select {
		case e := <-events:
			got[e.Task.ID] = e
		case err := <-errc:
			t.Fatalf("Run ended: %v", err)
		case <-timeout:
			t.Fatalf("events %v", got)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if e := got["bad"]; e.Class != ClassUnreadable || e.Lost == "" {
		t.Errorf("the refused task: %+v, want class %s", e, ClassUnreadable)
	}
	if e := got["ok"]; e.Lost != "" || len(e.Results) == 0 {
		t.Errorf("the good task: %+v", e)
	}
}

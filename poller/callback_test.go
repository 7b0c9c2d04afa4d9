package poller

import (
	"context"
	"testing"
	"time"
)

// startPoller starts p on its own goroutine; the returned function stops it.
func startPoller(t *testing.T, p *Poller) (<-chan Event, func()) {
	t.Helper()
	out := make(chan Event, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, out); close(done) }() //nolint:errcheck
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return out, stop
}

func nextEvent(t *testing.T, out <-chan Event) Event {
	t.Helper()
	select {
	case e := <-out:
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no event")
		return Event{}
	}
}

// TestNudgeLooksNow proves that a callback moves a task's look to now: a
// task whose schedule says "in an hour" is fetched once, right after its
// Nudge; a second Nudge, and a Nudge after it was reported, do nothing.
func TestNudgeLooksNow(t *testing.T) {
	t.Parallel()
	g := newFake()
	p := New(g, Config{Workers: 2, Callbacks: true})
	out, _ := startPoller(t, p)
	now := time.Now()
	// Submitted "in an hour": no look comes due while the test runs.
	task := &Task{ID: "1", Row: 1, Attempt: 1, Submitted: now.Add(time.Hour)}
	g.doneAt["1"] = now
	p.Add(task)
	if p.Nudge("404", false) {
		t.Errorf("Nudge of a task not watched reported true")
	}
	if !p.Nudge("1", false) {
		t.Fatalf("Nudge of a watched task reported false")
	}
	p.Nudge("1", false) // a duplicate callback
	e := nextEvent(t, out)
	if e.Task != task || e.Lost != "" || len(e.Results) == 0 {
		t.Fatalf("event %+v", e)
	}
	if p.Nudge("1", false) {
		t.Errorf("Nudge of a reported task reported true")
	}
	if n := g.gets.Load(); n != 1 {
		t.Errorf("%d GETs of /results, want 1", n)
	}
	select {
	case e := <-out:
		t.Errorf("second event %+v", e)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestNudgeStatusFirst proves a faulted callback is confirmed: its task's
// status is read before anything is reported; a task that is in fact
// pending goes on being watched, not reported lost, and one that faulted
// is reported faulted.
func TestNudgeStatusFirst(t *testing.T) {
	t.Parallel()
	g := newFake()
	p := New(g, Config{Workers: 2, Callbacks: true})
	out, _ := startPoller(t, p)
	now := time.Now()
	pending := &Task{ID: "p", Row: 1, Attempt: 1, Submitted: now.Add(time.Hour)}
	faulted := &Task{ID: "f", Row: 2, Attempt: 1, Submitted: now.Add(time.Hour)}
	g.doneAt["p"] = now.Add(24 * time.Hour)
	g.doneAt["f"], g.faulted["f"] = now, true
	p.Add(pending, faulted)
	p.Nudge("p", true) // a forged "faulted" for a pending task
	p.Nudge("f", true)
	e := nextEvent(t, out)
	if e.Task != faulted || e.Class != ClassFaulted {
		t.Fatalf("event %+v, want task f faulted", e)
	}
	select {
	case e := <-out:
		t.Fatalf("the pending task was reported: %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
	if s := g.status.Load(); s != 2 {
		t.Errorf("%d status GETs, want 2 (one per faulted callback)", s)
	}
}

// TestCallbackDeadline proves polling is the safety net: once callback
// delays were learned, a task whose callback never comes is looked at
// only past the deadline (one GET that finds it done), not on the normal
// schedule (a look every MaxGap from its first).
func TestCallbackDeadline(t *testing.T) {
	t.Parallel()
	g := newFake()
	p := New(g, Config{Workers: 2, Callbacks: true, MaxGap: 100 * time.Millisecond})
	if _, ok := p.callbackDeadline(); ok {
		t.Fatal("a deadline before any callback")
	}
	p.cbDelays[bucketOf(3*time.Second)] = 20
	p.cbCount = 20
	d, ok := p.callbackDeadline()
	if !ok || d < 5*time.Second || d > 7*time.Second {
		t.Fatalf("deadline %v %v, want 1.5×3s+1s", d, ok)
	}
	out, _ := startPoller(t, p)
	now := time.Now()
	// Aged 4s, done in 0.5s: the normal schedule would look now and
	// every 100ms; the deadline puts the first look at about 5.6s of age.
	task := &Task{ID: "lost", Row: 1, Attempt: 1, Submitted: now.Add(-4 * time.Second)}
	g.doneAt["lost"] = now.Add(500 * time.Millisecond)
	p.Add(task)
	e := nextEvent(t, out)
	if e.Task != task || len(e.Results) == 0 {
		t.Fatalf("event %+v", e)
	}
	if n := g.gets.Load(); n != 1 {
		t.Errorf("%d GETs for a task whose callback was lost, want 1 (past the deadline)", n)
	}
}

// TestNudgeDuringLook proves a callback that comes while a worker is
// looking at the task (and finds it pending) brings the next look to now.
func TestNudgeDuringLook(t *testing.T) {
	t.Parallel()
	g := newFake()
	p := New(g, Config{Workers: 1, Callbacks: true, MaxGap: time.Hour})
	task := &Task{ID: "x", Row: 1, Attempt: 1, Submitted: time.Now().Add(-time.Minute)}
	g.doneAt["x"] = time.Now().Add(time.Hour)
	entered := make(chan struct{})
	release := make(chan struct{})
	g.fail = func(id string) error {
		switch g.gets.Load() {
		case 1: // the first look, which will answer 204, is under way
			close(entered)
			<-release
		case 2: // the task completed meanwhile
			g.mu.Lock()
			g.doneAt["x"] = time.Now().Add(-time.Second)
			g.mu.Unlock()
		}
		return nil
	}
	out, _ := startPoller(t, p)
	p.Add(task)
	<-entered
	p.Nudge("x", false)
	close(release)
	e := nextEvent(t, out)
	if e.Task != task || len(e.Results) == 0 {
		t.Fatalf("event %+v", e)
	}
}

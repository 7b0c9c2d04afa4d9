// Package poller watches submitted tasks until their results are in. Each
// task is looked at when the [Estimator] says it is worth it: /results
// directly (204 means pending), and the task's status only for tasks that
// have been pending unusually long, to learn of faults.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/decodo-batch/decodo-batch/decodo"
)

// Getter reads tasks. [*decodo.Client] satisfies it.
type Getter interface {
	Results(ctx context.Context, id string) ([]decodo.Result, bool, error)
	Task(ctx context.Context, id string) (*decodo.Task, error)
}

// Event is what the poller tells its owner about a task, once: its results
// are in (Results, At), or it is lost (Lost says why: it faulted, expired,
// or could not be read; the owner decides whether to submit the row again).
type Event struct {
	Task    *Task
	Results []decodo.Result
	At      time.Time // when the results were fetched
	Lost    string
	Class   string // of a lost task: ClassFaulted or ClassLost
	// Known: a resumed task answered as pending: the API knows it. Sent
	// once per resumed task, before its last event; the task goes on.
	Known bool
}

// Error classes of lost tasks.
const (
	ClassFaulted = "faulted" // the API says the task faulted
	ClassLost    = "lost"    // the API no longer knows the task (404)
	// ClassUnreadable: the API refused to read the task (a 4xx) for the
	// outage budget; the row fails as "unknown", not submitted again.
	ClassUnreadable = "unreadable"
)

// Task is a submitted task being watched: the API's id, and the input row
// and attempt it was submitted for.
type Task struct {
	ID        string
	Row       int64
	Attempt   int
	Submitted time.Time
	// Resumed: submitted in an earlier session. Its age when it completes
	// says how long the tool was away, not how long tasks take, so the
	// estimate does not learn from it.
	Resumed bool
	// Looks counts the looks at the task, earlier sessions' included: a
	// task pending for long has its status checked on every third, so
	// short sessions add up to one long run. Read it after Run returned.
	Looks int
	known bool // a Known event was sent

	last     time.Duration // age at the last look, 0 before the first
	errs     int           // consecutive failed requests
	errSince time.Time     // the first of them
	waited   time.Duration
	status   bool

	// Under Poller.mu: the callback state (see [Poller.Nudge]).
	gen    uint32    // of the task's one live entry in the schedule
	queued bool      // in the schedule (else with a worker, or finished)
	ended  bool      // its last event was sent, or it was forgotten
	nudge  uint8     // a look is due now: nudgeResults or nudgeStatus
	called time.Time // when its callback came, zero before
}

// What a callback asks of the next look (Task.nudge).
const (
	nudgeResults = 1 + iota // its results
	nudgeStatus             // its status first (a faulted callback)
)

// Waited estimates how long the task's results waited between its
// completion and the look that found them (half the last gap between looks).
func (t *Task) Waited() time.Duration { return t.waited }

// Config tunes a [Poller]. Zero fields take the defaults in brackets.
type Config struct {
	Workers int           // concurrent requests [32]
	MaxGap  time.Duration // longest wait between two looks at a task [2.75s]
	// StatusAfter: until completions were seen, a task pending longer than
	// this has its status checked on every third look [20s]; then the bound
	// is 1.5× the 95th percentile of completion times (at least 1s).
	StatusAfter time.Duration
	// Outage is shared with the batcher: a failed read retries with
	// backoff until the API has failed every request for its budget; then
	// Run gives up with decodo.ErrUnavailable [a new decodo.Outage].
	Outage  *decodo.Outage
	Backoff decodo.Backoff
	Log     *slog.Logger
	// Sleep waits for d or until ctx is done [decodo.Sleep]; tests swap
	// it to see the pauses the poller asks for.
	Sleep func(ctx context.Context, d time.Duration) error
	// Callbacks: the API tells of finished tasks (see [Poller.Nudge]).
	// Polling is then the safety net: a task is first looked at only past
	// a deadline learned from the callback delays seen (1.5× their 99th
	// percentile plus a second, once 20 were seen; the normal schedule
	// before), so a lost callback delays its task but never loses it.
	Callbacks bool
}

// Stats counts the poller's requests.
type Stats struct {
	ResultGets, StatusGets atomic.Int64
	RateLimited            atomic.Int64
}

// Poller schedules and performs the looks. Add tasks at any time; Run
// works until ctx is done.
type Poller struct {
	api   Getter
	out   chan<- Event // set by Run
	cfg   Config
	Est   *Estimator
	Stats Stats

	mu    sync.Mutex
	queue schedule
	wake  chan struct{}
	byID  map[string]*Task // the tasks watched, for Nudge (with Callbacks)

	cbMu       sync.Mutex
	cbDelays   [nBuckets]int64 // callback delays (arrival - submission)
	cbCount    int64
	cbDeadline time.Duration // cached; recomputed as samples come in
	cbBuilt    int64         // cbCount when cbDeadline was computed

	pauseMu    sync.Mutex
	pauseUntil time.Time
	pauseStep  time.Duration
}

// New returns a poller reading from api.
func New(api Getter, cfg Config) *Poller {
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.StatusAfter <= 0 {
		cfg.StatusAfter = 20 * time.Second
	}
	if cfg.Outage == nil {
		cfg.Outage = new(decodo.Outage)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Sleep == nil {
		cfg.Sleep = decodo.Sleep
	}
	p := &Poller{api: api, cfg: cfg, Est: NewEstimator(cfg.MaxGap), wake: make(chan struct{}, 1)}
	if cfg.Callbacks {
		p.byID = make(map[string]*Task)
	}
	return p
}

// Add starts watching tasks. It never blocks for long.
func (p *Poller) Add(ts ...*Task) {
	p.mu.Lock()
	for _, t := range ts {
		if !t.Resumed {
			p.Est.Watch()
		}
		at := t.Submitted.Add(p.Est.Next(0))
		if p.byID != nil {
			p.byID[t.ID] = t
			if d, ok := p.callbackDeadline(); ok && !t.Resumed {
				at = t.Submitted.Add(max(d, p.Est.Next(0)))
			}
		}
		t.queued = true
		p.queue.push(t, at)
	}
	p.mu.Unlock()
	p.poke()
}

func (p *Poller) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run looks at tasks as they come due until ctx is done, and sends out one
// [Event] per task. It returns nil then (requests in flight are cancelled:
// reads cost nothing), [decodo.ErrAuth] when the token is refused, or
// [decodo.ErrUnavailable] (a [*decodo.UnavailableError]) when no request
// succeeded for the whole outage budget. Run
// may be called once.
func (p *Poller) Run(ctx context.Context, out chan<- Event) error {
	p.out = out
	work := make(chan *Task)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(work)
		p.dispatch(ctx, work)
		return nil
	})
	for range p.cfg.Workers {
		g.Go(func() error {
			for t := range work {
				if err := p.look(ctx, t); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// dispatch hands due tasks to the workers in the order they come due.
func (p *Poller) dispatch(ctx context.Context, work chan<- *Task) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		var t *Task
		wait := time.Hour
		if len(p.queue.e) > 0 {
			if d := p.queue.until(time.Now()); d <= 0 {
				var live bool
				if t, live = p.queue.pop(); !live {
					p.mu.Unlock()
					continue // moved by a Nudge: its live entry is elsewhere
				}
				t.queued = false
			} else {
				wait = d
			}
		}
		p.mu.Unlock()
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
		case <-p.wake:
		case <-timer.C:
		}
	}
}

func (p *Poller) again(t *Task, at time.Time) {
	p.mu.Lock()
	if t.nudge != 0 {
		at = time.Now() // a callback came during the look
	}
	t.queued = true
	p.queue.push(t, at)
	p.mu.Unlock()
	p.poke()
}

// Nudge tells the poller that the API called back for task id: look at it
// now, its status first when status is set (a faulted callback is never
// taken at its word). It reports whether the task is watched and this is
// its first callback; a task finished, unknown, or nudged before is left
// as it is. Safe for concurrent use; needs Config.Callbacks.
func (p *Poller) Nudge(id string, status bool) bool {
	now := time.Now()
	p.mu.Lock()
	t := p.byID[id]
	if t == nil || t.ended || !t.called.IsZero() {
		p.mu.Unlock()
		return false
	}
	t.called = now
	t.nudge = nudgeResults
	if status {
		t.nudge = nudgeStatus
	}
	if t.queued { // else a worker has it, and again will see the nudge
		t.gen++
		p.queue.push(t, now)
	}
	resumed, submitted := t.Resumed, t.Submitted
	p.mu.Unlock()
	if !resumed { // its age says how long the tool was away
		p.cbMu.Lock()
		p.cbDelays[bucketOf(now.Sub(submitted))]++
		p.cbCount++
		p.cbMu.Unlock()
	}
	p.poke()
	return true
}

// callbackDeadline returns the age past which a task whose callback has
// not come is polled: 1.5× the 99th percentile of the callback delays seen,
// plus a second; false until 20 were seen.
func (p *Poller) callbackDeadline() (time.Duration, bool) {
	p.cbMu.Lock()
	defer p.cbMu.Unlock()
	if p.cbCount < 20 {
		return 0, false
	}
	if p.cbBuilt == 0 || p.cbCount-p.cbBuilt >= max(16, p.cbBuilt/20) {
		want := (p.cbCount*99 + 99) / 100 // samples at or below the 99th percentile
		var n int64
		for b := range nBuckets {
			if n += p.cbDelays[b]; n >= want {
				q := time.Duration(bucketLow(b+1) * float64(time.Second))
				p.cbDeadline = q*3/2 + time.Second
				break
			}
		}
		p.cbBuilt = p.cbCount
	}
	return p.cbDeadline, true
}

// end marks t finished: a later Nudge leaves it alone.
func (p *Poller) end(t *Task) {
	if p.byID == nil {
		return
	}
	p.mu.Lock()
	t.ended = true
	t.nudge = 0
	if p.byID[t.ID] == t { // two rows may read one task (dedupe)
		delete(p.byID, t.ID)
	}
	p.mu.Unlock()
}

// look performs one look at t and reschedules it or reports it.
func (p *Poller) look(ctx context.Context, t *Task) error {
	if err := p.paused(ctx); err != nil {
		return nil
	}
	now := time.Now()
	age := now.Sub(t.Submitted)
	var nudged uint8
	if p.byID != nil {
		p.mu.Lock()
		nudged, t.nudge = t.nudge, 0
		p.mu.Unlock()
		if nudged == nudgeStatus {
			t.status = true
		}
		// No callback yet: polled only past the deadline callbacks are
		// late by (a resumed task's may have come while the tool was away).
		if nudged == 0 && t.last == 0 && !t.Resumed && !t.status {
			if d, ok := p.callbackDeadline(); ok && age < d-50*time.Millisecond {
				p.again(t, t.Submitted.Add(d))
				return nil
			}
		}
	}
	// A look scheduled before the estimator had learned anything (at the
	// start of a run, every task of the first batches) is moved to when
	// what is known now says, without a request.
	if nudged == 0 && p.Est.Trained() && !t.status {
		if due := t.Submitted.Add(p.Est.Next(t.last)); due.Sub(now) > 50*time.Millisecond {
			p.again(t, due)
			return nil
		}
	}
	gap := age - t.last
	t.Looks++
	if p.statusDue(t, age) {
		p.Stats.StatusGets.Add(1)
		task, err := p.api.Task(ctx, t.ID)
		if err != nil {
			return p.failed(ctx, t, err)
		}
		p.ok()
		switch task.Status {
		case decodo.StatusFaulted:
			p.forget(t)
			p.send(ctx, Event{Task: t, Lost: "task faulted", Class: ClassFaulted})
			return nil
		case decodo.StatusDone:
			// fetch the results right away
		default:
			p.pending(ctx, t, age)
			return nil
		}
	}
	p.Stats.ResultGets.Add(1)
	res, ready, err := p.api.Results(ctx, t.ID)
	if err != nil {
		return p.failed(ctx, t, err)
	}
	p.ok()
	t.errs = 0
	if !ready {
		p.pending(ctx, t, age)
		return nil
	}
	// The task completed somewhere in the gap since the last look (or
	// since its submission, at the first look), or when it called back.
	done := age - gap/2
	if nudged != 0 {
		p.mu.Lock()
		done = min(age, max(t.called.Sub(t.Submitted), t.last))
		p.mu.Unlock()
	}
	if !t.Resumed {
		p.Est.Observe(t.last, done)
	}
	t.waited = age - done
	p.send(ctx, Event{Task: t, Results: res, At: time.Now()})
	return nil
}

// Known reports whether a Known event was sent for the task. Read it only
// after an event of the task was received.
func (t *Task) Known() bool { return t.known }

// forget drops a task the estimate was watching (faulted or lost).
func (p *Poller) forget(t *Task) {
	if !t.Resumed {
		p.Est.Forget(t.last)
	}
}

// send hands an event to the owner. An event not taken before ctx is done
// is dropped: the task stays pending in the journal, and the next run looks
// at it again.
func (p *Poller) send(ctx context.Context, e Event) {
	if !e.Known {
		p.end(e.Task)
	}
	select {
	case p.out <- e:
	case <-ctx.Done():
	}
}

// statusDue says whether this look asks for the status instead of results:
// every third look at a task pending for much longer than is usual (1.5×
// the 95th percentile of the completions seen, or StatusAfter until enough
// were seen).
func (p *Poller) statusDue(t *Task, age time.Duration) bool {
	if t.status {
		t.status = false
		return true
	}
	if t.Looks%3 != 0 { // first: the quantile takes the estimator's lock
		return false
	}
	limit := p.cfg.StatusAfter
	if q, ok := p.Est.Quantile(0.95); ok {
		limit = max(q*3/2, time.Second)
	}
	return age > limit
}

func (p *Poller) pending(ctx context.Context, t *Task, age time.Duration) {
	if t.Resumed && !t.known {
		t.known = true
		p.send(ctx, Event{Task: t, Known: true})
	}
	if !t.Resumed {
		p.Est.Seen(t.last, age)
	}
	t.last = age
	p.again(t, t.Submitted.Add(p.Est.Next(age)))
}

// failed handles a request error: 429 pauses every worker, 404 means the
// task is gone, others retry with backoff while the outage budget lasts.
func (p *Poller) failed(ctx context.Context, t *Task, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	var apiErr *decodo.Error
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.RateLimited():
			p.Stats.RateLimited.Add(1)
			p.pause(apiErr.RetryAfter)
			t.Looks-- // not a look
			p.again(t, time.Now())
			return nil
		case apiErr.Gone():
			p.forget(t)
			p.send(ctx, Event{Task: t, Lost: "task unknown or its results expired (404)", Class: ClassLost})
			return nil
		case apiErr.Auth():
			return fmt.Errorf("%w: %s", decodo.ErrAuth, apiErr.Message)
		case !apiErr.Temporary():
			// Some other refusal of /results: the status tells why.
			t.status = true
		}
	}
	t.errs++
	if t.errs == 1 {
		t.errSince = time.Now()
	}
	// Not lost either way: submitting the row again could pay twice; the
	// task stays pending for the next run. An API that answers nothing
	// for the outage budget ends the run, and so does one that cannot
	// answer for this task as long, while it answers for others.
	if apiErr == nil || apiErr.StatusCode >= 500 {
		if err := p.cfg.Outage.Down(err); err != nil {
			return fmt.Errorf("read task %s: %w", t.ID, err)
		}
		if err := p.cfg.Outage.Over(t.errSince, err); err != nil {
			return fmt.Errorf("read task %s: %w", t.ID, err)
		}
	} else if p.cfg.Outage.Over(t.errSince, err) != nil {
		// The API answers, and refuses this task's reads (a 4xx) all the
		// budget long: its row fails, not submitted again (the task may
		// well be paid for).
		p.forget(t)
		p.send(ctx, Event{Task: t, Lost: "the API refused to read the task: " + err.Error(), Class: ClassUnreadable})
		return nil
	}
	p.cfg.Log.Debug("poll retry", "task", t.ID, "err", err)
	p.again(t, time.Now().Add(p.cfg.Outage.Wait(p.cfg.Backoff.Delay(t.errs))))
	return nil
}

// pause makes every worker wait: Retry-After when given, else a step that
// doubles with each 429 in a row (from 250ms to 30s).
func (p *Poller) pause(retryAfter time.Duration) {
	p.pauseMu.Lock()
	defer p.pauseMu.Unlock()
	if p.pauseStep == 0 {
		p.pauseStep = 250 * time.Millisecond
	} else {
		p.pauseStep = min(2*p.pauseStep, 30*time.Second)
	}
	d := p.pauseStep
	if retryAfter > 0 {
		d = retryAfter
	}
	if until := time.Now().Add(d); until.After(p.pauseUntil) {
		p.pauseUntil = until
	}
}

// ok records a request the API answered.
func (p *Poller) ok() {
	p.cfg.Outage.Up()
	p.pauseMu.Lock()
	p.pauseStep = 0
	p.pauseMu.Unlock()
}

func (p *Poller) paused(ctx context.Context) error {
	p.pauseMu.Lock()
	d := time.Until(p.pauseUntil)
	p.pauseMu.Unlock()
	if d <= 0 {
		return ctx.Err()
	}
	return p.cfg.Sleep(ctx, d)
}

// schedule is a min-heap of tasks by when they are due. The times sit in
// the entries, as nanoseconds from the schedule's base, so that the
// comparisons of a sift never leave the slice.
type schedule struct {
	base time.Time
	e    []entry
}

type entry struct {
	at  int64
	t   *Task
	gen uint32 // the task's gen when pushed: an older entry is stale
}

func (s *schedule) push(t *Task, at time.Time) {
	if s.base.IsZero() {
		s.base = time.Now()
	}
	s.e = append(s.e, entry{at: int64(at.Sub(s.base)), t: t, gen: t.gen})
	// sift up
	e := s.e
	i := len(e) - 1
	x := e[i]
	for i > 0 {
		parent := (i - 1) / 2
		if e[parent].at <= x.at {
			break
		}
		e[i] = e[parent]
		i = parent
	}
	e[i] = x
}

// until returns how long until the first task is due.
func (s *schedule) until(now time.Time) time.Duration {
	return time.Duration(s.e[0].at - int64(now.Sub(s.base)))
}

// pop removes the first entry and returns its task, and whether the entry
// is the task's live one (not one left stale by a Nudge).
func (s *schedule) pop() (*Task, bool) {
	e := s.e
	top := e[0].t
	live := e[0].gen == top.gen
	n := len(e) - 1
	x := e[n]
	e[n] = entry{}
	e = e[:n]
	s.e = e
	if n == 0 {
		return top, live
	}
	// sift down
	i := 0
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && e[c+1].at < e[c].at {
			c++
		}
		if x.at <= e[c].at {
			break
		}
		e[i] = e[c]
		i = c
	}
	e[i] = x
	return top, live
}

package decodo

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Backoff computes waits between retries: exponential from Base, capped at
// Max, with full jitter. The zero Backoff never waits (for tests).
type Backoff struct {
	Base, Max time.Duration
}

// DefaultBackoff is the backoff for 5xx and network errors.
var DefaultBackoff = Backoff{Base: 500 * time.Millisecond, Max: 30 * time.Second}

// Delay returns the wait before retry n (1-based): a random duration in
// [d/2, d] where d = Base·2^(n-1), capped at Max.
func (b Backoff) Delay(n int) time.Duration {
	if b.Base <= 0 {
		return 0
	}
	d := b.Base
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits for d or until ctx is done, whichever is first; it returns
// ctx's error in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// DefaultOutageBudget is how long the API may fail every request before a
// run gives up on it.
const DefaultOutageBudget = 5 * time.Minute

// Outage tracks how long every request to the API has failed: the batcher
// and the poller of a run share one, so an outage is over when any request
// succeeds, and the run gives up only when none has for the whole Budget.
// The zero Outage has [DefaultOutageBudget]; it is safe for concurrent use.
type Outage struct {
	Budget time.Duration
	since  atomic.Int64 // Unix nanoseconds of the first failure in a row; 0 while the API answers
}

// Up records a request the API answered: any outage is over.
func (o *Outage) Up() {
	if o.since.Load() != 0 {
		o.since.Store(0)
	}
}

// Over returns an [*UnavailableError] when since, the first of a run of
// failures of one request (a task's reads), is the outage budget ago: the
// API has failed it all that time, though it may answer others.
func (o *Outage) Over(since time.Time, last error) error {
	budget := cmp.Or(o.Budget, DefaultOutageBudget)
	if time.Since(since) < budget {
		return nil
	}
	return &UnavailableError{Since: since, Budget: budget, Last: last}
}

// Failing reports whether every request since the last success failed.
func (o *Outage) Failing() bool { return o.since.Load() != 0 }

// Down records a request that failed for want of the API (a network error,
// a 502, 503 or 504). It returns an [*UnavailableError] once the API has
// failed every request for the budget, else nil: try again after a backoff.
func (o *Outage) Down(err error) error {
	first := time.Now().UnixNano()
	if !o.since.CompareAndSwap(0, first) {
		first = o.since.Load()
	}
	if first == 0 { // up again meanwhile
		return nil
	}
	return o.Over(time.Unix(0, first), err)
}

// Wait returns d, or less if the budget ends sooner: a retry waits no
// longer than the outage has left, so the run gives up on time.
func (o *Outage) Wait(d time.Duration) time.Duration {
	first := o.since.Load()
	if first == 0 {
		return d
	}
	left := cmp.Or(o.Budget, DefaultOutageBudget) - time.Since(time.Unix(0, first))
	return max(min(d, left), 0)
}

// UnavailableError says the API failed every request for the outage
// budget. It matches [ErrUnavailable] with errors.Is, and does not unwrap
// to its last failure: that was not an answer to act on.
type UnavailableError struct {
	Since  time.Time     // the first failure of the outage
	Budget time.Duration // how long the run waited
	Last   error         // the last failure
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("the API was unavailable since %s (every request failed for %s, the outage budget); the last error: %v",
		e.Since.Format("15:04:05 MST"), e.Budget.Round(time.Millisecond), e.Last)
}

func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

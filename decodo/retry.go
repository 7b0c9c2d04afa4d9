package decodo

import (
	"context"
	"math/rand/v2"
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

package poller

import (
	"math"
	"sync"
	"time"
)

// Estimator learns how long tasks take from submission to completion and
// answers when a task of a given age is next worth a look.
//
// Completion ages go into a histogram of log-spaced buckets (5% wide). The
// next look after age a is a + sqrt(2 / (λ·h(a))), where h is the hazard
// rate (the chance per second that a task still pending at a completes
// now): this spacing minimises requests + λ·wait per task for the observed
// distribution. The first look is at a low quantile of the distribution;
// no look is ever more than MaxGap after the previous one.
type Estimator struct {
	Lambda   float64       // weight of a second of waiting against a request
	MaxGap   time.Duration // longest gap between two looks at a task
	MinGap   time.Duration // shortest gap
	FirstQ   float64       // quantile of the first look
	MinCount int           // completions needed before the histogram is trusted

	mu     sync.Mutex
	counts [nBuckets]int64
	total  int64
	// cache of the survival function, rebuilt as counts grow
	surv      [nBuckets + 1]float64
	survTotal int64
}

const (
	nBuckets   = 400
	bucketBase = 0.05 // seconds: lower edge of bucket 1
	growth     = 1.05
)

var logGrowth = math.Log(growth)

// NewEstimator returns an estimator with the defaults used by the poller.
func NewEstimator(maxGap time.Duration) *Estimator {
	if maxGap <= 0 {
		maxGap = 2500 * time.Millisecond
	}
	return &Estimator{Lambda: 2, MaxGap: maxGap, MinGap: 100 * time.Millisecond, FirstQ: 0.25, MinCount: 50}
}

func bucketOf(sec float64) int {
	if sec < bucketBase {
		return 0
	}
	b := 1 + int(math.Log(sec/bucketBase)/logGrowth)
	return min(b, nBuckets-1)
}

func bucketLow(b int) float64 {
	if b == 0 {
		return 0
	}
	return bucketBase * math.Pow(growth, float64(b-1))
}

// Observe records a task that completed after d.
func (e *Estimator) Observe(d time.Duration) {
	e.mu.Lock()
	e.counts[bucketOf(d.Seconds())]++
	e.total++
	e.mu.Unlock()
}

// Count returns the number of completions observed.
func (e *Estimator) Count() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total
}

// refresh rebuilds the survival cache when the counts grew by 2% or more.
func (e *Estimator) refresh() {
	if e.survTotal > 0 && e.total < e.survTotal+e.survTotal/50+1 {
		return
	}
	n := float64(e.total)
	left := n
	for b := 0; b < nBuckets; b++ {
		e.surv[b] = left / n // S at the lower edge of bucket b
		left -= float64(e.counts[b])
	}
	e.surv[nBuckets] = 0
	e.survTotal = e.total
}

// survival returns P(T > sec), interpolated within buckets.
func (e *Estimator) survival(sec float64) float64 {
	b := bucketOf(sec)
	lo, hi := bucketLow(b), bucketLow(b+1)
	f := 0.0
	if hi > lo {
		f = math.Min(1, (sec-lo)/(hi-lo))
	}
	return e.surv[b] + (e.surv[b+1]-e.surv[b])*f
}

// quantile returns the age by which a fraction q of tasks completed.
func (e *Estimator) quantile(q float64) float64 {
	target := 1 - q
	for b := 0; b < nBuckets; b++ {
		if e.surv[b+1] <= target {
			lo, hi := bucketLow(b), bucketLow(b+1)
			span := e.surv[b] - e.surv[b+1]
			if span <= 0 {
				return lo
			}
			return lo + (hi-lo)*(e.surv[b]-target)/span
		}
	}
	return bucketLow(nBuckets)
}

// Next returns the age at which a task last looked at at age `last` (0 if
// never) should be looked at again.
func (e *Estimator) Next(last time.Duration) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.total < int64(e.MinCount) {
		// Nothing learned yet: look every second (or MaxGap if shorter).
		return last + min(time.Second, e.MaxGap)
	}
	e.refresh()
	if last == 0 {
		return max(time.Duration(e.quantile(e.FirstQ)*float64(time.Second)), e.MinGap)
	}
	a := last.Seconds()
	gap := e.MaxGap
	if s := e.survival(a); s > 0 {
		w := math.Max(0.25, a*0.1) // hazard over a window that widens with age
		h := (s - e.survival(a+w)) / (w * s)
		if h > 0 {
			gap = min(gap, time.Duration(math.Sqrt(2/(e.Lambda*h))*float64(time.Second)))
		}
	}
	return last + max(gap, e.MinGap)
}

// Quantile returns the age by which a fraction q of the observed tasks
// completed, and false while fewer than MinCount were observed.
func (e *Estimator) Quantile(q float64) (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.total < int64(e.MinCount) {
		return 0, false
	}
	e.refresh()
	return time.Duration(e.quantile(q) * float64(time.Second)), true
}

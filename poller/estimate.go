package poller

import (
	"math"
	"sync"
	"time"
)

// Estimator learns how long tasks take from submission to completion and
// answers when a task of a given age is next worth a look.
//
// It is a Kaplan–Meier estimate over log-spaced age buckets (5% wide):
// completions count as events at their age, and every task still pending
// counts as "at risk" up to the age of its last look. Early in a run only
// the fast tasks have completed; counting the pending ones keeps the
// estimate from believing every task is fast.
//
// The next look after age a is a + sqrt(2 / (λ·h(a))), where h is the
// hazard (the chance per second that a task pending at a completes now):
// that spacing minimises requests + λ·wait for the estimated distribution.
// The first look is at the FirstQ quantile; no gap exceeds MaxGap.
type Estimator struct {
	Lambda   float64       // weight of a second of waiting against a request
	MaxGap   time.Duration // longest gap between two looks at a task
	MinGap   time.Duration // shortest gap
	FirstQ   float64       // quantile of the first look
	MinCount int           // completions needed before the estimate is used

	mu      sync.Mutex
	done    [nBuckets]int64 // completions by age
	pend    [nBuckets]int64 // pending tasks by the age of their last look
	total   int64           // completions
	changes int64           // updates since the survival cache was built
	surv    [nBuckets + 1]float64
	built   bool
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
		maxGap = 2750 * time.Millisecond
	}
	return &Estimator{Lambda: 1, MaxGap: maxGap, MinGap: 100 * time.Millisecond, FirstQ: 0.3, MinCount: 200}
}

func bucketOf(d time.Duration) int {
	sec := d.Seconds()
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

// Watch counts a new task, not looked at yet.
func (e *Estimator) Watch() {
	e.mu.Lock()
	e.pend[0]++
	e.changes++
	e.mu.Unlock()
}

// Seen records that a task last looked at at age last is still pending at
// age now.
func (e *Estimator) Seen(last, now time.Duration) {
	e.mu.Lock()
	e.pend[bucketOf(last)]--
	e.pend[bucketOf(now)]++
	e.changes++
	e.mu.Unlock()
}

// Observe records that a task last seen pending at age last completed at
// age d.
func (e *Estimator) Observe(last, d time.Duration) {
	e.mu.Lock()
	e.pend[bucketOf(last)]--
	e.done[bucketOf(d)]++
	e.total++
	e.changes++
	e.mu.Unlock()
}

// Forget drops a task last looked at at age last (faulted, lost).
func (e *Estimator) Forget(last time.Duration) {
	e.mu.Lock()
	e.pend[bucketOf(last)]--
	e.changes++
	e.mu.Unlock()
}

// Trained reports whether enough completions were seen to use the estimate.
func (e *Estimator) Trained() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total >= int64(e.MinCount)
}

// refresh rebuilds the survival cache after enough updates.
func (e *Estimator) refresh() {
	if e.built && e.changes < max(64, e.total/50) {
		return
	}
	// at risk in bucket b: tasks that completed in b or later, and
	// pending tasks last seen in b or later.
	var atRisk [nBuckets]int64
	var sum int64
	for b := nBuckets - 1; b >= 0; b-- {
		sum += e.done[b] + max(e.pend[b], 0)
		atRisk[b] = sum
	}
	s := 1.0
	for b := 0; b < nBuckets; b++ {
		e.surv[b] = s
		if atRisk[b] > 0 {
			s *= 1 - float64(e.done[b])/float64(atRisk[b])
		}
	}
	e.surv[nBuckets] = s
	e.built, e.changes = true, 0
}

// survival returns P(T > sec), interpolated within buckets.
func (e *Estimator) survival(sec float64) float64 {
	b := bucketOf(time.Duration(sec * float64(time.Second)))
	lo, hi := bucketLow(b), bucketLow(b+1)
	f := 0.0
	if hi > lo {
		f = math.Min(1, (sec-lo)/(hi-lo))
	}
	return e.surv[b] + (e.surv[b+1]-e.surv[b])*f
}

// quantile returns the age by which a fraction q of tasks completed, or
// ok false when the estimate never gets there (too few completions yet).
func (e *Estimator) quantile(q float64) (float64, bool) {
	target := 1 - q
	for b := 0; b < nBuckets; b++ {
		if e.surv[b+1] <= target {
			lo, hi := bucketLow(b), bucketLow(b+1)
			span := e.surv[b] - e.surv[b+1]
			if span <= 0 {
				return lo, true
			}
			return lo + (hi-lo)*(e.surv[b]-target)/span, true
		}
	}
	return 0, false
}

// Next returns the age at which a task last looked at at age `last` (0 if
// never) should be looked at again.
func (e *Estimator) Next(last time.Duration) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.total < int64(e.MinCount) {
		// Nothing learned yet: a first look after 2s (a one-time cost
		// of at most that for fast tasks, instead of many looks at slow
		// ones), then gaps growing with the age, up to MaxGap.
		if last == 0 {
			return min(2*time.Second, e.MaxGap)
		}
		return last + min(max(time.Second, last/2), e.MaxGap)
	}
	e.refresh()
	if last == 0 {
		if q, ok := e.quantile(e.FirstQ); ok {
			return max(time.Duration(q*float64(time.Second)), e.MinGap)
		}
		return e.MaxGap
	}
	a := last.Seconds()
	gap := e.MaxGap
	if s := e.survival(a); s > 0 {
		w := math.Max(0.5, a*0.25) // hazard over a window that widens with age: a smooth estimate, not a noisy one
		h := (s - e.survival(a+w)) / (w * s)
		if h > 0 {
			gap = min(gap, time.Duration(math.Sqrt(2/(e.Lambda*h))*float64(time.Second)))
		}
	}
	return last + max(gap, e.MinGap)
}

// Quantile returns the age by which a fraction q of the tasks completed,
// and false while too little is known.
func (e *Estimator) Quantile(q float64) (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.total < int64(e.MinCount) {
		return 0, false
	}
	e.refresh()
	v, ok := e.quantile(q)
	return time.Duration(v * float64(time.Second)), ok
}

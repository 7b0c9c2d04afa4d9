package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo"
)

// API is what a run needs of the Decodo API. [*decodo.Client] satisfies it.
type API interface {
	SubmitBatch(ctx context.Context, req decodo.BatchRequest) (*decodo.BatchResponse, error)
	Submit(ctx context.Context, params json.RawMessage) (*decodo.Task, error)
	Results(ctx context.Context, id string) ([]decodo.Result, bool, error)
	Task(ctx context.Context, id string) (*decodo.Task, error)
}

// counted wraps an API and counts requests by endpoint and answer.
type counted struct {
	api   API
	mu    sync.Mutex
	n     map[opStatus]int64
	once  sync.Once
	first time.Time // when the first request of this process was sent
}

type opStatus struct{ op, status string }

func newCounted(api API) *counted { return &counted{api: api, n: make(map[opStatus]int64)} }

func (c *counted) start() { c.once.Do(func() { c.first = time.Now() }) }

func (c *counted) count(op string, status string) {
	c.mu.Lock()
	c.n[opStatus{op, status}]++
	c.mu.Unlock()
}

func statusOf(err error, ok string) string {
	if err == nil {
		return ok
	}
	var e *decodo.Error
	if errors.As(err, &e) {
		return fmt.Sprint(e.StatusCode)
	}
	if errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	return "error"
}

func (c *counted) SubmitBatch(ctx context.Context, req decodo.BatchRequest) (*decodo.BatchResponse, error) {
	c.start()
	r, err := c.api.SubmitBatch(ctx, req)
	c.count("POST /v3/task/batch", statusOf(err, "200"))
	return r, err
}

func (c *counted) Submit(ctx context.Context, params json.RawMessage) (*decodo.Task, error) {
	c.start()
	t, err := c.api.Submit(ctx, params)
	c.count("POST /v3/task", statusOf(err, "200"))
	return t, err
}

func (c *counted) Results(ctx context.Context, id string) ([]decodo.Result, bool, error) {
	c.start()
	r, ready, err := c.api.Results(ctx, id)
	ok := "204"
	if ready {
		ok = "200"
	}
	c.count("GET /v3/task/{id}/results", statusOf(err, ok))
	return r, ready, err
}

func (c *counted) Task(ctx context.Context, id string) (*decodo.Task, error) {
	c.start()
	t, err := c.api.Task(ctx, id)
	c.count("GET /v3/task/{id}", statusOf(err, "200"))
	return t, err
}

func (c *counted) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int64, len(c.n))
	for k, v := range c.n {
		m[k.op+" "+k.status] = v
	}
	return m
}

// Summary is what a run did, written to summary.json and, in short, to
// stderr.
type Summary struct {
	Input        string           `json:"input"`
	Rows         int64            `json:"rows"` // -1 if the input was not read to its end
	Results      int64            `json:"results"`
	Failed       int64            `json:"failed"`
	Rejected     int64            `json:"rejected"`
	Pending      int64            `json:"pending"` // submitted, not done: a later run collects them
	Skipped      int64            `json:"skipped"` // done by an earlier run
	Resumed      bool             `json:"resumed"`
	Batches      int64            `json:"batches"`
	Singles      int64            `json:"single_tasks"` // rows submitted one by one (POST /v3/task)
	Resubmitted  int64            `json:"resubmitted"`  // rows submitted again after a fault or expiry
	Retried      int64            `json:"submissions_retried"`
	Splits       int64            `json:"batches_split"` // refused batches split to find the refused items
	RateLimited  int64            `json:"rate_limited"`  // 429 answers, all endpoints
	Requests     map[string]int64 `json:"requests"`
	GetsPerTask  float64          `json:"gets_per_task"`
	Started      time.Time        `json:"started"`
	FirstRequest float64          `json:"first_request_seconds"` // from start to the first request of this run (resume speed)
	Ended        time.Time        `json:"ended"`
	Seconds      float64          `json:"seconds"`
	FirstBatch   *time.Time       `json:"first_batch,omitempty"`
	LastBatch    *time.Time       `json:"last_batch,omitempty"`
	TasksPerSec  float64          `json:"tasks_per_second"`
	LatencyP50   float64          `json:"task_latency_p50_seconds"` // submission to result written
	LatencyP95   float64          `json:"task_latency_p95_seconds"`
	WaitP50      float64          `json:"wait_after_done_p50_seconds"` // estimated: completion (midpoint of the last poll gap) to result written
	WaitP95      float64          `json:"wait_after_done_p95_seconds"`
	Stopped      string           `json:"stopped,omitempty"` // why the run stopped before the end
	Outcome      string           `json:"outcome"`           // done, partial (rows failed or rejected), stopped, unavailable (the API; run again), or error
}

// samples keeps durations for quantiles, decimating beyond a bound so
// memory stays flat on huge runs.
type samples struct {
	v    []float64
	keep int // keep 1 of every keep
	n    int
}

func (s *samples) add(d time.Duration) {
	s.n++
	if s.keep == 0 {
		s.keep = 1
	}
	if s.n%s.keep != 0 {
		return
	}
	s.v = append(s.v, d.Seconds())
	if len(s.v) >= 1<<16 {
		// halve: keep every other sample, sample half as often
		j := 0
		for i := 0; i < len(s.v); i += 2 {
			s.v[j] = s.v[i]
			j++
		}
		s.v = s.v[:j]
		s.keep *= 2
	}
}

func (s *samples) quantile(q float64) float64 {
	if len(s.v) == 0 {
		return 0
	}
	c := slices.Clone(s.v)
	slices.Sort(c)
	return c[min(len(c)-1, int(q*float64(len(c))))]
}

package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/decodo-batch/decodo-batch/callback"
	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/results"
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

// Summary is what a job did over all its sessions (runs on one
// checkpoint), written to summary.json and, in short, to stderr. The
// counts of rows and tasks paid for are the journal's; the figures of
// requests and time are the sums of the sessions' (see [SessionSummary]);
// the rest is the latest session's, as marked.
type Summary struct {
	Input        string           `json:"input"`
	Rows         int64            `json:"rows"` // -1 if the input was not read to its end
	Results      int64            `json:"results"`
	Failed       int64            `json:"failed"`
	Rejected     int64            `json:"rejected"`
	Pending      int64            `json:"pending"`    // submitted, not done: a later run collects them
	TasksPaid    int64            `json:"tasks_paid"` // tasks submitted (first submissions and resubmissions) over all sessions: what the API bills
	Skipped      int64            `json:"skipped"`    // the latest session: rows done by an earlier one
	Resumed      bool             `json:"resumed"`    // the latest session resumed a checkpoint
	Batches      int64            `json:"batches"`
	Singles      int64            `json:"single_tasks"`          // rows submitted one by one (POST /v3/task)
	Resubmitted  int64            `json:"resubmitted"`           // rows submitted again after a fault or expiry
	OverBudget   int64            `json:"over_budget,omitempty"` // rows failed as class budget: the task budget (MaxTasks) was spent
	Retried      int64            `json:"submissions_retried"`
	Splits       int64            `json:"batches_split"`         // refused batches split to find the refused items
	RateLimited  int64            `json:"rate_limited"`          // 429 answers, all endpoints
	Requests     map[string]int64 `json:"requests"`              // by endpoint and answer, summed over the sessions
	GetsPerTask  float64          `json:"gets_per_task"`         // GET requests per result fetched
	Started      time.Time        `json:"started"`               // the latest session's start (its entry in sessions has the journal's)
	FirstRequest float64          `json:"first_request_seconds"` // the latest session: from start to its first request (resume speed)
	Ended        time.Time        `json:"ended"`
	Seconds      float64          `json:"seconds"` // the sessions' run times, summed
	FirstBatch   *time.Time       `json:"first_batch,omitempty"`
	LastBatch    *time.Time       `json:"last_batch,omitempty"`
	TasksPerSec  float64          `json:"tasks_per_second"`         // results fetched per second of run time
	LatencyP50   float64          `json:"task_latency_p50_seconds"` // the latest session: submission to result written
	LatencyP95   float64          `json:"task_latency_p95_seconds"`
	WaitP50      float64          `json:"wait_after_done_p50_seconds"` // the latest session, estimated: completion (midpoint of the last poll gap) to result written
	WaitP95      float64          `json:"wait_after_done_p95_seconds"`
	Stopped      string           `json:"stopped,omitempty"` // why the latest session stopped before the end
	Outcome      string           `json:"outcome"`           // of the latest session: done, partial (rows failed or rejected), stopped, unavailable (the API; run again), or error
	// Sessions has one entry per session of the job, oldest first; the
	// last is this run's.
	Sessions []SessionSummary `json:"sessions"`

	// Callbacks: the latest session's callback receiver, when on: the
	// callbacks accepted, duplicates, and rejections by reason.
	Callbacks *callback.Counts `json:"callbacks,omitempty"`

	prev        []SessionSummary // the sessions of the summary.json found at start
	paidAtStart int64            // the journal's tasks paid for when the session started
	fetched     int64            // results fetched in the session
	gets        int64            // result and status GETs in the session
}

// SessionSummary is one session of a job: one run on its checkpoint.
type SessionSummary struct {
	Start time.Time `json:"start"` // as the journal recorded it
	// End is nil, and Outcome "unknown", for a session that ended without
	// writing its summary (kill -9, a power cut): of its figures only the
	// rows completed are known, from the journal.
	End            *time.Time       `json:"end,omitempty"`
	Seconds        float64          `json:"seconds"`
	Outcome        string           `json:"outcome"`
	Stopped        string           `json:"stopped,omitempty"`
	RowsCompleted  int64            `json:"rows_completed"` // rows that reached results, failed or rejects in the session
	ResultsFetched int64            `json:"results_fetched"`
	TasksPaid      int64            `json:"tasks_paid"` // tasks submitted in the session
	Batches        int64            `json:"batches"`
	Singles        int64            `json:"single_tasks"`
	Resubmitted    int64            `json:"resubmitted"`
	OverBudget     int64            `json:"over_budget,omitempty"`
	Retried        int64            `json:"submissions_retried"`
	Splits         int64            `json:"batches_split"`
	RateLimited    int64            `json:"rate_limited"`
	Requests       map[string]int64 `json:"requests"`
	Gets           int64            `json:"gets"` // result and status GETs
	GetsPerTask    float64          `json:"gets_per_task"`
	TasksPerSec    float64          `json:"tasks_per_second"`
	FirstRequest   float64          `json:"first_request_seconds"`
}

// Current returns the entry of the session that wrote s: the last one.
func (s *Summary) Current() *SessionSummary {
	if len(s.Sessions) == 0 {
		return nil
	}
	return &s.Sessions[len(s.Sessions)-1]
}

// readSummary returns the sessions of the summary.json in dir, for the
// next one to go on from. A missing or unreadable file gives none (the
// journal's sessions still give their starts). A summary written before
// summary.json had sessions is taken as the one session it described.
func readSummary(dir string) []SessionSummary {
	var prev Summary
	if results.ReadSummary(dir, &prev) != nil {
		return nil
	}
	if prev.Sessions != nil || prev.Started.IsZero() {
		return prev.Sessions
	}
	end := prev.Ended
	return []SessionSummary{{
		Start: prev.Started, End: &end, Seconds: prev.Seconds, Outcome: prev.Outcome, Stopped: prev.Stopped,
		Batches: prev.Batches, Singles: prev.Singles, Resubmitted: prev.Resubmitted, Retried: prev.Retried,
		Splits: prev.Splits, RateLimited: prev.RateLimited, Requests: prev.Requests,
		GetsPerTask: prev.GetsPerTask, TasksPerSec: prev.TasksPerSec, FirstRequest: prev.FirstRequest,
	}}
}

// addSessions makes s, which holds this session's figures, the summary of
// the whole job: an entry per session of the journal, oldest first, this
// one last, and the totals over them. The journal decides which sessions
// there are (a summary.json from before a --restart has others); an
// earlier one the previous summary lacks gets what the journal knows of
// it: its start and the rows it completed.
func addSessions(s *Summary, st *checkpoint.State) {
	cur := SessionSummary{
		Start: s.Started, Seconds: s.Seconds, Outcome: s.Outcome, Stopped: s.Stopped,
		ResultsFetched: s.fetched, TasksPaid: st.Submitted - s.paidAtStart,
		Batches: s.Batches, Singles: s.Singles, Resubmitted: s.Resubmitted, OverBudget: s.OverBudget,
		Retried: s.Retried, Splits: s.Splits, RateLimited: s.RateLimited,
		Requests: s.Requests, Gets: s.gets, GetsPerTask: s.GetsPerTask, TasksPerSec: s.TasksPerSec,
		FirstRequest: s.FirstRequest,
	}
	end := s.Ended
	cur.End = &end
	js := st.Sessions
	doneAtStart := int64(0)
	if n := len(js); n > 0 {
		// The journal's start, by which the next run matches this entry.
		cur.Start, doneAtStart = js[n-1].Start, js[n-1].DoneAtStart
		js = js[:n-1]
	}
	cur.RowsCompleted = st.DoneCount() - doneAtStart
	s.Sessions = append(mergeSessions(s.prev, js, doneAtStart), cur)

	s.TasksPaid = st.Submitted
	s.Batches, s.Singles, s.Resubmitted, s.OverBudget, s.Retried, s.Splits, s.RateLimited = 0, 0, 0, 0, 0, 0, 0
	s.Requests = make(map[string]int64)
	s.Seconds = 0
	var gets, fetched int64
	for i := range s.Sessions {
		e := &s.Sessions[i]
		s.Batches += e.Batches
		s.Singles += e.Singles
		s.Resubmitted += e.Resubmitted
		s.OverBudget += e.OverBudget
		s.Retried += e.Retried
		s.Splits += e.Splits
		s.RateLimited += e.RateLimited
		for k, v := range e.Requests {
			s.Requests[k] += v
		}
		s.Seconds += e.Seconds
		gets += e.Gets
		fetched += e.ResultsFetched
	}
	s.GetsPerTask, s.TasksPerSec = 0, 0
	if fetched > 0 {
		s.GetsPerTask = float64(gets) / float64(fetched)
	}
	if s.Seconds > 0 {
		s.TasksPerSec = float64(fetched) / s.Seconds
	}
}

// Sessions returns the sessions of the job in out whose journal state is
// st, oldest first: those the journal recorded, each with its figures from
// out's summary.json when it has them; the others (ended without writing
// a summary, or still running) with Outcome "unknown" and the rows they
// completed.
func Sessions(out string, st *checkpoint.State) []SessionSummary {
	return mergeSessions(readSummary(out), st.Sessions, st.DoneCount())
}

// mergeSessions returns an entry for each session of js: its entry in
// prev, or one with what the journal knows, with the rows it completed up
// to the next session's start, or done for the last.
func mergeSessions(prev []SessionSummary, js []checkpoint.Session, done int64) []SessionSummary {
	sessions := make([]SessionSummary, 0, len(js)+1)
	for i, j := range js {
		e := SessionSummary{Start: j.Start, Outcome: "unknown"}
		if p := matchSession(prev, j.Start); p != nil {
			e = *p
			e.Start = j.Start
		}
		next := done
		if i+1 < len(js) {
			next = js[i+1].DoneAtStart
		}
		e.RowsCompleted = next - j.DoneAtStart
		sessions = append(sessions, e)
	}
	return sessions
}

// matchSession returns the entry of prev for the session the journal
// started at start: the entry of that start, or one written before
// summaries had sessions, whose run began just before the journal's
// session and ended after.
func matchSession(prev []SessionSummary, start time.Time) *SessionSummary {
	for i := range prev {
		p := &prev[i]
		if p.Start.Equal(start) || p.End != nil && !start.Before(p.Start) && !start.After(*p.End) {
			return p
		}
	}
	return nil
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

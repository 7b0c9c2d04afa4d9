package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/decodo-batch/decodo-batch/batcher"
	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/results"
	"github.com/decodo-batch/decodo-batch/poller"
)

// commitEvery bounds how long a written line waits before the checkpoint
// vouches for it (the group commit).
const commitEvery = 100 * time.Millisecond

// owner is the one goroutine that writes the output files and the journal.
type owner struct {
	cfg     *Config
	j       *checkpoint.Journal
	st      *checkpoint.State // live: only the owner reads it after start
	w       *results.Writer
	api     *counted
	b       *batcher.Batcher
	p       *poller.Poller
	events  chan event
	submits chan event // served before events

	stopRead, stopBatch, stopPoll context.CancelFunc

	// rows finished since the last commit, by outcome
	fresh    [3][]int64
	finished map[int64]bool // the same rows, to refuse a second line
	total    int64          // input rows, -1 until the input ended
	queued   atomic.Int64   // rows handed to the batcher and not yet back

	// progress, read by the progress reporter
	nResults, nFailed, nRejected, nTotal atomic.Int64

	sum      Summary
	latency  samples
	wait     samples
	stopping string
}

func (o *owner) done(row int64) bool { return o.finished[row] || o.st.Done(row) }

func (o *owner) doneCount() int64 {
	return o.st.DoneCount() + int64(len(o.fresh[0])+len(o.fresh[1])+len(o.fresh[2]))
}

func (o *owner) mark(out checkpoint.Outcome, row int64) {
	if o.finished == nil {
		o.finished = make(map[int64]bool)
	}
	o.finished[row] = true
	i := int(out) - int(checkpoint.OutcomeResult)
	o.fresh[i] = append(o.fresh[i], row)
	switch out {
	case checkpoint.OutcomeResult:
		o.nResults.Add(1)
	case checkpoint.OutcomeFailed:
		o.nFailed.Add(1)
	default:
		o.nRejected.Add(1)
	}
}

// loop handles events until every row is done, the run is told to stop, or
// a producer fails; then it drains what the producers still send.
func (o *owner) loop(ctx context.Context, errs <-chan error, quiet <-chan struct{}) error {
	o.nResults.Store(o.st.Results)
	o.nFailed.Store(o.st.Failed)
	o.nRejected.Store(o.st.Rejected)
	tick := time.NewTicker(commitEvery)
	defer tick.Stop()
	var submitEnd, deadline <-chan time.Time
	if o.cfg.MaxRuntime > 0 {
		// Stop submitting a little before the deadline, so what is
		// submitted has a chance to come back in this run.
		margin := min(o.cfg.MaxRuntime/5, 30*time.Second)
		submitEnd = time.After(o.cfg.MaxRuntime - margin)
		deadline = time.After(o.cfg.MaxRuntime - min(o.cfg.MaxRuntime/20, time.Second))
	}
	// fail keeps the first fatal error and stops the run (stop is
	// idempotent, so the drain after quiet may call it too).
	var fatal error
	fail := func(err error) {
		if err != nil && fatal == nil && !errors.Is(err, context.Canceled) {
			fatal = err
			o.stop("error")
		}
	}
	sigs := ctx.Done()
	for {
		if o.stopping == "" && fatal == nil {
			if o.total >= 0 && o.doneCount() >= o.total {
				o.stop("")
			} else if o.cfg.NoWait && o.total >= 0 && o.queued.Load() == 0 {
				o.stop("--no-wait: everything is submitted")
			}
		}
		// Submissions first: their task ids are paid for and must reach
		// the journal before anything else waits.
		select {
		case e := <-o.submits:
			fail(o.handle(e))
			continue
		default:
		}
		select {
		case e := <-o.submits:
			fail(o.handle(e))
		case e := <-o.events:
			fail(o.handle(e))
		case <-tick.C:
			fail(o.commit())
		case err := <-errs:
			fail(err)
		case <-sigs:
			sigs = nil
			o.stop("interrupted")
			o.cfg.Log.Warn("stopping: finishing requests in flight; a second signal exits at once")
		case <-submitEnd:
			submitEnd = nil
			o.cfg.Log.Info("--max-runtime near: no more submissions")
			o.stopRead()
			o.stopBatch()
		case <-deadline:
			deadline = nil
			o.stop("--max-runtime reached")
		case <-quiet:
			// Every producer has returned: take what they left, and end.
			for drained := false; !drained; {
				select {
				case e := <-o.submits:
					fail(o.handle(e))
				case e := <-o.events:
					fail(o.handle(e))
				case err := <-errs:
					fail(err)
				default:
					drained = true
				}
			}
			fail(o.commit())
			return fatal
		}
	}
}

// stop tells every producer to stop; the loop goes on until they have.
func (o *owner) stop(why string) {
	if o.stopping != "" {
		return
	}
	o.stopping = why
	if why == "" {
		o.stopping = "done"
	}
	o.stopRead()
	o.stopBatch()
	o.stopPoll()
}

func (o *owner) handle(e event) error {
	switch e := e.(type) {
	case evInputEnd:
		o.total = e.rows
		o.nTotal.Store(e.rows)
		if o.j != nil {
			return o.j.InputEnd(e.rows)
		}
	case evReject:
		if o.done(e.row) {
			return nil
		}
		o.mark(checkpoint.OutcomeRejected, e.row)
		return o.w.Reject(&results.Reject{Row: e.row, Line: e.line, Error: e.reason, Input: e.input})
	case evRefused:
		o.queued.Add(-int64(len(e.items)))
		for i := range e.items {
			it := &e.items[i]
			if o.done(it.Row) {
				continue
			}
			o.mark(checkpoint.OutcomeRejected, it.Row)
			input := it.URL
			if input == "" {
				input = it.Query
			}
			if err := o.w.Reject(&results.Reject{Row: it.Row, Line: it.Line, Error: "refused by the API: " + e.reason, Input: input}); err != nil {
				return err
			}
		}
	case evFailed:
		o.queued.Add(-int64(len(e.items)))
		for i := range e.items {
			if err := o.fail(&e.items[i], "", e.reason); err != nil {
				return err
			}
		}
	case evSubmitted:
		return o.submitted(e)
	case evDone:
		return o.result(e)
	case evLost:
		return o.lost(e.t.Item, e.t.ID, e.reason)
	case evResume:
		it := batcher.Item{Record: e.rec, Attempt: e.p.Attempt}
		id := strconv.FormatUint(e.p.TaskID, 10)
		if time.Since(e.p.SubmittedAt) > ResultsWindow-30*time.Minute {
			return o.lost(it, id, "results window of 24 hours passed")
		}
		o.p.Add(&poller.Task{ID: id, Item: it, Submitted: e.p.SubmittedAt})
	}
	return nil
}

func (o *owner) fail(it *batcher.Item, taskID, reason string) error {
	if o.done(it.Row) {
		return nil
	}
	o.mark(checkpoint.OutcomeFailed, it.Row)
	return o.w.Failed(&results.Failure{Row: rowOf(it), TaskID: taskID, Error: reason, Attempts: it.Attempt})
}

// lost handles a task that faulted, expired or could not be read: submit
// the row again while attempts remain, else it failed.
func (o *owner) lost(it batcher.Item, id, reason string) error {
	if o.done(it.Row) {
		return nil
	}
	if it.Attempt <= o.cfg.Retries && o.stopping == "" {
		o.sum.Resubmitted++
		o.cfg.Log.Debug("resubmitting", "row", it.Row, "task", id, "reason", reason, "attempt", it.Attempt+1)
		it.Attempt++
		o.queued.Add(1)
		o.b.Resubmit(it)
		return nil
	}
	if o.stopping != "" {
		return nil // still pending in the journal: the next run tries again
	}
	return o.fail(&it, id, fmt.Sprintf("%s (after %d attempts)", reason, it.Attempt))
}

// submitted records the new tasks in the journal, durably, before the
// poller may report on them: a crash after this pays for nothing twice.
func (o *owner) submitted(e evSubmitted) error {
	o.queued.Add(-int64(len(e.items)))
	tasks := make([]*poller.Task, len(e.items))
	byAttempt := map[int][]checkpoint.Task{}
	for i := range e.items {
		n, err := taskID(e.ids[i])
		if err != nil {
			return err
		}
		a := e.items[i].Attempt
		byAttempt[a] = append(byAttempt[a], checkpoint.Task{Row: e.items[i].Row, TaskID: n})
		tasks[i] = &poller.Task{ID: e.ids[i], Item: e.items[i], Submitted: e.at}
	}
	for a, ts := range byAttempt {
		if err := o.j.Submit(e.at, a, ts); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	if err := o.j.Sync(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	o.p.Add(tasks...)
	return nil
}

func (o *owner) result(e evDone) error {
	it := &e.t.Item
	if o.done(it.Row) {
		return nil
	}
	r := results.Result{Row: rowOf(it), TaskID: e.t.ID, Attempts: it.Attempt, FetchedAt: e.at}
	r.Pages = make([]json.RawMessage, len(e.res))
	for i := range e.res {
		r.Pages[i] = e.res[i].Content
		if len(r.Pages[i]) == 0 {
			r.Pages[i] = json.RawMessage("null")
		}
	}
	if len(e.res) > 0 {
		r.StatusCode = e.res[0].StatusCode
	}
	o.mark(checkpoint.OutcomeResult, it.Row)
	now := time.Now()
	o.latency.add(now.Sub(e.t.Submitted))
	o.wait.add(now.Sub(e.at) + e.t.Waited())
	return o.w.Result(&r)
}

// commit makes the lines written since the last commit durable, then has
// the journal vouch for them: outputs first, journal second.
func (o *owner) commit() error {
	n := len(o.fresh[0]) + len(o.fresh[1]) + len(o.fresh[2])
	if n == 0 {
		return nil
	}
	off, err := o.w.Commit()
	if err != nil {
		return err
	}
	now := time.Now()
	for i, rows := range o.fresh {
		if len(rows) == 0 {
			continue
		}
		if err := o.j.Finish(now, checkpoint.OutcomeResult+checkpoint.Outcome(i), rows, checkpoint.Offsets(off)); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		o.fresh[i] = rows[:0]
	}
	clear(o.finished)
	if err := o.j.Sync(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if o.j.ShouldCompact() {
		if err := o.j.Compact(); err != nil {
			return fmt.Errorf("checkpoint: compact: %w", err)
		}
	}
	return nil
}

// finish writes the summary and picks the error that decides the exit code.
func (o *owner) finish(err error) (*Summary, error) {
	s := &o.sum
	st := o.st
	s.Rows = st.Rows
	s.Results, s.Failed, s.Rejected = st.Results, st.Failed, st.Rejected
	s.Pending = int64(st.PendingCount())
	s.Batches = o.b.Stats.Batches.Load()
	s.Retried = o.b.Stats.Retried.Load()
	s.Splits = o.b.Stats.Splits.Load()
	s.RateLimited = o.b.Stats.RateLimited.Load() + o.p.Stats.RateLimited.Load()
	s.Requests = o.api.snapshot()
	o.api.mu.Lock()
	if !o.api.first.IsZero() {
		s.FirstRequest = o.api.first.Sub(s.Started).Seconds()
	}
	o.api.mu.Unlock()
	s.Ended = time.Now()
	s.Seconds = s.Ended.Sub(s.Started).Seconds()
	if f := o.b.Stats.First.Load(); f != 0 {
		t1, t2 := time.Unix(0, f), time.Unix(0, o.b.Stats.Last.Load())
		s.FirstBatch, s.LastBatch = &t1, &t2
	}
	done := int64(o.latency.n) // results fetched in this run
	if done > 0 {
		gets := o.p.Stats.ResultGets.Load() + o.p.Stats.StatusGets.Load()
		s.GetsPerTask = float64(gets) / float64(done)
		s.TasksPerSec = float64(done) / s.Seconds
	}
	s.LatencyP50, s.LatencyP95 = o.latency.quantile(0.5), o.latency.quantile(0.95)
	if q30, ok := o.p.Est.Quantile(0.3); ok {
		q50, _ := o.p.Est.Quantile(0.5)
		q95, _ := o.p.Est.Quantile(0.95)
		o.cfg.Log.Debug("completion times learned", "q30", q30, "q50", q50, "q95", q95, "looks", o.p.Stats.ResultGets.Load()+o.p.Stats.StatusGets.Load())
	}
	s.WaitP50, s.WaitP95 = o.wait.quantile(0.5), o.wait.quantile(0.95)
	switch {
	case err != nil:
		s.ExitCode = 1
		s.Stopped = err.Error()
	case o.stopping != "done":
		s.ExitCode = 75
		s.Stopped = o.stopping
		err = ErrStopped
	case s.Failed+s.Rejected > 0:
		s.ExitCode = 3
	}
	if werr := results.WriteSummary(o.cfg.Out, s); werr != nil && err == nil {
		err = werr
		s.ExitCode = 1
	}
	return s, err
}

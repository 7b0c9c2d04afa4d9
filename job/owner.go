package job

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/decodo-batch/decodo-batch/batcher"
	"github.com/decodo-batch/decodo-batch/callback"
	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/records"
	"github.com/decodo-batch/decodo-batch/io/results"
	"github.com/decodo-batch/decodo-batch/poller"
)

// Error classes of failed rows decided here (the batcher and the poller
// decide the others).
const (
	classExpired = "expired" // the task's results window passed
	classBudget  = "budget"  // not submitted: the task budget (MaxTasks) was spent
)

// commitEvery bounds how long a written line waits before the checkpoint
// vouches for it (the group commit).
const commitEvery = 100 * time.Millisecond

// owner is the one goroutine that writes the output files and the journal.
// The producers (reader, batcher, poller) send it events over channels and
// it feeds the batcher over channels; nothing calls back up the chain.
type owner struct {
	cfg *Config
	j   *checkpoint.Journal
	st  *checkpoint.State // live: only the owner reads it after start
	w   *results.Writer
	api *counted
	b   *batcher.Batcher
	p   *poller.Poller
	dd  *dedupe // nil unless the run deduplicates
	// nil unless callbacks are on
	cb *callback.Receiver

	// from the producers
	reads   chan readEvent
	batches chan batcher.Event // served before the others
	polls   chan poller.Event
	// to the batcher
	rows  chan batcher.Item   // closed when the input ended and every row was handed over
	again chan []batcher.Item // rows to submit again
	hold  chan bool           // true: too many tasks in flight

	stopRead, stopBatch, stopPoll context.CancelFunc

	// fresh holds the rows finished since the last commit began, and
	// committing those of the commit in flight (see commitStart). A row is
	// done when the journal's state says so or it is in one of them.
	fresh, committing map[int64]checkpoint.Outcome
	inCommit          bool
	// polling holds the rows whose task the poller watches.
	polling map[int64]watched

	toSubmit   []batcher.Item // new rows on their way to the batcher
	resubmit   []batcher.Item // rows on their way to the batcher again
	atBatcher  int            // rows handed to the batcher and not yet back
	holdSent   bool           // the last value sent on hold
	inputEnded bool
	rowsClosed bool
	total      int64 // input rows, -1 until the input ended

	fetched int64 // results fetched in this session
	// recheck holds the rows whose task was found faulted or lost and whose
	// resubmission has not been accepted yet: if the session ends first,
	// the next one checks that task's status at its first look, instead
	// of looking afresh (a chain of short sessions would otherwise find it
	// faulted past each one's submission window, forever).
	recheck     map[int64]bool
	submitEnded bool // the runtime limit stopped submissions
	// unknown counts the rows whose submission's outcome was unknown (in
	// failed.jsonl at the start, and since): they may have been paid for,
	// so the task budget counts them.
	unknown int64

	// Tasks resumed from the checkpoint, and what they answered: if most
	// are unknown to the API, the checkpoint is another account's.
	resumedTotal, resumedKnown int
	resumed404                 []lostTask
	foreignDecided             bool
	prog                       counts // read by the progress display
	sum                        Summary
	latency                    samples
	wait                       samples
	stopping                   string
}

// counts are the figures the progress display shows, kept by the owner.
type counts struct {
	results, failed, rejected, total, inFlight atomic.Int64
}

func newOwner(cfg *Config, j *checkpoint.Journal, w *results.Writer, api *counted) *owner {
	o := &owner{
		cfg: cfg, j: j, st: j.State(), w: w, api: api,
		reads: make(chan readEvent, 256),
		// Unbuffered: a batch the API accepted waits in the batcher until
		// the owner takes it to the journal, so no more accepted batches
		// than the POSTs in flight can be unjournaled at a crash.
		batches:    make(chan batcher.Event),
		polls:      make(chan poller.Event, 1024),
		rows:       make(chan batcher.Item),
		again:      make(chan []batcher.Item),
		hold:       make(chan bool),
		fresh:      make(map[int64]checkpoint.Outcome),
		committing: make(map[int64]checkpoint.Outcome),
		recheck:    make(map[int64]bool),
		polling:    make(map[int64]watched),
		total:      -1,
	}
	if cfg.Dedupe {
		o.dd = newDedupe()
	}
	o.b = batcher.New(api, cfg.Batch)
	o.p = poller.New(api, cfg.Poll)
	o.prog.results.Store(o.st.Results)
	o.prog.failed.Store(o.st.Failed)
	o.prog.rejected.Store(o.st.Rejected)
	o.prog.total.Store(-1)
	return o
}

func (o *owner) done(row int64) bool {
	_, fresh := o.fresh[row]
	_, committing := o.committing[row]
	return fresh || committing || o.st.Done(row)
}

func (o *owner) doneCount() int64 {
	return o.st.DoneCount() + int64(len(o.fresh)) + int64(len(o.committing))
}

func (o *owner) mark(out checkpoint.Outcome, row int64) {
	o.fresh[row] = out
	switch out {
	case checkpoint.OutcomeResult:
		o.prog.results.Add(1)
	case checkpoint.OutcomeFailed:
		o.prog.failed.Add(1)
	default:
		o.prog.rejected.Add(1)
	}
}

// loop handles events until every row is done, the run is told to stop, or
// a producer fails; then it drains what the producers still send.
func (o *owner) loop(ctx context.Context, errs <-chan error, quiet <-chan struct{}) error {
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
	reads := o.reads
	for {
		if o.stopping == "" && fatal == nil {
			switch {
			case o.total >= 0 && o.doneCount() >= o.total:
				o.stop("")
			case o.cfg.NoWait && o.inputEnded && o.atBatcher == 0 && len(o.toSubmit) == 0 && len(o.resubmit) == 0:
				o.stop("everything is submitted (no-wait)")
			}
		}
		if o.inputEnded && len(o.toSubmit) == 0 && !o.rowsClosed {
			close(o.rows) // the batcher sends partial batches at once from now
			o.rowsClosed = true
		}
		o.prog.inFlight.Store(int64(len(o.polling)))

		// Submissions first: their task ids are paid for and must reach
		// the journal before anything else waits.
		select {
		case e := <-o.batches:
			fail(o.batched(e))
			continue
		default:
		}

		// What goes to the batcher waits in the owner, never the owner on
		// the batcher: a send is offered only while there is something to
		// send, and the input is read only while nothing waits.
		var rowsOut chan<- batcher.Item
		var next batcher.Item
		if len(o.toSubmit) > 0 {
			rowsOut, next = o.rows, o.toSubmit[0]
		}
		var againOut chan<- []batcher.Item
		if len(o.resubmit) > 0 {
			againOut = o.again
		}
		var holdOut chan<- bool
		holdWant := len(o.polling) >= o.cfg.MaxInFlight
		if holdWant != o.holdSent {
			holdOut = o.hold
		}
		readsIn := reads
		if len(o.toSubmit) > 0 {
			readsIn = nil
		}
		// Results wait in the poller while the output files' goroutines
		// are behind, so that the owner seldom waits on them: the rows go
		// on to the batcher at the API's pace meanwhile. (It still waits
		// for the content files at each commit with --content-dir.)
		pollsIn := o.polls
		caughtUp := o.w.Backlogged()
		if caughtUp != nil {
			pollsIn = nil
		}

		select {
		case e := <-o.batches:
			fail(o.batched(e))
		case e := <-pollsIn:
			fail(o.polled(e))
		case <-caughtUp:
		case c := <-o.w.Committed():
			fail(o.commitEnd(c))
		case e, ok := <-readsIn:
			if !ok {
				reads = nil
				continue
			}
			fail(o.readRow(e))
		case rowsOut <- next:
			o.toSubmit = o.toSubmit[1:]
			o.atBatcher++
		case againOut <- o.resubmit:
			o.atBatcher += len(o.resubmit)
			o.resubmit = nil
		case holdOut <- holdWant:
			o.holdSent = holdWant
		case <-tick.C:
			fail(o.commitStart())
		case err := <-errs:
			fail(err)
		case <-sigs:
			sigs = nil
			o.stop("interrupted")
			o.cfg.Log.Warn("stopping: finishing requests in flight; a second signal exits at once")
		case <-submitEnd:
			submitEnd = nil
			o.cfg.Log.Info("runtime limit near: no more submissions")
			o.submitEnded = true
			o.stopRead()
			o.stopBatch()
		case <-deadline:
			deadline = nil
			o.stop("runtime limit reached")
		case <-quiet:
			// Every producer has returned: take what they left, and end.
			for drained := false; !drained; {
				select {
				case e := <-o.batches:
					fail(o.batched(e))
				case e := <-o.polls:
					fail(o.polled(e))
				case err := <-errs:
					fail(err)
				default:
					drained = true
				}
			}
			fail(o.commit())
			fail(o.saveLooks())
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

// readRow decides what an input row needs: nothing (done in an earlier
// run), a reject line, the poller (its task is pending from an earlier
// run), or the batcher.
func (o *owner) readRow(e readEvent) error {
	switch {
	case e.end:
		o.total = e.rows
		o.inputEnded = true
		o.prog.total.Store(e.rows)
		if err := o.j.InputEnd(e.rows); err != nil {
			return err
		}
		return o.checkForeign() // every resumed task is known now
	case e.bad != nil:
		if o.done(e.bad.Row) {
			return nil
		}
		o.mark(checkpoint.OutcomeRejected, e.bad.Row)
		return o.w.Reject(&results.Reject{Row: e.bad.Row, Line: e.bad.Line, ID: e.bad.ID, Error: e.bad.Reason, Input: e.bad.Input})
	}
	rec := e.rec
	if o.done(rec.Row) {
		if _, ok := o.st.ResultTask(rec.Row); ok && o.dd != nil {
			o.dd.preferLeader(&rec, o.st) // its task can serve the rows after it
		}
		return nil
	}
	p, pending := o.st.Pending(rec.Row)
	if !pending {
		if o.dd != nil {
			if followed, err := o.dedupe(rec); followed || err != nil {
				return err
			}
		}
		if !o.canPay() {
			return o.overBudget(&rec, 0, "")
		}
		o.toSubmit = append(o.toSubmit, batcher.Item{Record: rec, Attempt: 1})
		return nil
	}
	id := strconv.FormatUint(p.TaskID, 10)
	if time.Since(p.SubmittedAt) > ResultsWindow-30*time.Minute {
		return o.lost(rec, p.Attempt, id, classExpired, "results window of 24 hours passed")
	}
	if o.dd != nil {
		o.dd.withTask(&rec) // later rows may follow it
	}
	o.resumedTotal++
	o.watch(rec, &poller.Task{ID: id, Row: rec.Row, Attempt: p.Attempt, Submitted: p.SubmittedAt, Resumed: true, Looks: p.Looks})
	return nil
}

// watch hands a task to the poller, keeping its row's record for the
// output line.
func (o *owner) watch(rec records.Record, t *poller.Task) {
	o.polling[rec.Row] = watched{rec: rec, task: t}
	o.p.Add(t)
	if o.cb != nil {
		// Its passthrough is not known in this session: the MAC alone
		// vouches for its callback. After Add: the poller must know the
		// task before a callback can nudge it.
		o.cb.Expect("", t.ID)
	}
}

// watched is a row whose task the poller watches.
type watched struct {
	rec   records.Record
	task  *poller.Task // its fields are the poller's until it returned
	dupOf int64        // the task is this earlier row's, which asked the same (dedupe)
}

// batched handles what the batcher tells of the rows it was given.
func (o *owner) batched(e batcher.Event) error {
	o.atBatcher -= len(e.Items)
	switch e.Kind {
	case batcher.Submitted:
		return o.submitted(e)
	case batcher.Rejected:
		for i := range e.Items {
			it := &e.Items[i]
			if o.done(it.Row) {
				continue
			}
			o.mark(checkpoint.OutcomeRejected, it.Row)
			// The row as a JSONL line, which reads back with its target
			// and parameters (the raw line is not kept this long).
			input := it.Record.JSONL()
			if err := o.w.Reject(&results.Reject{Row: it.Row, Line: it.Line, ID: it.ID, Error: "refused by the API: " + e.Reason, Input: input}); err != nil {
				return err
			}
			err := o.settle(it.Row, func(f *records.Record) error {
				o.mark(checkpoint.OutcomeRejected, f.Row)
				why := fmt.Sprintf("refused by the API (as row %d, which asks the same): %s", it.Row, e.Reason)
				return o.w.Reject(&results.Reject{Row: f.Row, Line: f.Line, ID: f.ID, Error: why, Input: f.JSONL()})
			})
			if err != nil {
				return err
			}
		}
	case batcher.Failed:
		if e.Class == batcher.ClassUnknown {
			o.unknown += int64(len(e.Items))
		}
		for i := range e.Items {
			if err := o.fail(&e.Items[i].Record, e.Items[i].Attempt, "", e.Class, e.Reason); err != nil {
				return err
			}
		}
	}
	return nil
}

// submitted records the new tasks in the journal, durably, before the
// poller may report on them: a crash after this pays for nothing twice.
func (o *owner) submitted(e batcher.Event) error {
	byAttempt := map[int][]checkpoint.Task{}
	tasks := make([]*poller.Task, len(e.Items))
	for i := range e.Items {
		it := &e.Items[i]
		n, err := taskID(e.IDs[i])
		if err != nil {
			return err
		}
		byAttempt[it.Attempt] = append(byAttempt[it.Attempt], checkpoint.Task{Row: it.Row, TaskID: n})
		tasks[i] = &poller.Task{ID: e.IDs[i], Row: it.Row, Attempt: it.Attempt, Submitted: e.At}
	}
	for a, ts := range byAttempt {
		if err := o.j.Submit(e.At, a, ts); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	if err := o.j.Sync(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	for i := range e.Items {
		o.polling[e.Items[i].Row] = watched{rec: e.Items[i].Record, task: tasks[i]}
		delete(o.recheck, e.Items[i].Row)
	}
	o.p.Add(tasks...)
	if o.cb != nil {
		// After Add: callbacks held until now nudge the tasks at once.
		o.cb.Expect(e.Passthrough, e.IDs...)
	}
	return nil
}

// polled handles what the poller tells of a task.
func (o *owner) polled(e poller.Event) error {
	t := e.Task
	if o.cb != nil && !e.Known {
		o.cb.Forget(t.ID)
	}
	w, ok := o.polling[t.Row]
	rec := w.rec
	if !ok {
		return nil // reported twice: the first report decided
	}
	if w.dupOf > 0 {
		if e.Known {
			return nil // pending yet: its results come later
		}
		delete(o.polling, t.Row)
		if e.Lost == "" {
			return o.result(&rec, t, e, w.dupOf)
		}
		// The earlier row's task is gone. If another row can lead (a
		// follower that found out first, or one with a task of its own),
		// follow it. Else this row gets its own task, and leads the rows
		// after it. (Through resubmit: the rows channel may be closed,
		// the input having ended.)
		if o.dd.successor(&rec, w.dupOf) {
			if took, err := o.dedupe(rec); took || err != nil {
				return err
			}
		}
		o.dd.leader(&rec, true)
		if !o.canPay() {
			return o.overBudget(&rec, 0, "")
		}
		o.resubmit = append(o.resubmit, batcher.Item{Record: rec, Attempt: 1})
		return nil
	}
	if t.Resumed {
		unknown := e.Lost != "" && e.Class == poller.ClassLost
		if e.Known {
			o.resumedKnown++
			return o.checkForeign()
		}
		delete(o.polling, t.Row)
		if !unknown {
			if !t.Known() { // counted when it answered as pending
				o.resumedKnown++
			}
			if err := o.checkForeign(); err != nil {
				return err
			}
		} else if o.foreignUndecided() {
			// Not resubmitted until enough of the checkpoint's tasks have
			// answered to tell a lost task from another account's.
			o.resumed404 = append(o.resumed404, lostTask{rec, t.Attempt, t.ID, e.Lost})
			return o.checkForeign()
		}
	} else {
		delete(o.polling, t.Row)
	}
	if e.Lost != "" {
		class := e.Class
		switch {
		case class == poller.ClassUnreadable:
			return o.fail(&rec, t.Attempt, t.ID, batcher.ClassUnknown, e.Lost)
		case class == poller.ClassLost && time.Since(t.Submitted) > ResultsWindow-30*time.Minute:
			class = classExpired
		}
		return o.lost(rec, t.Attempt, t.ID, class, e.Lost)
	}
	return o.result(&rec, t, e, 0)
}

// lostTask is a resumed task the API answered 404 for, held until the
// checkpoint is known to be this account's.
type lostTask struct {
	rec     records.Record
	attempt int
	id      string
	reason  string
}

// foreignUndecided reports whether too few resumed tasks have answered yet
// to tell whether the checkpoint's tasks are this account's: fewer than
// foreignSample, and not every one of them (the input may hold more).
func (o *owner) foreignUndecided() bool {
	if o.foreignDecided {
		return false
	}
	answered := o.resumedKnown + len(o.resumed404)
	return answered < foreignSample && !(o.inputEnded && answered >= o.resumedTotal)
}

// foreignSample is how many resumed tasks must answer before their 404s
// are judged; foreignMin is the fewest 404s that can make a checkpoint
// foreign (below it, they are lost tasks, submitted again).
const (
	foreignSample = 20
	foreignMin    = 5
)

// checkForeign decides, once enough resumed tasks have answered, whether
// the API knows this checkpoint's tasks. If most answered 404 the run
// stops before paying for them again (the account or endpoint changed);
// else the ones that did are lost tasks, submitted again.
func (o *owner) checkForeign() error {
	if o.foreignDecided || o.foreignUndecided() {
		return nil
	}
	o.foreignDecided = true
	if n := len(o.resumed404); n > o.resumedKnown && n >= foreignMin {
		return fmt.Errorf("%w: %d of the %d tasks of this checkpoint that answered are unknown to it (404)", ErrForeignCheckpoint, n, n+o.resumedKnown)
	}
	held := o.resumed404
	o.resumed404 = nil
	for _, l := range held {
		o.cfg.Log.Info("task lost by the API", "row", l.rec.Row, "task", l.id)
		if err := o.lost(l.rec, l.attempt, l.id, poller.ClassLost, l.reason); err != nil {
			return err
		}
	}
	return nil
}

func (o *owner) fail(rec *records.Record, attempt int, taskID, class, reason string) error {
	if o.done(rec.Row) {
		return nil
	}
	o.mark(checkpoint.OutcomeFailed, rec.Row)
	f := results.Failure{Row: rowOf(rec), TaskID: taskID, Class: class, Error: reason, Attempts: attempt}
	if err := o.w.Failed(&f); err != nil {
		return err
	}
	return o.settle(rec.Row, func(d *records.Record) error {
		o.mark(checkpoint.OutcomeFailed, d.Row)
		f.Row = duplicateRow(d, rec.Row)
		return o.w.Failed(&f)
	})
}

// lost handles a task that faulted, expired or could not be read: submit
// the row again while attempts remain, else it failed.
func (o *owner) lost(rec records.Record, attempt int, id, class, reason string) error {
	if o.done(rec.Row) {
		return nil
	}
	if o.stopping != "" || o.submitEnded {
		// Still pending in the journal: the next run tries again.
		o.recheck[rec.Row] = true
		return nil
	}
	if attempt <= o.cfg.Retries {
		if !o.canPay() {
			return o.overBudget(&rec, attempt, id)
		}
		o.recheck[rec.Row] = true // until the API accepts it again
		o.sum.Resubmitted++
		o.cfg.Log.Debug("resubmitting", "row", rec.Row, "task", id, "reason", reason, "attempt", attempt+1)
		o.resubmit = append(o.resubmit, batcher.Item{Record: rec, Attempt: attempt + 1})
		return nil
	}
	return o.fail(&rec, attempt, id, class, fmt.Sprintf("%s (after %d attempts)", reason, attempt))
}

// canPay reports whether one more task fits in the task budget: the tasks
// the journal knows were paid for, those whose submission's outcome is
// unknown, and the rows on their way to the API all count.
func (o *owner) canPay() bool {
	if o.cfg.MaxTasks <= 0 {
		return true
	}
	committed := o.st.Submitted + o.unknown + int64(o.atBatcher+len(o.toSubmit)+len(o.resubmit))
	return committed < o.cfg.MaxTasks
}

// overBudget fails a row that the task budget leaves no task for.
func (o *owner) overBudget(rec *records.Record, attempt int, id string) error {
	if o.sum.OverBudget == 0 {
		o.cfg.Log.Warn("task budget spent: the rows left fail with class budget", "max_tasks", o.cfg.MaxTasks)
	}
	o.sum.OverBudget++
	return o.fail(rec, attempt, id, classBudget, fmt.Sprintf("not submitted: the budget of %d tasks is spent", o.cfg.MaxTasks))
}

// result writes the results of task t for rec's row, and for the rows that
// follow it; dupOf is the earlier row whose task t is, if it is not rec's.
func (o *owner) result(rec *records.Record, t *poller.Task, e poller.Event, dupOf int64) error {
	if o.done(rec.Row) {
		return nil
	}
	r := results.Result{Row: rowOf(rec), TaskID: t.ID, Attempts: t.Attempt, FetchedAt: e.At}
	if dupOf > 0 {
		r.Row.DuplicateOf = dupOf
	}
	r.Pages = make([]results.Page, len(e.Results))
	for i := range e.Results {
		p := &e.Results[i]
		r.Pages[i] = results.Page{StatusCode: p.StatusCode, Headers: p.Headers, Cookies: p.Cookies, Content: p.Content}
	}
	o.mark(checkpoint.OutcomeResult, rec.Row)
	o.fetched++
	if !t.Resumed { // its age is the time the tool was away
		now := time.Now()
		o.latency.add(now.Sub(t.Submitted))
		o.wait.add(now.Sub(e.At) + t.Waited())
	}
	if err := o.w.Result(&r); err != nil {
		return err
	}
	if o.dd == nil || dupOf > 0 {
		return nil
	}
	if id, err := taskID(t.ID); err == nil {
		o.dd.fresh[rec.Row] = id
	}
	return o.settle(rec.Row, func(f *records.Record) error {
		o.mark(checkpoint.OutcomeResult, f.Row)
		r.Row = duplicateRow(f, rec.Row)
		return o.w.Result(&r)
	})
}

// commit makes the lines written since the last commit durable, then has
// the journal vouch for them: outputs first, journal second.
func (o *owner) commit() error {
	if o.inCommit {
		if err := o.commitEnd(<-o.w.Committed()); err != nil {
			return err
		}
	}
	if err := o.commitStart(); err != nil || !o.inCommit {
		return err
	}
	return o.commitEnd(<-o.w.Committed())
}

// commitStart begins the group commit of the rows finished since the last
// one, if none is in flight: the output files are synced by their
// goroutines while the owner goes on, and commitEnd has the journal vouch
// for the rows once they are durable. The rows written meanwhile are past
// the sizes this commit vouches for: a crash before the next commit cuts
// them off.
func (o *owner) commitStart() error {
	if o.inCommit || len(o.fresh) == 0 {
		return nil
	}
	if err := o.w.CommitStart(); err != nil {
		return err
	}
	o.fresh, o.committing = o.committing, o.fresh
	if o.dd != nil {
		o.dd.fresh, o.dd.committing = o.dd.committing, o.dd.fresh
	}
	o.inCommit = true
	return nil
}

// commitEnd records in the journal, and syncs, the rows of the commit that
// just ended.
func (o *owner) commitEnd(c results.Commit) error {
	o.inCommit = false
	off, err := o.w.CommitEnd(c)
	if err != nil {
		return err
	}
	var by [3][]int64
	for row, out := range o.committing {
		i := int(out - checkpoint.OutcomeResult)
		by[i] = append(by[i], row)
	}
	now := time.Now()
	for i, rows := range by {
		if len(rows) == 0 {
			continue
		}
		if err := o.j.Finish(now, checkpoint.OutcomeResult+checkpoint.Outcome(i), rows, off); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	clear(o.committing)
	if o.dd != nil {
		if err := o.dd.journal(o.j); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	if err := o.j.Sync(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if o.cfg.forceCompact || o.j.ShouldCompact() {
		if err := o.j.Compact(); err != nil {
			return fmt.Errorf("checkpoint: compact: %w", err)
		}
	}
	return nil
}

// saveLooks records how often each task still pending was looked at, so
// that the next session goes on from there: a chain of short sessions
// checks the status of a long-pending task as one long run would. Called
// once the poller has returned.
func (o *owner) saveLooks() error {
	rs := make([]checkpoint.RowLooks, 0, len(o.polling)+len(o.recheck))
	for row, w := range o.polling {
		if w.task.Looks > 0 {
			rs = append(rs, checkpoint.RowLooks{Row: row, Looks: w.task.Looks})
		}
	}
	for row := range o.recheck {
		if !o.done(row) {
			rs = append(rs, checkpoint.RowLooks{Row: row, Looks: 2}) // the next look, the third, checks the status
		}
	}
	if err := o.j.Looks(rs); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := o.j.Sync(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// finish writes the summary and picks the error that tells how the run
// ended.
func (o *owner) finish(err error) (*Summary, error) {
	s := &o.sum
	st := o.st
	s.Rows = st.Rows
	s.Results, s.Failed, s.Rejected = st.Results, st.Failed, st.Rejected
	s.Pending = int64(st.PendingCount())
	s.Batches = o.b.Stats.Batches.Load()
	s.Singles = o.b.Stats.Singles.Load()
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
	s.fetched, s.gets = o.fetched, o.p.Stats.ResultGets.Load()+o.p.Stats.StatusGets.Load()
	if o.fetched > 0 {
		gets := o.p.Stats.ResultGets.Load() + o.p.Stats.StatusGets.Load()
		s.GetsPerTask = float64(gets) / float64(o.fetched)
		s.TasksPerSec = float64(o.fetched) / s.Seconds
	}
	s.LatencyP50, s.LatencyP95 = o.latency.quantile(0.5), o.latency.quantile(0.95)
	if q30, ok := o.p.Est.Quantile(0.3); ok {
		q50, _ := o.p.Est.Quantile(0.5)
		q95, _ := o.p.Est.Quantile(0.95)
		o.cfg.Log.Debug("completion times learned", "q30", q30, "q50", q50, "q95", q95, "looks", o.p.Stats.ResultGets.Load()+o.p.Stats.StatusGets.Load())
	}
	s.WaitP50, s.WaitP95 = o.wait.quantile(0.5), o.wait.quantile(0.95)
	if o.cb != nil {
		c := o.cb.Counts()
		s.Callbacks = &c
	}
	switch {
	case errors.Is(err, decodo.ErrUnavailable):
		if st.Rows >= 0 {
			err = fmt.Errorf("%w; %d of %d rows left", err, st.Rows-st.DoneCount(), st.Rows)
		} else {
			err = fmt.Errorf("%w; %d rows done, the rest of the input is left", err, st.DoneCount())
		}
		s.Outcome = "unavailable"
		s.Stopped = err.Error()
	case err != nil:
		s.Outcome = "error"
		s.Stopped = err.Error()
	case o.stopping != "done":
		s.Outcome = "stopped"
		s.Stopped = o.stopping
		err = ErrStopped
		if st.DoneCount() == s.Skipped && s.Pending > 0 {
			o.cfg.Log.Warn("this session completed no rows", "pending", s.Pending, "stopped", o.stopping)
		}
	case s.Failed+s.Rejected > 0:
		s.Outcome = "partial"
		err = ErrPartial
	default:
		s.Outcome = "done"
	}
	addSessions(s, st) // the whole job: earlier sessions, and totals
	if werr := results.WriteSummary(o.cfg.Out, s); werr != nil && (err == nil || errors.Is(err, ErrPartial)) {
		s.Outcome = "error"
		err = werr
	}
	return s, err
}

// Package batcher groups rows into batches of one target and one parameter
// set, and submits them to the API no closer together than the batch
// interval, under one rate.Limiter.
//
// A 429 waits and retries the same batch, and slows the limiter down for a
// while. 502, 503, 504 and network errors before the request was written
// retry with backoff for as long as the run's outage budget lasts; then the
// run ends with the rows not submitted. A batch the API refuses as a whole (400/422) is split until the
// refused items are found: they are rejected, the others go through. A
// refused token (401/403) ends the run.
package batcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/jsonstr"
)

// Submitter queues tasks: a batch, or one task. [*decodo.Client] satisfies
// it.
type Submitter interface {
	SubmitBatch(ctx context.Context, req decodo.BatchRequest) (*decodo.BatchResponse, error)
	Submit(ctx context.Context, params json.RawMessage) (*decodo.Task, error)
}

// Prober is what a [Submitter] may also do: read a task, which costs
// nothing. After a submission whose outcome was unknown (a 500, a broken
// connection), the batcher reads one to learn whether the API answers
// again before it risks another batch.
type Prober interface {
	Task(ctx context.Context, id string) (*decodo.Task, error)
}

// EventKind says what became of the items of an [Event].
type EventKind uint8

// The kinds of [Event].
const (
	Submitted EventKind = iota + 1 // the API queued Items[i] as task IDs[i] at At
	Rejected                       // the API refused the items for Reason; not tried again
	Failed                         // the items could not be submitted (5xx, network, an unreadable answer)
)

// Event is what the batcher tells its owner about some of its items. Each
// item it was given ends in at most one event: none when the run ends
// first (its items were never submitted).
type Event struct {
	Kind   EventKind
	Items  []Item
	IDs    []string  // Submitted: the task id of each item
	At     time.Time // Submitted: when the API answered
	Reason string    // Rejected, Failed
	Class  string    // Failed: the error class, [ClassUnknown]

	// Passthrough: Submitted with callbacks on: the passthrough the
	// submission carried, which the API echoes in each task's callback.
	Passthrough string
}

// ClassUnknown is the error class of items the API may have queued though
// its answer was lost: they are not sent again, which could pay twice.
const ClassUnknown = "unknown"

// ErrUnavailable is [decodo.ErrUnavailable]: [Batcher.Run] returns it
// (a [*decodo.UnavailableError]) when a submission could not be made for
// the whole outage budget, for reasons that show the API did not take it
// (502, 503, 504, a connection refused): its items stay unsubmitted, for
// the next run.
var ErrUnavailable = decodo.ErrUnavailable

// ErrRefused is returned by [Batcher.Run] when the API answered a
// submission with a 4xx that is not about its content (404, 405...): a
// wrong endpoint, or a proxy in the way. Nothing was queued.
var ErrRefused = errors.New("the API refused the submission")

// Input is what the owner feeds a batcher with.
type Input struct {
	Rows  <-chan Item   // new rows; closed when the input ended
	Again <-chan []Item // rows to submit again (faulted or expired tasks)
	// Hold carries the owner's view of the tasks in flight: after a true,
	// no batch goes out until a false (results come back slower than
	// batches go out, and memory grows with the tasks in flight). May be nil.
	Hold <-chan bool
}

// Config tunes a [Batcher]. Zero fields take the defaults in brackets.
type Config struct {
	Size     int           // items per batch [3000]
	Interval time.Duration // least time between two submissions [1s]
	MaxOpen  int           // open groups at most [64]
	MaxItems int           // items waiting in groups at most [4×Size]
	MaxAge   time.Duration // a partly filled group waits at most this long [30s]
	// FillWait: when a slot is free and no batch is full, the oldest group
	// goes out partly filled once it has waited this long for more rows
	// (at once after the input ended) [min(Interval, 200ms)].
	FillWait time.Duration
	InFlight int // batch requests in flight at once [4]
	// TaskRate: single tasks (rows whose input cannot go in a batch:
	// prompt, product_id, none) submitted per second [10].
	TaskRate float64
	// Outage is shared with the poller: submissions retry while the API
	// is unreachable, until it has failed every request for its budget
	// [a new decodo.Outage of the default budget].
	Outage  *decodo.Outage
	Backoff decodo.Backoff
	Log     *slog.Logger
	// CallbackURL, when set, goes in every submission as callback_url,
	// with a passthrough from Passthrough (one per submission: a batch
	// shares one parameter set); [Event.Passthrough] tells which.
	CallbackURL string
	Passthrough func() string
}

// Stats counts what the batcher did.
type Stats struct {
	Batches     atomic.Int64 // accepted submissions
	Retried     atomic.Int64 // POSTs sent again after 429, 5xx or a network error
	RateLimited atomic.Int64 // 429 answers
	Splits      atomic.Int64 // refused batches split
	Singles     atomic.Int64 // single tasks accepted
	First, Last atomic.Int64 // unix nanos of the first and last accepted submission
}

// Batcher groups and submits items. Create it with [New] and start it with
// [Batcher.Run].
type Batcher struct {
	api   Submitter
	out   chan<- Event // set by Run
	cfg   Config
	lim   *rate.Limiter
	Stats Stats

	gate     sync.Mutex // serialises pacing of sends
	lastSent time.Time

	tasks *rate.Limiter // single tasks
	slowT atomic.Int32  // accepted tasks to go before tasks is back to TaskRate

	mu     sync.Mutex
	holdCh chan struct{} // while the owner holds submissions back: closed on release
	slow   atomic.Int32  // successes to go before the limiter is back to base
	margin time.Duration // over the interval; doubles with each 429 (under mu)

	// suspect: a submission's outcome was unknown; the next waits until
	// the API answers again ([Batcher.recovered]).
	suspect    atomic.Bool
	unknownRow atomic.Int32           // submissions in a row of unknown outcome
	probing    sync.Mutex             // held by the goroutine that probes
	probeID    atomic.Pointer[string] // a task id the API gave, to probe with
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Size <= 0 || c.Size > decodo.MaxBatchItems {
		c.Size = decodo.MaxBatchItems
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.MaxOpen <= 0 {
		c.MaxOpen = 64
	}
	if c.MaxItems < c.Size {
		c.MaxItems = 4 * c.Size
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 30 * time.Second
	}
	if c.InFlight <= 0 {
		c.InFlight = 4
	}
	if c.TaskRate <= 0 {
		c.TaskRate = 10
	}
	if c.FillWait <= 0 {
		c.FillWait = min(c.Interval, 200*time.Millisecond)
	}
	if c.Outage == nil {
		c.Outage = new(decodo.Outage)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// New returns a batcher that submits to api.
func New(api Submitter, cfg Config) *Batcher {
	cfg = cfg.withDefaults()
	// A small margin over the interval absorbs jitter between our send and
	// the API's arrival time, so pacing never earns a 429.
	margin := min(max(cfg.Interval/40, 4*time.Millisecond), 25*time.Millisecond)
	return &Batcher{
		api: api, cfg: cfg,
		lim:    rate.NewLimiter(rate.Every(cfg.Interval+margin), 1),
		tasks:  rate.NewLimiter(rate.Limit(cfg.TaskRate), 1),
		margin: margin,
	}
}

// Run groups the items of in.Rows and in.Again and submits them until ctx is
// done, telling out what became of each. After in.Rows is closed, partial
// groups go out without waiting; Run keeps serving in.Again until ctx is
// done. When ctx is done, requests in flight are let finish (their tasks are
// paid for, and their events are sent: the owner must keep reading out
// until Run returns) and Run returns nil; it returns [decodo.ErrAuth] when
// the token is refused, which the caller treats as fatal. Run may be called
// once.
func (b *Batcher) Run(ctx context.Context, in Input, out chan<- Event) error {
	b.out = out
	want, ready := make(chan struct{}), make(chan *Batch, 1)
	singles := make(chan Item)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { b.group(gctx, in.Rows, in.Again, want, ready, singles); return nil })
	g.Go(func() error { return b.submit(gctx, want, ready) })
	g.Go(func() error { return b.submitSingles(gctx, singles) })
	g.Go(func() error {
		for {
			select {
			case held := <-in.Hold:
				b.setHold(held)
			case <-gctx.Done():
				return nil
			}
		}
	})
	return g.Wait()
}

// setHold records the owner's hold on submissions.
func (b *Batcher) setHold(held bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case held && b.holdCh == nil:
		b.holdCh = make(chan struct{})
	case !held && b.holdCh != nil:
		close(b.holdCh)
		b.holdCh = nil
	}
}

// waitHold waits while the owner holds submissions back.
func (b *Batcher) waitHold(ctx context.Context) error {
	for {
		b.mu.Lock()
		h := b.holdCh
		b.mu.Unlock()
		if h == nil {
			return ctx.Err()
		}
		select {
		case <-h:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// report sends an event to the owner. It does not give up when ctx is
// done: a submission's task ids are paid for and must reach the journal.
func (b *Batcher) report(e Event) { b.out <- e }

// group owns the grouper. When the submitter asks (want), it hands over
// the next batch: full batches first in the order they filled, else the
// oldest partial group once it has had a moment to fill (at once after the
// input ended). Groups keep filling until a slot actually wants them.
func (b *Batcher) group(ctx context.Context, in <-chan Item, again <-chan []Item, want <-chan struct{}, ready chan<- *Batch, singles chan<- Item) {
	gr := NewGrouper(b.cfg)
	var queue []*Batch // full or evicted batches, in order
	var single []Item  // rows that go one by one, in order
	tick := time.NewTicker(min(b.cfg.MaxAge/4, 50*time.Millisecond))
	defer tick.Stop()
	ended, asked := false, false
	add := func(it Item) {
		if !Batchable(&it.Record) {
			single = append(single, it)
			return
		}
		full, evicted := gr.Add(it, time.Now())
		if evicted != nil {
			queue = append(queue, evicted)
		}
		if full != nil {
			queue = append(queue, full)
		}
	}
	for {
		if asked {
			var next *Batch
			if len(queue) > 0 {
				next, queue = queue[0], queue[1:]
			} else if gr.Open() > 0 {
				notBefore := time.Now()
				if !ended {
					notBefore = notBefore.Add(-b.cfg.FillWait)
				}
				next = gr.Oldest(notBefore)
			}
			if next != nil {
				ready <- next // buffered; the submitter is waiting for it
				asked = false
			}
		}
		inCh := in
		if len(queue) >= 2 || len(single) >= maxSingleQueue {
			inCh = nil // backpressure: the reader waits while two batches are ready
		}
		var singleOut chan<- Item
		var nextSingle Item
		if len(single) > 0 {
			singleOut, nextSingle = singles, single[0]
		}
		select {
		case <-ctx.Done():
			return
		case singleOut <- nextSingle:
			single = single[1:]
		case it, ok := <-inCh:
			if !ok {
				ended, in = true, nil
				continue
			}
			add(it)
		case <-want:
			asked = true
		case items := <-again:
			for _, it := range items {
				add(it)
			}
		case <-tick.C:
			for {
				ob := gr.Oldest(time.Now().Add(-b.cfg.MaxAge))
				if ob == nil {
					break
				}
				queue = append(queue, ob)
			}
		}
	}
}

// submit asks for a batch when its slot comes and posts it, several in
// flight at once.
func (b *Batcher) submit(ctx context.Context, want chan<- struct{}, ready <-chan *Batch) error {
	pg, lctx := b.newPool(ctx)
	defer pg.stop()
	for lctx.Err() == nil {
		if b.waitHold(lctx) != nil {
			break
		}
		// Ask only when the limiter would let a batch go now, so a partial
		// batch is never taken early while a full one is filling.
		if err := b.waitSlot(lctx); err != nil {
			break
		}
		var bt *Batch
		select {
		case <-lctx.Done():
		case want <- struct{}{}:
			select {
			case <-lctx.Done():
			case bt = <-ready:
			}
		}
		if bt == nil {
			break
		}
		pg.do(func(ctx context.Context) error { return b.post(ctx, bt) })
	}
	return pg.wait()
}

// pool runs submissions, at most InFlight at once. Requests in flight
// outlive the ctx the pool was made from: their answers carry the task ids
// we pay for. Only a refused token cancels them; any error that ends the
// run stops the submitting loop (its ctx), so no new request starts.
type pool struct {
	g      errgroup.Group
	ctx    context.Context // of the requests
	cancel context.CancelCauseFunc
	stop   context.CancelFunc // the loop's
}

// newPool returns a pool, and the ctx the submitting loop runs under.
func (b *Batcher) newPool(ctx context.Context) (*pool, context.Context) {
	p := &pool{}
	p.ctx, p.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	lctx, stop := context.WithCancel(ctx)
	p.stop = stop
	p.g.SetLimit(b.cfg.InFlight)
	return p, lctx
}

// do runs one submission when a place is free.
func (p *pool) do(submit func(ctx context.Context) error) {
	p.g.Go(func() error {
		err := submit(p.ctx)
		switch {
		case errors.Is(err, decodo.ErrAuth):
			p.cancel(err) // every request in flight will be refused too
			p.stop()
		case errors.Is(err, ErrUnavailable), errors.Is(err, ErrRefused):
			p.stop() // no more submissions; those in flight may still be taken
		}
		return err
	})
}

// wait waits for the submissions in flight and returns the first error
// that ends the run.
func (p *pool) wait() error {
	err := p.g.Wait()
	defer p.cancel(nil)
	if cause := context.Cause(p.ctx); cause != nil {
		return cause
	}
	return err
}

// pace waits for the limiter's slot for one send and returns holding the
// gate; release lets the next send pace itself from now. The limiter counts
// from when it grants a slot, but what the API sees is when a request
// arrives: a send delayed after its grant (a new connection to dial, a busy
// machine) must not bring the next one closer than the interval. So the
// gate is held until the request's headers are written, and the next send
// keeps the interval from then.
func (b *Batcher) pace(ctx context.Context) (release func(), err error) {
	b.gate.Lock()
	if err := b.lim.Wait(ctx); err != nil {
		b.gate.Unlock()
		return nil, err
	}
	if err := decodo.Sleep(ctx, time.Until(b.lastSent.Add(b.cfg.Interval))); err != nil {
		b.gate.Unlock()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			b.lastSent = time.Now()
			b.gate.Unlock()
		})
	}, nil
}

// waitSlot sleeps until the limiter has a token, without taking it.
func (b *Batcher) waitSlot(ctx context.Context) error {
	for {
		tokens := b.lim.Tokens()
		if tokens >= 1 {
			return ctx.Err()
		}
		d := time.Duration((1 - tokens) / float64(b.lim.Limit()) * float64(time.Second))
		if err := decodo.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// post submits one batch, splitting it when the API refuses it as a whole.
func (b *Batcher) post(ctx context.Context, bt *Batch) error {
	// Breadth-first: both halves of a refused batch are tried before their
	// own halves, so a refusal of everything (a bad target or parameter) is
	// recognised after a few requests instead of one per item.
	type node struct {
		items []Item
		depth int
	}
	queue := []node{{bt.Items, 0}}
	accepted := 0
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		err := b.send(ctx, bt.Key, n.items)
		var apiErr *decodo.Error
		if err == nil {
			accepted++
			continue
		}
		if !errors.As(err, &apiErr) || !refused(apiErr) {
			return err // auth or ctx; failures were reported by send
		}
		reason := apiErr.Error()
		if named, rest := splitNamed(n.items, apiErr); len(named) > 0 {
			b.report(Event{Kind: Rejected, Items: named, Reason: reason})
			if len(rest) > 0 {
				queue = append(queue, node{rest, n.depth})
			}
			continue
		}
		if len(n.items) == 1 || (n.depth >= 3 && accepted == 0) {
			b.report(Event{Kind: Rejected, Items: n.items, Reason: reason})
			continue
		}
		b.Stats.Splits.Add(1)
		h := len(n.items) / 2
		queue = append(queue, node{n.items[:h], n.depth + 1}, node{n.items[h:], n.depth + 1})
	}
	return nil
}

// refused reports whether the API refused the batch's content (400, 422,
// or 413 for a body too large): splitting it may find the items to blame.
func refused(e *decodo.Error) bool { return e.Validation() || e.StatusCode == 413 }

// splitNamed separates the items the API's error names from the others.
func splitNamed(items []Item, e *decodo.Error) (named, rest []Item) {
	text := e.Message + "\n" + strings.Join(e.Errors, "\n")
	for _, it := range items {
		s := it.URL
		if s == "" {
			s = it.Query
		}
		if names(text, s, it.URL != "") {
			named = append(named, it)
		} else {
			rest = append(rest, it)
		}
	}
	if len(rest) == 0 && len(items) > 1 {
		return nil, items // the message names everything: it names nothing
	}
	return named, rest
}

// names reports whether text names the item s whole, not as the start of a
// longer one (https://a.com/7 is not named by an error about
// https://a.com/70): after s comes the end, a quote or a line break, or for
// a URL also a space or punctuation that cannot continue it.
func names(text, s string, url bool) bool {
	ends := "\"'\n"
	if url {
		ends += " \t,;)]}>"
	}
	for i := 0; ; {
		j := strings.Index(text[i:], s)
		if j < 0 {
			return false
		}
		end := i + j + len(s)
		if end == len(text) || strings.IndexByte(ends, text[end]) >= 0 {
			return true
		}
		i += j + 1
	}
}

// send posts items as one batch until it is accepted, refused, or out of
// attempts. It reports accepted and failed items to the sink itself, and
// returns the *decodo.Error of a refusal, decodo.ErrAuth, or ctx's error.
func (b *Batcher) send(ctx context.Context, key Key, items []Item) error {
	req := decodo.BatchRequest{Target: key.Target, Params: json.RawMessage(key.Params)}
	var pt string
	req.Params, pt = b.withCallback(req.Params)
	list := make([]string, len(items))
	for i := range items {
		list[i] = items[i].URL
		if key.Query {
			list[i] = items[i].Query
		}
	}
	if key.Query {
		req.Queries = list
	} else {
		req.URLs = list
	}
	var resp *decodo.BatchResponse
	err := b.attempts(ctx, "batch", items, b.pace, b.slowDown, func(ctx context.Context) (err error) {
		resp, err = b.api.SubmitBatch(ctx, req)
		return err
	})
	if err == nil && resp != nil { // nil when the outcome is unknown: reported
		b.accepted(items, list, resp, pt)
	}
	return err
}

// withCallback returns the JSON object params (may be empty) with
// callback_url and a new passthrough added when callbacks are on, and the
// passthrough.
func (b *Batcher) withCallback(params json.RawMessage) (json.RawMessage, string) {
	if b.cfg.CallbackURL == "" {
		return params, ""
	}
	var pt string
	if b.cfg.Passthrough != nil {
		pt = b.cfg.Passthrough()
	}
	if bytes.Contains(params, []byte(`"callback_url"`)) || bytes.Contains(params, []byte(`"passt`)) {
		// A row's own callback_url or passthrough: the receiver's win
		// (it could verify nothing else).
		var m map[string]json.RawMessage
		if json.Unmarshal(params, &m) == nil {
			delete(m, "callback_url")
			delete(m, "passthrough")
			delete(m, "passtrough")
			params, _ = json.Marshal(m)
		}
	}
	out := make([]byte, 0, len(params)+len(b.cfg.CallbackURL)+len(pt)+40)
	out = append(out, '{')
	if p := bytes.TrimSpace(params); len(p) > 2 && p[0] == '{' {
		if in := bytes.TrimSpace(p[1 : len(p)-1]); len(in) > 0 {
			out = append(out, in...)
			out = append(out, ',')
		}
	}
	out = append(out, `"callback_url":`...)
	out = jsonstr.Append(out, b.cfg.CallbackURL)
	if pt != "" {
		out = append(out, `,"passthrough":`...)
		out = jsonstr.Append(out, pt)
	}
	return append(out, '}'), pt
}

// attempts sends one submission (post) until the API accepts it, refuses
// it, or the attempts are spent. pace waits for its slot and returns a
// function to call once its headers are written. It follows the pay-once
// rules of [judge]: sent again only where the API surely did not take it.
// It returns nil when the submission was accepted; the [*decodo.Error] of
// a refused content, for the caller to deal with; nil too when the outcome
// is unknown, after reporting the items failed; or an error that ends the
// run ([decodo.ErrAuth], [ErrRefused], [ErrUnavailable], ctx's).
func (b *Batcher) attempts(ctx context.Context, what string, items []Item, pace func(context.Context) (func(), error), slow func(), post func(context.Context) error) error {
	failures := 0
	for sent := 0; ; sent++ {
		if sent > 0 {
			b.Stats.Retried.Add(1)
		}
		release, err := b.paceHealthy(ctx, pace)
		if err != nil {
			return err
		}
		var written atomic.Bool // the whole request reached the connection
		tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteHeaders: release,
			WroteRequest: func(i httptrace.WroteRequestInfo) { written.Store(i.Err == nil) },
		})
		err = post(tctx)
		release() // if the headers were never written (a fake, a dial error)
		if err == nil {
			b.cfg.Outage.Up()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch v, apiErr := judge(err, written.Load()); v {
		case verdictAuth:
			return fmt.Errorf("%w: %s", decodo.ErrAuth, apiErr.Message)
		case verdictWait:
			b.cfg.Outage.Up() // the API answered
			if err := b.rateLimited(ctx, slow, apiErr.RetryAfter); err != nil {
				return err
			}
			continue
		case verdictRefused:
			b.cfg.Outage.Up()
			return apiErr
		case verdictFatal:
			return fmt.Errorf("%w: %v", ErrRefused, err)
		case verdictUnknown:
			b.cfg.Log.Warn(what+" outcome unknown", "items", len(items), "row", items[0].Row, "err", err)
			b.report(Event{Kind: Failed, Class: ClassUnknown, Items: items, Reason: unknownReason(err)})
			var answerErr *decodo.AnswerError
			if errors.As(err, &answerErr) {
				return nil // the API answered 2xx: it is up, the answer was unreadable
			}
			// A 500 or a lost answer may be the first of a storm: no other
			// submission goes out until the API is seen to answer, and a
			// few in a row end the run, rows unsubmitted.
			if n := b.unknownRow.Add(1); n >= maxUnknownRow {
				return fmt.Errorf("%w: %d submissions in a row had an unknown outcome (a 500, or an answer lost); the last: %v", ErrUnavailable, n, err)
			}
			b.suspect.Store(true)
			if err := b.cfg.Outage.Down(err); err != nil {
				return fmt.Errorf("submit a %s: %w", what, err)
			}
			return nil
		}
		failures++
		if err := b.cfg.Outage.Down(err); err != nil {
			b.cfg.Log.Warn(what+" not submitted", "items", len(items), "attempts", failures, "err", err)
			return fmt.Errorf("submit a %s: %w", what, err)
		}
		if failures == 1 {
			b.cfg.Log.Warn("the API is not answering submissions; retrying", "err", err)
		}
		b.cfg.Log.Debug(what+" retry", "items", len(items), "err", err)
		if err := decodo.Sleep(ctx, b.cfg.Outage.Wait(b.cfg.Backoff.Delay(failures))); err != nil {
			return err
		}
	}
}

// maxUnknownRow is how many submissions in a row may end with an unknown
// outcome before the run stops: a storm on the submit endpoint alone,
// which reads (the probe) do not show.
const maxUnknownRow = 3

// paceHealthy waits for a submission's slot (pace) once the API is known
// to answer: a submission whose outcome was unknown makes the ones waiting
// for their slot wait for that too.
func (b *Batcher) paceHealthy(ctx context.Context, pace func(context.Context) (func(), error)) (func(), error) {
	for {
		if b.suspect.Load() {
			if err := b.recovered(ctx); err != nil {
				return nil, err
			}
		}
		release, err := pace(ctx)
		if err != nil || !b.suspect.Load() {
			return release, err
		}
		release() // a 500 came meanwhile: this slot goes unused
	}
}

// recovered waits, after a submission whose outcome was unknown, until
// the API answers again, so that a storm of 500s costs the batches in
// flight when it began, not every batch: a request of the run that
// succeeds meanwhile ends the wait, else a task read (free) probes the
// API, with backoff, within the outage budget. Any answer but a 5xx will
// do, a 404 for the probe's id included.
func (b *Batcher) recovered(ctx context.Context) error {
	b.probing.Lock() // one prober; the others find it done
	defer b.probing.Unlock()
	p, ok := b.api.(Prober)
	for n := 1; b.suspect.Load(); n++ {
		if !b.cfg.Outage.Failing() { // another request succeeded since
			b.suspect.Store(false)
			return nil
		}
		if !ok {
			b.suspect.Store(false)
			return nil
		}
		id := "0"
		if last := b.probeID.Load(); last != nil {
			id = *last
		}
		_, err := p.Task(ctx, id)
		var apiErr *decodo.Error
		if err == nil || errors.As(err, &apiErr) && apiErr.StatusCode < 500 {
			b.cfg.Outage.Up()
			b.suspect.Store(false)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := b.cfg.Outage.Down(err); err != nil {
			return fmt.Errorf("submit: %w", err)
		}
		if err := decodo.Sleep(ctx, b.cfg.Outage.Wait(b.cfg.Backoff.Delay(n))); err != nil {
			return err
		}
	}
	return nil
}

// verdict is what a failed submission means for its items.
type verdict uint8

const (
	verdictRetry   verdict = iota // the API surely did not take it: try again after a backoff
	verdictWait                   // 429: wait, then send the same again
	verdictRefused                // 400, 422, 413: the API refused the content
	verdictFatal                  // another 4xx (404, 405...): the endpoint refuses every request; the run ends
	verdictUnknown                // the API may have queued the tasks: never sent again
	verdictAuth                   // the token is refused: the run ends
)

// judge tells what a submission's error means. written says whether the
// whole request reached the connection. It returns the API's answer when
// there was one.
func judge(err error, written bool) (verdict, *decodo.Error) {
	var apiErr *decodo.Error
	isAPI := errors.As(err, &apiErr)
	var answerErr *decodo.AnswerError
	switch {
	case errors.As(err, &answerErr):
		return verdictUnknown, nil // queued, but which task is which row is unknown
	case isAPI && apiErr.Auth():
		return verdictAuth, apiErr
	case isAPI && apiErr.RateLimited():
		return verdictWait, apiErr
	case isAPI && refused(apiErr):
		return verdictRefused, apiErr
	case isAPI && apiErr.StatusCode == 408:
		return verdictRetry, apiErr // the API timed the request out before reading it
	case isAPI && apiErr.StatusCode < 500:
		return verdictFatal, apiErr
	case isAPI && surelyNotTaken(apiErr.StatusCode):
		return verdictRetry, apiErr
	case isAPI, written:
		// A 500, a timeout, a connection broken after the request was
		// written: the API may have queued the tasks.
		return verdictUnknown, apiErr
	}
	return verdictRetry, nil // a connection error before the request was written
}

func unknownReason(err error) string {
	return "the API may have queued these tasks, but its answer was lost; not sent again, which could pay twice: " + err.Error()
}

// rateLimited counts a 429, slows the pace down, and waits for its
// Retry-After (or a backoff step past the interval).
func (b *Batcher) rateLimited(ctx context.Context, slowDown func(), retryAfter time.Duration) error {
	b.Stats.RateLimited.Add(1)
	slowDown()
	wait := retryAfter
	if wait <= 0 {
		wait = b.cfg.Backoff.Delay(1) + b.cfg.Interval
	}
	b.cfg.Log.Debug("rate limited", "wait", wait)
	return decodo.Sleep(ctx, wait)
}

// surelyNotTaken reports whether an answer of status means the API did not
// queue the batch: 502, 503 and 504 come from the gateways in front of it.
func surelyNotTaken(status int) bool {
	return status == 502 || status == 503 || status == 504
}

// accepted matches the queued tasks to the items by their echoed url or
// query, then by position for any the API changed, and reports them.
func (b *Batcher) accepted(items []Item, list []string, resp *decodo.BatchResponse, pt string) {
	now := time.Now()
	b.Stats.Batches.Add(1)
	b.Stats.First.CompareAndSwap(0, now.UnixNano())
	b.Stats.Last.Store(now.UnixNano())
	b.recover()
	ids := make([]string, len(items))
	byItem := make(map[string][]int, len(items))
	for i, s := range list {
		byItem[s] = append(byItem[s], i)
	}
	var loose []string // tasks whose echo matched no item
	for _, t := range resp.Tasks {
		if idx := byItem[t.Item()]; len(idx) > 0 {
			ids[idx[0]] = string(t.ID)
			byItem[t.Item()] = idx[1:]
		} else {
			loose = append(loose, string(t.ID))
		}
	}
	var okItems []Item
	var okIDs []string
	var missing []Item
	for i, id := range ids {
		if id == "" && len(loose) > 0 {
			id, loose = loose[0], loose[1:]
		}
		if id == "" {
			missing = append(missing, items[i])
			continue
		}
		okItems = append(okItems, items[i])
		okIDs = append(okIDs, id)
	}
	if len(okItems) > 0 {
		b.probeID.Store(&okIDs[0])
		b.unknownRow.Store(0)
		b.report(Event{Kind: Submitted, Items: okItems, IDs: okIDs, At: now, Passthrough: pt})
	}
	if len(missing) > 0 {
		reason := "the API queued no task for this item"
		if len(resp.Errors) > 0 {
			var parts []string
			for _, e := range resp.Errors {
				parts = append(parts, string(e))
			}
			reason += ": " + strings.Join(parts, "; ")
		}
		b.report(Event{Kind: Rejected, Items: missing, Reason: reason})
	}
}

// slowDown lowers the submission rate after a 429 that pacing should have
// avoided; recover brings it back after a run of accepted batches, to a base
// whose margin has doubled (up to a quarter of the interval, or 25ms): the
// API's clock or the way to it jitters more than the margin allowed for.
func (b *Batcher) slowDown() {
	b.mu.Lock()
	b.margin = min(2*b.margin, max(b.cfg.Interval/4, 25*time.Millisecond))
	b.mu.Unlock()
	b.lim.SetLimit(b.lim.Limit() * 0.8)
	b.slow.Store(10)
}

func (b *Batcher) recover() {
	if b.slow.Load() > 0 && b.slow.Add(-1) == 0 {
		b.mu.Lock()
		base := rate.Every(b.cfg.Interval + b.margin)
		b.mu.Unlock()
		b.lim.SetLimit(base)
	}
}

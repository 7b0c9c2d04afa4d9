package batcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/jsonstr"
	"github.com/decodo-batch/decodo-batch/io/records"
)

// maxSingleQueue bounds the rows waiting to go one by one before the
// batcher stops taking rows.
const maxSingleQueue = 4096

// batchable reports whether a row's input can go in a batch: the batch
// endpoint takes url or query arrays only.
func batchable(r *records.Record) bool {
	in, _ := r.Input()
	return in.Batchable()
}

// submitSingles submits the rows that cannot be batched one per request
// (POST /v3/task), paced by their own limiter, several in flight at once.
// Like batches, requests in flight outlive a cancelled ctx.
func (b *Batcher) submitSingles(ctx context.Context, in <-chan Item) error {
	pctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	var pg errgroup.Group
	pg.SetLimit(b.cfg.InFlight)
	for lctx.Err() == nil {
		var it Item
		select {
		case it = <-in:
		case <-lctx.Done():
			continue
		}
		if b.waitHold(lctx) != nil || b.tasks.Wait(lctx) != nil {
			break // it was never sent: the next run reads it again
		}
		pg.Go(func() error {
			err := b.single(pctx, it)
			switch {
			case errors.Is(err, decodo.ErrAuth):
				cancel(err)
				stop()
			case errors.Is(err, ErrUnavailable), errors.Is(err, ErrRefused):
				stop()
			}
			return err
		})
	}
	err := pg.Wait()
	if cause := context.Cause(pctx); cause != nil {
		return cause
	}
	return err
}

// single submits one row as one task until it is accepted, refused, or out
// of attempts, with the rules of [Batcher.send]: sent again only where the
// API surely did not take it.
func (b *Batcher) single(ctx context.Context, it Item) error {
	body := taskBody(&it.Record)
	failures := 0
	for sent := 0; ; sent++ {
		if sent > 0 {
			b.Stats.Retried.Add(1)
			if err := b.tasks.Wait(ctx); err != nil {
				return err
			}
		}
		var written atomic.Bool
		tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) { written.Store(i.Err == nil) },
		})
		t, err := b.api.Submit(tctx, body)
		if err == nil {
			b.recoverTasks()
			b.Stats.Singles.Add(1)
			b.report(Event{Kind: Submitted, Items: []Item{it}, IDs: []string{string(t.ID)}, At: time.Now()})
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch v, apiErr := judge(err, written.Load()); v {
		case verdictAuth:
			return fmt.Errorf("%w: %s", decodo.ErrAuth, apiErr.Message)
		case verdictWait:
			if err := b.rateLimited(ctx, b.slowTasks, apiErr.RetryAfter); err != nil {
				return err
			}
			continue
		case verdictRefused:
			b.report(Event{Kind: Rejected, Items: []Item{it}, Reason: err.Error()})
			return nil
		case verdictFatal:
			return fmt.Errorf("%w: %v", ErrRefused, err)
		case verdictUnknown:
			b.cfg.Log.Warn("task outcome unknown", "row", it.Row, "err", err)
			b.report(Event{Kind: Failed, Class: ClassUnknown, Items: []Item{it}, Reason: unknownReason(err)})
			return nil
		}
		failures++
		if failures >= b.cfg.Attempts {
			return fmt.Errorf("%w: submit a task: %d attempts, the last: %v", ErrUnavailable, failures, err)
		}
		if err := decodo.Sleep(ctx, b.cfg.Backoff.Delay(failures)); err != nil {
			return err
		}
	}
}

// slowTasks lowers the single-task rate after a 429, by a fifth each time,
// down to one task every ten seconds; recoverTasks brings it back to
// TaskRate after a run of accepted tasks, as for batches.
func (b *Batcher) slowTasks() {
	b.tasks.SetLimit(max(b.tasks.Limit()*0.8, 0.1))
	b.slowT.Store(10)
}

func (b *Batcher) recoverTasks() {
	if b.slowT.Load() > 0 && b.slowT.Add(-1) == 0 {
		b.tasks.SetLimit(rate.Limit(b.cfg.TaskRate))
	}
}

// taskBody is the JSON object of one task: the row's parameters, its
// target and its input field.
func taskBody(r *records.Record) json.RawMessage {
	b := make([]byte, 0, 64+len(r.Params))
	b = append(b, '{')
	if p := r.Params; len(p) > 2 { // a canonical object: "{...}", "" when empty
		b = append(b, p[1:len(p)-1]...)
		b = append(b, ',')
	}
	b = append(b, `"target":`...)
	b = jsonstr.Append(b, r.Target)
	if in, v := r.Input(); in != decodo.InputNone {
		b = append(b, ',')
		b = jsonstr.Append(b, in.String())
		b = append(b, ':')
		b = jsonstr.Append(b, v)
	}
	return append(b, '}')
}

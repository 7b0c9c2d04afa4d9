package batcher

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"golang.org/x/time/rate"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/jsonstr"
	"github.com/decodo-batch/decodo-batch/io/records"
)

// maxSingleQueue bounds the rows waiting to go one by one before the
// batcher stops taking rows.
const maxSingleQueue = 4096

// Batchable reports whether a row's input can go in a batch: the batch
// endpoint takes url or query arrays only.
func Batchable(r *records.Record) bool {
	in, _ := r.Input()
	return in.Batchable()
}

// submitSingles submits the rows that cannot be batched one per request
// (POST /v3/task), paced by their own limiter, several in flight at once.
// Like batches, requests in flight outlive a cancelled ctx.
func (b *Batcher) submitSingles(ctx context.Context, in <-chan Item) error {
	pg, lctx := b.newPool(ctx)
	defer pg.stop()
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
		pg.do(func(ctx context.Context) error { return b.single(ctx, it) })
	}
	return pg.wait()
}

// single submits one row as one task, with the rules of [Batcher.attempts].
// The caller has waited for its first slot.
func (b *Batcher) single(ctx context.Context, it Item) error {
	body, pt := b.withCallback(taskBody(&it.Record))
	first := true
	pace := func(ctx context.Context) (func(), error) {
		if first {
			first = false
			return func() {}, nil
		}
		return func() {}, b.tasks.Wait(ctx)
	}
	var t *decodo.Task
	err := b.attempts(ctx, "task", []Item{it}, pace, b.slowTasks, func(ctx context.Context) (err error) {
		t, err = b.api.Submit(ctx, body)
		return err
	})
	var refused *decodo.Error
	switch {
	case errors.As(err, &refused):
		b.report(Event{Kind: Rejected, Items: []Item{it}, Reason: err.Error()})
		return nil
	case err != nil:
		return err
	case t != nil: // nil when the outcome is unknown: reported
		b.recoverTasks()
		b.unknownRow.Store(0)
		b.Stats.Singles.Add(1)
		b.report(Event{Kind: Submitted, Items: []Item{it}, IDs: []string{string(t.ID)}, At: time.Now(), Passthrough: pt})
	}
	return nil
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

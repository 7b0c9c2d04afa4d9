package batcher

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/io/records"
)

// TestCallbackInEveryBody proves that with callbacks on every submission,
// batch or single task, carries callback_url and a passthrough of its own
// beside the row's parameters, and that the Submitted event names the
// passthrough its tasks went out with.
func TestCallbackInEveryBody(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{}
	var n int
	var nmu sync.Mutex
	cfg := Config{Size: 10, Interval: time.Millisecond, FillWait: time.Minute,
		CallbackURL: "https://cb.example.com/hook?a=1&b=2",
		Passthrough: func() string { nmu.Lock(); defer nmu.Unlock(); n++; return fmt.Sprintf("pt-%d", n) }}
	items := urlItems(25, nil)
	for i := range items {
		items[i].Params = records.Params(`{"geo":"France"}`)
	}
	for i := range 3 {
		items = append(items, Item{Record: records.Record{Row: int64(100 + i), Target: "chatgpt", Prompt: fmt.Sprint("hello ", i)}, Attempt: 1})
	}
	b := New(api, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in := make(chan Item, len(items))
	for _, it := range items {
		in <- it
	}
	close(in)
	out := make(chan Event)
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx, Input{Rows: in}, out) }()
	byPT := map[string]int{} // passthrough -> tasks reported with it
	for got := 0; got < len(items); {
		select {
		case e := <-out:
			if e.Kind != Submitted {
				t.Fatalf("event %+v", e)
			}
			byPT[e.Passthrough] += len(e.Items)
			got += len(e.Items)
		case err := <-errc:
			t.Fatalf("Run: %v", err)
		}
	}
	cancel()
	<-errc

	type body struct {
		CallbackURL string `json:"callback_url"`
		Passthrough string `json:"passthrough"`
		Geo         string `json:"geo"`
	}
	sent := map[string]int{} // passthrough -> tasks sent with it
	for _, c := range api.calls {
		var bd body
		if err := json.Unmarshal(c.Params, &bd); err != nil {
			t.Fatalf("batch params %s: %v", c.Params, err)
		}
		if bd.CallbackURL != cfg.CallbackURL || bd.Geo != "France" || bd.Passthrough == "" {
			t.Errorf("batch params %s", c.Params)
		}
		sent[bd.Passthrough] += c.Len()
	}
	for _, s := range api.singles {
		var bd body
		if err := json.Unmarshal(s, &bd); err != nil {
			t.Fatalf("task body %s: %v", s, err)
		}
		if bd.CallbackURL != cfg.CallbackURL || bd.Passthrough == "" {
			t.Errorf("task body %s", s)
		}
		sent[bd.Passthrough]++
	}
	if len(api.calls) != 3 || len(api.singles) != 3 {
		t.Fatalf("%d batches and %d singles, want 3 and 3", len(api.calls), len(api.singles))
	}
	if len(sent) != 6 {
		t.Errorf("%d passthroughs for 6 submissions: %v", len(sent), sent)
	}
	for pt, k := range sent {
		if byPT[pt] != k {
			t.Errorf("passthrough %s: %d tasks sent, %d reported with it", pt, k, byPT[pt])
		}
	}
}

// TestNoCallbackByDefault proves a run without callbacks sends the row's
// parameters as they are.
func TestNoCallbackByDefault(t *testing.T) {
	t.Parallel()
	b := New(&fakeAPI{}, Config{})
	p, pt := b.withCallback(json.RawMessage(`{"geo":"US"}`))
	if string(p) != `{"geo":"US"}` || pt != "" {
		t.Errorf("params %s, passthrough %q", p, pt)
	}
	b = New(&fakeAPI{}, Config{CallbackURL: "http://127.0.0.1:1/x"})
	if p, _ := b.withCallback(nil); string(p) != `{"callback_url":"http://127.0.0.1:1/x"}` {
		t.Errorf("empty params: %s", p)
	}
	// A row's own callback_url and passthrough give way: one of each key.
	p, _ = b.withCallback(json.RawMessage(`{"callback_url":"https://evil.example","geo":"US","passtrough":"x"}`))
	if string(p) != `{"geo":"US","callback_url":"http://127.0.0.1:1/x"}` {
		t.Errorf("row's own callback keys: %s", p)
	}
}

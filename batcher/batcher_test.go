package batcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/records"
)

// fakeAPI answers batches with respond, recording what was sent and when.
type fakeAPI struct {
	mu      sync.Mutex
	calls   []decodo.BatchRequest
	times   []time.Time
	respond func(n int, req decodo.BatchRequest) error
	next    int
	singles []json.RawMessage // bodies of single tasks
	// unwritten: the request never reaches the connection (a refused
	// dial); else it is written whole before respond is asked.
	unwritten bool
}

// Submit queues one task, answering in the same way as SubmitBatch.
func (f *fakeAPI) Submit(ctx context.Context, params json.RawMessage) (*decodo.Task, error) {
	f.mu.Lock()
	n := len(f.calls) + len(f.singles)
	f.singles = append(f.singles, params)
	f.mu.Unlock()
	if tr := httptrace.ContextClientTrace(ctx); tr != nil && !f.unwritten && tr.WroteRequest != nil {
		tr.WroteRequest(httptrace.WroteRequestInfo{})
	}
	if f.respond != nil {
		if err := f.respond(n, decodo.BatchRequest{}); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	return &decodo.Task{ID: decodo.ID(fmt.Sprintf("%019d", f.next))}, nil
}

func (f *fakeAPI) SubmitBatch(ctx context.Context, req decodo.BatchRequest) (*decodo.BatchResponse, error) {
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, req)
	f.times = append(f.times, time.Now())
	f.mu.Unlock()
	// As net/http does: the request is on the wire before the answer.
	if tr := httptrace.ContextClientTrace(ctx); tr != nil && !f.unwritten {
		if tr.WroteHeaders != nil {
			tr.WroteHeaders()
		}
		if tr.WroteRequest != nil {
			tr.WroteRequest(httptrace.WroteRequestInfo{})
		}
	}
	if f.respond != nil {
		if err := f.respond(n, req); err != nil {
			return nil, err
		}
	}
	resp := &decodo.BatchResponse{ID: "7495756599328274433"}
	f.mu.Lock()
	defer f.mu.Unlock()
	// answer in reverse order: matching must go by the echoed item
	for i := len(req.URLs) - 1; i >= 0; i-- {
		f.next++
		resp.Tasks = append(resp.Tasks, decodo.Task{ID: decodo.ID(fmt.Sprintf("%019d", f.next)), URL: req.URLs[i]})
	}
	for i := len(req.Queries) - 1; i >= 0; i-- {
		f.next++
		resp.Tasks = append(resp.Tasks, decodo.Task{ID: decodo.ID(fmt.Sprintf("%019d", f.next)), Query: req.Queries[i]})
	}
	return resp, nil
}

// recSink records what the batcher reports.
type recSink struct {
	mu        sync.Mutex
	submitted map[string]string // item -> task id
	rejected  map[string]string
	failed    map[string]string
	classes   map[string]int // failed items by class
	count     int
	done      chan struct{}
	want      int
}

func newSink(want int) *recSink {
	return &recSink{submitted: map[string]string{}, rejected: map[string]string{}, failed: map[string]string{}, classes: map[string]int{}, done: make(chan struct{}), want: want}
}

func (s *recSink) add(n int) {
	s.count += n
	if s.count == s.want {
		close(s.done)
	}
}

func (s *recSink) record(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, it := range e.Items {
		switch e.Kind {
		case Submitted:
			s.submitted[it.URL+it.Query] = e.IDs[i]
		case Rejected:
			s.rejected[it.URL+it.Query] = e.Reason
		case Failed:
			s.failed[it.URL+it.Query] = e.Reason
			s.classes[e.Class]++
		}
	}
	s.add(len(e.Items))
}

// listen records the batcher's events until ctx is done.
func (s *recSink) listen(ctx context.Context) chan<- Event {
	ch := make(chan Event)
	go func() {
		for {
			select {
			case e := <-ch:
				s.record(e)
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

func urlItems(n int, mark func(i int) string) []Item {
	items := make([]Item, n)
	for i := range items {
		u := fmt.Sprintf("https://example.com/%d", i)
		if mark != nil {
			u += mark(i)
		}
		items[i] = Item{Record: records.Record{Row: int64(i + 1), Line: int64(i + 1), Target: "universal", URL: u}, Attempt: 1}
	}
	return items
}

// runBatcher feeds items to a batcher and waits until the sink heard of
// every one, or the error Run returned.
func runBatcher(t *testing.T, api Submitter, cfg Config, items []Item) (*recSink, *Batcher, error) {
	t.Helper()
	sink := newSink(len(items))
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Millisecond
	}
	if cfg.FillWait == 0 {
		// Batches fill up however slowly a busy machine feeds them, so
		// request counts are exact; the end of the input flushes the rest.
		cfg.FillWait = time.Minute
	}
	b := New(api, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lctx, stopListening := context.WithCancel(context.Background())
	defer stopListening()
	in := make(chan Item)
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx, Input{Rows: in}, sink.listen(lctx)) }()
	go func() {
		defer close(in)
		for _, it := range items {
			select {
			case in <- it:
			case <-ctx.Done():
				return
			}
		}
	}()
	select {
	case <-sink.done:
		cancel()
		return sink, b, <-errc
	case err := <-errc:
		return sink, b, err
	}
}

// TestSubmitMatchesByEcho proves tasks are matched to items by their
// echoed url even when the API answers in another order.
func TestSubmitMatchesByEcho(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{}
	sink, _, err := runBatcher(t, api, Config{Size: 10}, urlItems(25, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(api.calls) != 3 || len(sink.submitted) != 25 {
		t.Fatalf("%d calls, %d submitted; want 3, 25", len(api.calls), len(sink.submitted))
	}
	// the fake numbers tasks in reverse order within each call
	first := api.calls[0].URLs
	if got, want := sink.submitted[first[0]], fmt.Sprintf("%019d", len(first)); got != want {
		t.Errorf("item %s got task %s, want %s", first[0], got, want)
	}
}

// TestPacing proves submissions never come closer than the interval, with
// several requests in flight.
func TestPacing(t *testing.T) {
	t.Parallel()
	var open, most atomic.Int32 // requests in flight, now and at most
	api := &fakeAPI{respond: func(int, decodo.BatchRequest) error {
		n := open.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(30 * time.Millisecond)
		open.Add(-1)
		return nil
	}}
	const interval = 20 * time.Millisecond
	_, _, err := runBatcher(t, api, Config{Size: 5, Interval: interval}, urlItems(50, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(api.times) != 10 {
		t.Fatalf("%d calls, want 10", len(api.times))
	}
	for i := 1; i < len(api.times); i++ {
		if gap := api.times[i].Sub(api.times[i-1]); gap < interval {
			t.Errorf("calls %d and %d %v apart, under %v", i-1, i, gap, interval)
		}
	}
	// each answer takes longer than the interval: the next goes out meanwhile
	if most.Load() < 2 {
		t.Errorf("at most %d request in flight: requests were not pipelined", most.Load())
	}
}

// TestRateLimitedRetriesSameBatch proves a 429 waits Retry-After and sends
// the same batch again, and the items are submitted once.
func TestRateLimitedRetriesSameBatch(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{respond: func(n int, _ decodo.BatchRequest) error {
		if n == 0 {
			return &decodo.Error{StatusCode: 429, RetryAfter: 50 * time.Millisecond}
		}
		return nil
	}}
	sink, b, err := runBatcher(t, api, Config{Size: 10}, urlItems(10, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(api.calls) != 2 || strings.Join(api.calls[0].URLs, ",") != strings.Join(api.calls[1].URLs, ",") {
		t.Fatalf("%d calls; the retry must send the same batch", len(api.calls))
	}
	if gap := api.times[1].Sub(api.times[0]); gap < 50*time.Millisecond {
		t.Errorf("retried after %v, before Retry-After", gap)
	}
	if len(sink.submitted) != 10 || b.Stats.RateLimited.Load() != 1 {
		t.Errorf("%d submitted, %d 429s", len(sink.submitted), b.Stats.RateLimited.Load())
	}
	// the pacing margin (its 4ms floor at this interval) learned from the 429
	if b.margin != 8*time.Millisecond {
		t.Errorf("margin %v after a 429 at interval %v, want 8ms", b.margin, b.cfg.Interval)
	}
}

// TestBisection proves a batch refused with 400 is split until the bad
// items are found; only they are rejected.
func TestBisection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		n        int
		bad      map[int]bool
		maxCalls int
	}{
		// a bad item costs two requests per halving: 1 + 2·k·⌈log2 n⌉
		{"one bad in 3000", 3000, map[int]bool{1234: true}, 1 + 2*12},
		{"two bad", 1000, map[int]bool{3: true, 999: true}, 1 + 2*2*10},
		{"first item bad", 64, map[int]bool{0: true}, 1 + 2*6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := &fakeAPI{respond: func(_ int, req decodo.BatchRequest) error {
				for _, u := range req.URLs {
					if strings.HasSuffix(u, "#bad") {
						return &decodo.Error{StatusCode: 400, Message: "invalid url in batch"}
					}
				}
				return nil
			}}
			items := urlItems(tt.n, func(i int) string {
				if tt.bad[i] {
					return "#bad"
				}
				return ""
			})
			// FillWait: the first slot waits for the full batch, however
			// slowly a busy machine feeds it.
			sink, b, err := runBatcher(t, api, Config{Size: 3000, Interval: 20 * time.Millisecond, FillWait: time.Minute}, items)
			if err != nil {
				t.Fatal(err)
			}
			if b.Stats.Splits.Load() == 0 {
				t.Error("no split counted: an unnamed refusal is found by splitting")
			}
			if len(sink.rejected) != len(tt.bad) || len(sink.submitted) != tt.n-len(tt.bad) {
				t.Fatalf("%d rejected, %d submitted; want %d, %d", len(sink.rejected), len(sink.submitted), len(tt.bad), tt.n-len(tt.bad))
			}
			for u, reason := range sink.rejected {
				if !strings.HasSuffix(u, "#bad") || !strings.Contains(reason, "invalid url in batch") {
					t.Errorf("rejected %s: %s", u, reason)
				}
			}
			if len(api.calls) > tt.maxCalls {
				t.Errorf("%d requests to find %d bad items, want at most %d", len(api.calls), len(tt.bad), tt.maxCalls)
			}
		})
	}
}

// TestRefusedByName proves an error that names the bad item takes it out
// at once, without bisection.
func TestRefusedByName(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{respond: func(_ int, req decodo.BatchRequest) error {
		for _, u := range req.URLs {
			if strings.HasSuffix(u, "/7") {
				return &decodo.Error{StatusCode: 400, Message: "bad items", Errors: []string{"url[7]: " + u + " is not allowed"}}
			}
		}
		return nil
	}}
	sink, _, err := runBatcher(t, api, Config{Size: 100}, urlItems(100, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(api.calls) != 2 || len(sink.rejected) != 1 || len(sink.submitted) != 99 {
		t.Fatalf("%d calls, %d rejected, %d submitted; want 2, 1, 99", len(api.calls), len(sink.rejected), len(sink.submitted))
	}
}

// TestRefusedWhole proves a batch the API refuses whatever its items (a
// bad target) is rejected after a few requests, not one per item.
func TestRefusedWhole(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{respond: func(int, decodo.BatchRequest) error {
		return &decodo.Error{StatusCode: 400, Message: "unknown target"}
	}}
	// FillWait: the first slot waits for the full batch, however slowly a
	// busy machine feeds it.
	sink, _, err := runBatcher(t, api, Config{Size: 3000, Interval: 20 * time.Millisecond, FillWait: time.Minute}, urlItems(3000, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(sink.rejected) != 3000 {
		t.Fatalf("%d rejected, want 3000", len(sink.rejected))
	}
	if len(api.calls) > 15 {
		t.Errorf("%d requests to learn the whole batch is refused", len(api.calls))
	}
}

// TestPayOnce proves a batch is sent again only where the API surely did
// not take it (502, 503, 504, a connection error before the request was
// written), and then only while the outage budget lasts, after which
// Run returns ErrUnavailable and the items stay unsubmitted; where the API
// may have taken it (a 500, a connection broken after the request was
// written) the items fail as unknown after one request; other 4xx refuse
// them.
func TestPayOnce(t *testing.T) {
	t.Parallel()
	broken := errors.New("connection reset by peer")
	tests := []struct {
		name      string
		err       error
		unwritten bool
		calls     int // -1: more than one
		wantErr   error
		failed    string // class of the failed items, "" for none
		rejected  bool
	}{
		{"503 retried", &decodo.Error{StatusCode: 503, Message: "busy"}, false, -1, ErrUnavailable, "", false},
		{"502 retried", &decodo.Error{StatusCode: 502}, false, -1, ErrUnavailable, "", false},
		{"504 retried", &decodo.Error{StatusCode: 504}, false, -1, ErrUnavailable, "", false},
		{"refused connection retried", broken, true, -1, ErrUnavailable, "", false},
		{"500 not sent again", &decodo.Error{StatusCode: 500}, false, 1, nil, ClassUnknown, false},
		{"broken after writing not sent again", broken, false, 1, nil, ClassUnknown, false},
		{"404 ends the run", &decodo.Error{StatusCode: 404}, false, 1, ErrRefused, "", false},
		{"408 retried", &decodo.Error{StatusCode: 408}, false, -1, ErrUnavailable, "", false},
	}
	for _, tt := range tests {
		for _, single := range []bool{false, true} {
			name := tt.name
			if single {
				name += " (single tasks)"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				api := &fakeAPI{unwritten: tt.unwritten, respond: func(int, decodo.BatchRequest) error { return tt.err }}
				cfg := Config{Size: 10, TaskRate: 1000, Outage: &decodo.Outage{Budget: 30 * time.Millisecond}, Backoff: decodo.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}}
				items := urlItems(10, nil)
				calls := tt.calls
				if single {
					items = promptItems(1)
				}
				sink, _, err := runBatcher(t, api, cfg, items)
				n := len(items)
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
					t.Fatalf("Run = %v, want %v", err, tt.wantErr)
				}
				if got := len(api.calls) + len(api.singles); got != calls && (calls >= 0 || got < 2) {
					t.Errorf("%d requests, want %d (-1: more than one)", got, calls)
				}
				if single && len(api.calls) != 0 {
					t.Errorf("a prompt row went in a batch")
				}
				if tt.failed != "" && (len(sink.failed) != n || sink.classes[tt.failed] != n) {
					t.Errorf("%d failed (classes %v), want %d of class %s", len(sink.failed), sink.classes, n, tt.failed)
				}
				if tt.failed == "" && len(sink.failed) != 0 {
					t.Errorf("%d failed, want none", len(sink.failed))
				}
				if tt.rejected != (len(sink.rejected) == n) {
					t.Errorf("%d rejected", len(sink.rejected))
				}
				if tt.wantErr != nil && len(sink.submitted)+len(sink.failed)+len(sink.rejected) != 0 {
					t.Errorf("items reported though none was submitted")
				}
			})
		}
	}
}

// promptItems returns n rows of a prompt target, which go one by one.
func promptItems(n int) []Item {
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{Record: records.Record{Row: int64(i + 1), Line: int64(i + 1), Target: "chatgpt", Prompt: fmt.Sprint("say ", i)}, Attempt: 1}
	}
	return items
}

// TestAuthEndsRun proves a 401 makes Run return decodo.ErrAuth.
func TestAuthEndsRun(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{respond: func(int, decodo.BatchRequest) error {
		return &decodo.Error{StatusCode: 401, Message: "Unauthorized"}
	}}
	_, _, err := runBatcher(t, api, Config{Size: 10}, urlItems(30, nil))
	if !errors.Is(err, decodo.ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
}

// TestResubmitJoinsBatches proves resubmitted items are submitted again.
func TestResubmitJoinsBatches(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{}
	sink := newSink(20)
	b := New(api, Config{Size: 10, Interval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, again := make(chan Item), make(chan []Item)
	close(in)
	go b.Run(ctx, Input{Rows: in, Again: again}, sink.listen(ctx))
	items := urlItems(20, nil)
	for i := range items {
		items[i].Attempt = 2
	}
	again <- items[:10]
	again <- items[10:]
	select {
	case <-sink.done:
	case <-time.After(10 * time.Second):
		t.Fatal("resubmitted items were not submitted")
	}
	if len(sink.submitted) != 20 || len(api.calls) != 2 {
		t.Fatalf("%d submitted in %d calls, want 20 in 2 full batches", len(sink.submitted), len(api.calls))
	}
}

// TestGrouper proves grouping by key, full batches at Size, and the
// bounds on open groups and waiting items.
func TestGrouper(t *testing.T) {
	t.Parallel()
	rec := func(target, url, query string, params records.Params) Item {
		return Item{Record: records.Record{Target: target, URL: url, Query: query, Params: params}}
	}
	now := time.Now()
	t.Run("separate keys", func(t *testing.T) {
		g := NewGrouper(Config{Size: 2, MaxOpen: 10, MaxItems: 100})
		for _, it := range []Item{
			rec("universal", "https://a", "", ""),
			rec("universal", "https://b", "", `{"geo":"US"}`),
			rec("google_search", "", "q", ""),
		} {
			if full, ev := g.Add(it, now); full != nil || ev != nil {
				t.Fatalf("unexpected batch for %v", it)
			}
		}
		if g.Open() != 3 {
			t.Fatalf("%d groups, want 3", g.Open())
		}
		full, _ := g.Add(rec("universal", "https://c", "", ""), now)
		if full == nil || len(full.Items) != 2 || full.Key.Target != "universal" || full.Key.Params != "" {
			t.Fatalf("full batch: %+v", full)
		}
	})
	t.Run("max open evicts the oldest", func(t *testing.T) {
		g := NewGrouper(Config{Size: 100, MaxOpen: 2, MaxItems: 1000})
		g.Add(rec("universal", "https://a", "", `{"geo":"1"}`), now)
		g.Add(rec("universal", "https://b", "", `{"geo":"2"}`), now)
		_, ev := g.Add(rec("universal", "https://c", "", `{"geo":"3"}`), now)
		if ev == nil || ev.Key.Params != `{"geo":"1"}` {
			t.Fatalf("evicted %+v, want the geo 1 group", ev)
		}
	})
	t.Run("max items evicts the largest", func(t *testing.T) {
		g := NewGrouper(Config{Size: 100, MaxOpen: 10, MaxItems: 100})
		for i := range 60 {
			g.Add(rec("universal", fmt.Sprint("https://a/", i), "", `{"geo":"big"}`), now)
		}
		var ev *Batch
		for i := 0; ev == nil && i < 50; i++ {
			_, ev = g.Add(rec("universal", fmt.Sprint("https://b/", i), "", `{"geo":"small"}`), now)
		}
		if ev == nil || ev.Key.Params != `{"geo":"big"}` || g.Waiting() > 100 {
			t.Fatalf("evicted %+v, waiting %d", ev, g.Waiting())
		}
	})
}

// TestUnreadableAnswerIsNotSentAgain proves a 2xx batch answer that cannot
// be read fails its items at once: the API queued them, and a retry would
// pay for them twice.
func TestUnreadableAnswerIsNotSentAgain(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{respond: func(int, decodo.BatchRequest) error {
		return &decodo.AnswerError{Op: "POST /v3/task/batch", Err: errors.New("unexpected end of JSON input")}
	}}
	sink, _, err := runBatcher(t, api, Config{Size: 10, Backoff: decodo.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}}, urlItems(10, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(api.calls) != 1 || len(sink.failed) != 10 || len(sink.submitted) != 0 {
		t.Fatalf("%d calls, %d failed, %d submitted; want 1, 10, 0", len(api.calls), len(sink.failed), len(sink.submitted))
	}
	for _, reason := range sink.failed {
		if !strings.Contains(reason, "pay twice") || !strings.Contains(reason, "unexpected end of JSON input") {
			t.Errorf("reason %q", reason)
		}
	}
}

// TestRefusedByNameIsWholeItem proves an error naming one item does not
// also take out an item that is its prefix.
func TestRefusedByNameIsWholeItem(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{respond: func(_ int, req decodo.BatchRequest) error {
		for _, u := range req.URLs {
			if strings.HasSuffix(u, "/70") {
				return &decodo.Error{StatusCode: 400, Message: "bad items", Errors: []string{`{"field":"url[70]","value":"` + u + `","message":"not allowed"}`}}
			}
		}
		return nil
	}}
	sink, _, err := runBatcher(t, api, Config{Size: 100}, urlItems(100, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(sink.rejected) != 1 || len(sink.submitted) != 99 {
		t.Fatalf("%d rejected, %d submitted; want 1, 99 (rejected %v)", len(sink.rejected), len(sink.submitted), sink.rejected)
	}
	for u := range sink.rejected {
		if u != "https://example.com/70" {
			t.Errorf("%s rejected, want only https://example.com/70", u)
		}
	}
}

// prober is a fakeAPI whose task reads answer like its submissions, per a
// switch: an API down (503) or up (404 for an unknown task).
type prober struct {
	*fakeAPI
	down   atomic.Bool
	probes atomic.Int32
}

func (p *prober) Task(ctx context.Context, id string) (*decodo.Task, error) {
	p.probes.Add(1)
	if p.down.Load() {
		return nil, &decodo.Error{StatusCode: 503}
	}
	return nil, &decodo.Error{StatusCode: 404}
}

// TestStormOf500s proves a storm of 500s costs the batch that met it, not
// every batch: after a submission of unknown outcome the next waits until
// a free task read shows the API answering; if it never does within the
// outage budget, Run ends with ErrUnavailable and the other rows stay
// unsubmitted. A single 500 in a healthy API costs one probe and the run
// goes on.
func TestStormOf500s(t *testing.T) {
	t.Parallel()
	cfg := Config{Size: 10, InFlight: 1, Outage: &decodo.Outage{Budget: 50 * time.Millisecond},
		Backoff: decodo.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}}
	storm := &prober{fakeAPI: &fakeAPI{respond: func(int, decodo.BatchRequest) error { return &decodo.Error{StatusCode: 500} }}}
	storm.down.Store(true)
	sink, _, err := runBatcher(t, storm, cfg, urlItems(100, nil))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Run = %v, want ErrUnavailable", err)
	}
	storm.mu.Lock()
	sink.mu.Lock()
	if n := len(storm.calls); n != 1 || len(sink.failed) != 10 || sink.classes[ClassUnknown] != 10 {
		t.Errorf("%d POSTs, %d items failed (%v) in a storm of 500s; want 1 POST, its 10 items unknown", n, len(sink.failed), sink.classes)
	}
	sink.mu.Unlock()
	storm.mu.Unlock()
	if storm.probes.Load() == 0 {
		t.Error("no probe")
	}

	// Four in flight, and 500s that take a while: the batches waiting for
	// their slot wait for the probe too; and when reads keep working (the
	// probe says the API answers), a few unknown outcomes in a row still
	// end the run.
	cfg4 := cfg
	cfg4.InFlight, cfg4.Outage = 4, &decodo.Outage{Budget: time.Minute}
	slow := &prober{fakeAPI: &fakeAPI{respond: func(int, decodo.BatchRequest) error {
		time.Sleep(30 * time.Millisecond)
		return &decodo.Error{StatusCode: 500}
	}}}
	sink, _, err = runBatcher(t, slow, cfg4, urlItems(200, nil))
	slow.mu.Lock()
	sink.mu.Lock()
	if posts := len(slow.calls); !errors.Is(err, ErrUnavailable) || posts > 4+maxUnknownRow || sink.classes[ClassUnknown] != 10*posts {
		t.Errorf("500s on submissions only: err %v, %d POSTs, %v; want ErrUnavailable after at most %d POSTs, each one's items unknown", err, posts, sink.classes, 4+maxUnknownRow)
	}
	sink.mu.Unlock()
	slow.mu.Unlock()

	cfg.Outage = &decodo.Outage{Budget: time.Minute}
	glitch := &prober{fakeAPI: &fakeAPI{respond: func(n int, _ decodo.BatchRequest) error {
		if n == 2 {
			return &decodo.Error{StatusCode: 500}
		}
		return nil
	}}}
	sink, _, err = runBatcher(t, glitch, cfg, urlItems(100, nil))
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if err != nil || len(sink.submitted) != 90 || sink.classes[ClassUnknown] != 10 || glitch.probes.Load() != 1 {
		t.Errorf("one 500: err %v, %d submitted, %v failed, %d probes; want 90, 10 unknown, 1 probe", err, len(sink.submitted), sink.classes, glitch.probes.Load())
	}
}

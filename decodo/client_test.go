package decodo

// The tests are in package decodo, not decodo_test, because parseRetryAfter
// is unexported; everything else is used as a caller would use it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// testToken is base64("user:pass"), the form of a dashboard token.
const testToken = "dXNlcjpwYXNz"

var (
	taskIDPattern = regexp.MustCompile(`^[0-9]{19}$`)
	rawBatchID    = regexp.MustCompile(`^\s*\{\s*"id"\s*:\s*([0-9]+)\s*,`)
)

// fakeClock is a settable clock for sandbox.Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 4, 11, 51, 4, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// exchange is one request seen by a recorder and the answer it got.
type exchange struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	Status       int
	Answer       []byte
}

// recorder wraps a handler and keeps every request and the bytes of every
// answer, so tests can compare what the client sent and decoded with what
// went over the wire.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	ex   []*exchange
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	e := &exchange{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	rec.mu.Lock()
	rec.ex = append(rec.ex, e)
	rec.mu.Unlock()
	rec.next.ServeHTTP(&teeWriter{ResponseWriter: w, rec: rec, e: e}, r)
}

// exchanges returns a copy of what was recorded so far.
func (rec *recorder) exchanges() []exchange {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make([]exchange, len(rec.ex))
	for i, e := range rec.ex {
		out[i] = *e
		out[i].Answer = slices.Clone(e.Answer)
	}
	return out
}

// last returns the last recorded exchange.
func (rec *recorder) last(t *testing.T) exchange {
	t.Helper()
	ex := rec.exchanges()
	if len(ex) == 0 {
		t.Fatal("no request reached the server")
	}
	return ex[len(ex)-1]
}

type teeWriter struct {
	http.ResponseWriter
	rec *recorder
	e   *exchange
}

func (w *teeWriter) WriteHeader(code int) {
	w.rec.mu.Lock()
	if w.e.Status == 0 {
		w.e.Status = code
	}
	w.rec.mu.Unlock()
	w.ResponseWriter.WriteHeader(code)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.rec.mu.Lock()
	if w.e.Status == 0 {
		w.e.Status = http.StatusOK
	}
	w.e.Answer = append(w.e.Answer, b...)
	w.rec.mu.Unlock()
	return w.ResponseWriter.Write(b)
}

// serve runs handler for the test's lifetime and returns a client of it
// holding token.
func serve(t *testing.T, handler http.Handler, token string) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{next: handler}
	ts := httptest.NewServer(rec)
	c, err := New(ts.URL, token, Config{Version: "test"})
	if err != nil {
		t.Fatalf("New(%q): %v", ts.URL, err)
	}
	t.Cleanup(func() {
		c.CloseIdleConnections()
		ts.Close()
	})
	return c, rec
}

// serveSandbox runs a sandbox with cfg and returns a client holding testToken.
func serveSandbox(t *testing.T, cfg sandbox.Config) (*Client, *recorder) {
	t.Helper()
	sb := sandbox.New(cfg)
	t.Cleanup(sb.Close)
	return serve(t, sb, testToken)
}

// apiError asserts err is an *Error and returns it.
func apiError(t *testing.T, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("got no error, want an *Error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	return e
}

// submitURLs queues one batch of universal urls and fails the test if the
// API refuses it.
func submitURLs(t *testing.T, c *Client, urls ...string) *BatchResponse {
	t.Helper()
	resp, err := c.SubmitBatch(context.Background(), BatchRequest{Target: "universal", URLs: urls})
	if err != nil {
		t.Fatalf("SubmitBatch: %v", err)
	}
	if len(resp.Tasks) != len(urls) {
		t.Fatalf("SubmitBatch: %d tasks for %d urls", len(resp.Tasks), len(urls))
	}
	return resp
}

func TestSubmitBatchQueuesEveryItemInBothResponseForms(t *testing.T) {
	t.Parallel()
	urls := []string{
		"https://a.example/1",
		"https://shop.example/item?q=a&b=<c>&d=\"e\"",
		"https://b.example/caf%C3%A9/東京",
	}
	queries := []string{"coffee", `café "latte" \ <tea> & 東京`, "tab\there"}
	tests := []struct {
		name  string
		array bool
		req   BatchRequest
	}{
		{"urls, object form", false, BatchRequest{Target: "universal", URLs: urls}},
		{"urls, array form", true, BatchRequest{Target: "universal", URLs: urls}},
		{"queries, object form", false, BatchRequest{Target: "google_search", Queries: queries}},
		{"queries, array form", true, BatchRequest{Target: "google_search", Queries: queries}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The clock stands still and pacing is off, so the second batch
			// takes the ids right after the first: its batch id is no longer
			// a round number that float64 happens to hold exactly.
			c, rec := serveSandbox(t, sandbox.Config{ArrayResponse: tt.array, BatchInterval: -1, Now: newClock().Now})
			items := tt.req.URLs
			if len(tt.req.Queries) > 0 {
				items = tt.req.Queries
			}
			seen := map[string]bool{}
			for round := range 2 {
				resp, err := c.SubmitBatch(context.Background(), tt.req)
				if err != nil {
					t.Fatalf("batch %d: %v", round, err)
				}
				raw := rec.last(t).Answer
				if tt.array {
					if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
						t.Fatalf("batch %d: sandbox did not answer an array: %.80s", round, raw)
					}
					if resp.ID != "" {
						t.Errorf("batch %d: ID = %q from an array answer, want empty", round, resp.ID)
					}
				} else {
					m := rawBatchID.FindSubmatch(raw)
					if m == nil {
						t.Fatalf("batch %d: no bare numeric id in %.80s", round, raw)
					}
					if resp.ID != string(m[1]) {
						t.Errorf("batch %d: ID = %q, want exactly %s as sent", round, resp.ID, m[1])
					}
				}
				if len(resp.Tasks) != len(items) {
					t.Fatalf("batch %d: %d tasks for %d items", round, len(resp.Tasks), len(items))
				}
				echoed := map[string]int{}
				for _, tk := range resp.Tasks {
					if !taskIDPattern.MatchString(string(tk.ID)) {
						t.Errorf("task id %q is not a string of 19 digits", tk.ID)
					}
					if seen[string(tk.ID)] {
						t.Errorf("task id %s handed out twice", tk.ID)
					}
					seen[string(tk.ID)] = true
					if tk.Status != StatusPending || tk.Target != tt.req.Target {
						t.Errorf("task %s: status %q target %q, want pending %s", tk.ID, tk.Status, tk.Target, tt.req.Target)
					}
					if len(tt.req.Queries) > 0 && tk.URL != "" || len(tt.req.URLs) > 0 && tk.Query != "" {
						t.Errorf("task %s echoes url %q and query %q: one must be empty", tk.ID, tk.URL, tk.Query)
					}
					echoed[tk.Item()]++
				}
				for _, it := range items {
					if echoed[it] != 1 {
						t.Errorf("item %q echoed by %d tasks, want 1 (echoed: %v)", it, echoed[it], echoed)
					}
				}
			}
		})
	}
}

func TestRequestsCarryMethodPathHeadersAndBody(t *testing.T) {
	t.Parallel()
	c, rec := serveSandbox(t, sandbox.Config{BatchInterval: -1})
	ctx := context.Background()
	wantHeaders := func(t *testing.T, ex exchange, body bool) {
		t.Helper()
		if got := ex.Header.Get("Authorization"); got != "Basic "+testToken {
			t.Errorf("%s %s: Authorization = %q, want %q", ex.Method, ex.Path, got, "Basic "+testToken)
		}
		if got := ex.Header.Get("Accept"); got != "application/json" {
			t.Errorf("%s %s: Accept = %q, want application/json", ex.Method, ex.Path, got)
		}
		if got := ex.Header.Get("User-Agent"); got != "decodo-batch/test" {
			t.Errorf("%s %s: User-Agent = %q, want decodo-batch/test", ex.Method, ex.Path, got)
		}
		if body {
			if got := ex.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("%s %s: Content-Type = %q, want application/json", ex.Method, ex.Path, got)
			}
		} else if len(ex.Body) != 0 {
			t.Errorf("%s %s: sent a body %q", ex.Method, ex.Path, ex.Body)
		}
	}

	t.Run("SubmitBatch posts target, items and params", func(t *testing.T) {
		urls := []string{"https://a.example/1", "https://b.example/?x=1&y=<2>"}
		resp, err := c.SubmitBatch(ctx, BatchRequest{
			Target: "universal",
			URLs:   urls,
			Params: json.RawMessage(`{"geo":"Germany","headless":"html","passthrough":"p\"1"}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Tasks) != len(urls) {
			t.Fatalf("%d tasks for %d urls", len(resp.Tasks), len(urls))
		}
		ex := rec.last(t)
		if ex.Method != http.MethodPost || ex.Path != "/v3/task/batch" {
			t.Errorf("request %s %s, want POST /v3/task/batch", ex.Method, ex.Path)
		}
		wantHeaders(t, ex, true)
		var body map[string]any
		if err := json.Unmarshal(ex.Body, &body); err != nil {
			t.Fatalf("body %s is not a JSON object: %v", ex.Body, err)
		}
		want := map[string]any{
			"target":      "universal",
			"url":         []any{urls[0], urls[1]},
			"geo":         "Germany",
			"headless":    "html",
			"passthrough": `p"1`,
		}
		if !reflect.DeepEqual(body, want) {
			t.Errorf("body = %v\nwant   %v", body, want)
		}
	})

	t.Run("Submit posts the task's params as they are", func(t *testing.T) {
		params := `{"target":"google_search","query":"coffee beans"}`
		tk, err := c.Submit(ctx, json.RawMessage(params))
		if err != nil {
			t.Fatal(err)
		}
		if !taskIDPattern.MatchString(string(tk.ID)) || tk.Status != StatusPending || tk.Query != "coffee beans" {
			t.Errorf("task = %+v, want a 19-digit id, pending, query echoed", tk)
		}
		ex := rec.last(t)
		if ex.Method != http.MethodPost || ex.Path != "/v3/task" || string(ex.Body) != params {
			t.Errorf("request %s %s %s, want POST /v3/task %s", ex.Method, ex.Path, ex.Body, params)
		}
		wantHeaders(t, ex, true)
	})

	t.Run("Task and Results are GETs of the task's paths", func(t *testing.T) {
		id := string(submitURLs(t, c, "https://c.example/").Tasks[0].ID)
		if _, err := c.Task(ctx, id); err != nil {
			t.Fatal(err)
		}
		ex := rec.last(t)
		if ex.Method != http.MethodGet || ex.Path != "/v3/task/"+id {
			t.Errorf("Task: request %s %s, want GET /v3/task/%s", ex.Method, ex.Path, id)
		}
		wantHeaders(t, ex, false)
		if _, _, err := c.Results(ctx, id); err != nil {
			t.Fatal(err)
		}
		ex = rec.last(t)
		if ex.Method != http.MethodGet || ex.Path != "/v3/task/"+id+"/results" {
			t.Errorf("Results: request %s %s, want GET /v3/task/%s/results", ex.Method, ex.Path, id)
		}
		wantHeaders(t, ex, false)
	})
}

func TestEndpointWithTrailingSlashGivesCleanPaths(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Config{})
	t.Cleanup(sb.Close)
	rec := &recorder{next: sb}
	ts := httptest.NewServer(rec)
	t.Cleanup(ts.Close)
	c, err := New(ts.URL+"/", testToken, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	if _, err := c.Task(context.Background(), "7434928397127555073"); !apiError(t, err).Gone() {
		t.Fatalf("Task of an unknown id: %v, want 404", err)
	}
	if p := rec.last(t).Path; p != "/v3/task/7434928397127555073" {
		t.Errorf("path = %q, want /v3/task/7434928397127555073", p)
	}
}

func TestTaskAndResultsGoFromPendingToDone(t *testing.T) {
	t.Parallel()
	const delay = 10 * time.Second
	tests := []struct {
		name      string
		req       BatchRequest
		wantPages int
	}{
		{"url", BatchRequest{Target: "universal", URLs: []string{"https://a.example/page?x=1&y=2"}}, 1},
		{"query", BatchRequest{Target: "google_search", Queries: []string{"coffee beans"}}, 1},
		// universal takes no page_count; google, a url target too, does.
		{"two pages", BatchRequest{Target: "google", URLs: []string{"https://b.example/"}, Params: json.RawMessage(`{"page_count":2}`)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newClock()
			c, _ := serveSandbox(t, sandbox.Config{
				Delay: sandbox.Delay{Kind: sandbox.Fixed, Fixed: delay},
				Now:   clock.Now,
			})
			ctx := context.Background()
			resp, err := c.SubmitBatch(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Tasks) != 1 {
				t.Fatalf("%d tasks, want 1", len(resp.Tasks))
			}
			item, id := resp.Tasks[0].Item(), string(resp.Tasks[0].ID)

			for _, step := range []time.Duration{0, delay - time.Second} {
				clock.Advance(step)
				tk, err := c.Task(ctx, id)
				if err != nil {
					t.Fatalf("Task while pending: %v", err)
				}
				if string(tk.ID) != id || tk.Status != StatusPending || tk.Item() != item {
					t.Errorf("Task while pending = %+v, want id %s pending %q", tk, id, item)
				}
				res, ready, err := c.Results(ctx, id)
				if err != nil || ready || res != nil {
					t.Errorf("Results while pending = %v, %v, %v; want nil, false, nil", res, ready, err)
				}
			}

			clock.Advance(time.Second)
			tk, err := c.Task(ctx, id)
			if err != nil {
				t.Fatalf("Task when done: %v", err)
			}
			if tk.Status != StatusDone {
				t.Errorf("Task when done: status %q, want done", tk.Status)
			}
			res, ready, err := c.Results(ctx, id)
			if err != nil || !ready {
				t.Fatalf("Results when done: ready %v, err %v; want true, nil", ready, err)
			}
			if len(res) != tt.wantPages {
				t.Fatalf("Results: %d entries, want %d", len(res), tt.wantPages)
			}
			for i, r := range res {
				var content string
				if err := json.Unmarshal(r.Content, &content); err != nil {
					t.Fatalf("result %d content %.80s is not a JSON string: %v", i, r.Content, err)
				}
				if !strings.Contains(content, item) {
					t.Errorf("result %d content does not hold %q: %.200s", i, item, content)
				}
				if r.TaskID != id || r.StatusCode != http.StatusOK {
					t.Errorf("result %d: task_id %q status_code %d, want %s 200", i, r.TaskID, r.StatusCode, id)
				}
				if got := r.URL + r.Query; got != item {
					t.Errorf("result %d: url %q query %q, want the item %q", i, r.URL, r.Query, item)
				}
			}
		})
	}
}

func TestFaultedTaskIsVisibleThroughTask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode sandbox.FaultMode
	}{
		{"results 204 forever", sandbox.FaultNoContent},
		{"results an error", sandbox.FaultError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := serveSandbox(t, sandbox.Config{FaultRate: 1, FaultMode: tt.mode})
			ctx := context.Background()
			id := string(submitURLs(t, c, "https://a.example/").Tasks[0].ID)
			tk, err := c.Task(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if tk.Status != StatusFaulted {
				t.Errorf("Task status %q, want faulted", tk.Status)
			}
			res, ready, err := c.Results(ctx, id)
			switch tt.mode {
			case sandbox.FaultNoContent:
				if err != nil || ready || res != nil {
					t.Errorf("Results = %v, %v, %v; want nil, false, nil", res, ready, err)
				}
			case sandbox.FaultError:
				e := apiError(t, err)
				if e.StatusCode != 400 && e.StatusCode != 500 {
					t.Errorf("Results: status %d, want 400 or 500", e.StatusCode)
				}
				if ready || res != nil {
					t.Errorf("Results with an error: ready %v, %d results", ready, len(res))
				}
			}
		})
	}
}

func TestWrongTokenIsAuthError(t *testing.T) {
	t.Parallel()
	const wrong = "d3Jvbmc6c2VjcmV0" // base64("wrong:secret")
	sb := sandbox.New(sandbox.Config{Tokens: []string{testToken}})
	t.Cleanup(sb.Close)
	c, _ := serve(t, sb, wrong)
	ctx := context.Background()
	calls := []struct {
		name string
		call func() error
	}{
		{"SubmitBatch", func() error {
			_, err := c.SubmitBatch(ctx, BatchRequest{Target: "universal", URLs: []string{"https://a.example/"}})
			return err
		}},
		{"Task", func() error { _, err := c.Task(ctx, "7434928397127555073"); return err }},
		{"Results", func() error { _, _, err := c.Results(ctx, "7434928397127555073"); return err }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			e := apiError(t, err)
			if e.StatusCode != http.StatusUnauthorized || !e.Auth() {
				t.Errorf("status %d Auth() %v, want 401 true", e.StatusCode, e.Auth())
			}
			if e.Message == "" {
				t.Error("no message")
			}
			if e.Temporary() {
				t.Error("401 is Temporary, want a refusal that retrying cannot cure")
			}
			if strings.Contains(err.Error(), wrong) {
				t.Errorf("error text %q holds the token", err)
			}
		})
	}
}

func TestSecondBatchInsideIntervalIsRateLimited(t *testing.T) {
	t.Parallel()
	clock := newClock() // stands still: the second batch arrives at once
	c, _ := serveSandbox(t, sandbox.Config{BatchInterval: time.Second, Now: clock.Now})
	submitURLs(t, c, "https://a.example/")
	_, err := c.SubmitBatch(context.Background(), BatchRequest{Target: "universal", URLs: []string{"https://b.example/"}})
	e := apiError(t, err)
	if !e.RateLimited() || !e.Temporary() {
		t.Errorf("status %d: RateLimited %v Temporary %v, want 429 true true", e.StatusCode, e.RateLimited(), e.Temporary())
	}
	if e.RetryAfter <= 0 {
		t.Errorf("RetryAfter = %v, want > 0 from the Retry-After header", e.RetryAfter)
	}
	if e.Op != "POST /v3/task/batch" {
		t.Errorf("Op = %q, want POST /v3/task/batch", e.Op)
	}
}

func TestInvalidItemIsValidationErrorWithTheAPIsWords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  BatchRequest
		item string // the refused item, quoted back by the API
	}{
		{"ftp url sent raw", BatchRequest{Target: "universal", URLs: []string{"ftp://x"}}, "ftp://x"},
		{"one bad url refuses the batch", BatchRequest{Target: "universal",
			URLs: []string{"https://a.example/", "https://b.example/sandbox-invalid", "https://c.example/"}}, "https://b.example/sandbox-invalid"},
		{"bad query", BatchRequest{Target: "google_search", Queries: []string{"coffee", "tea sandbox-invalid"}}, "tea sandbox-invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, rec := serveSandbox(t, sandbox.Config{})
			resp, err := c.SubmitBatch(context.Background(), tt.req)
			if resp != nil {
				t.Errorf("got a response %+v with the error", resp)
			}
			e := apiError(t, err)
			if !e.Validation() || e.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d Validation() %v, want 400 true", e.StatusCode, e.Validation())
			}
			if e.Temporary() {
				t.Error("400 is Temporary, want a refusal that retrying cannot cure")
			}
			var sent struct {
				Message string            `json:"message"`
				Errors  []json.RawMessage `json:"errors"`
			}
			if err := json.Unmarshal(rec.last(t).Answer, &sent); err != nil {
				t.Fatal(err)
			}
			if e.Message != sent.Message {
				t.Errorf("Message = %q, want the API's %q", e.Message, sent.Message)
			}
			if len(e.Errors) != len(sent.Errors) || len(e.Errors) == 0 {
				t.Fatalf("Errors = %q, want the API's %s", e.Errors, sent.Errors)
			}
			if !strings.Contains(e.Errors[0], tt.item) || !strings.Contains(err.Error(), tt.item) {
				t.Errorf("Errors %q / text %q do not name %q", e.Errors, err, tt.item)
			}
		})
	}
}

func TestUnknownTaskIsGone(t *testing.T) {
	t.Parallel()
	c, _ := serveSandbox(t, sandbox.Config{})
	ctx := context.Background()
	const id = "7434928397127555073"
	_, err := c.Task(ctx, id)
	if e := apiError(t, err); !e.Gone() || e.StatusCode != http.StatusNotFound || e.Temporary() {
		t.Errorf("Task: status %d Gone() %v Temporary() %v, want 404 true false", e.StatusCode, e.Gone(), e.Temporary())
	}
	res, ready, err := c.Results(ctx, id)
	if e := apiError(t, err); !e.Gone() {
		t.Errorf("Results: status %d Gone() false, want 404 true", e.StatusCode)
	}
	if ready || res != nil {
		t.Errorf("Results of an unknown task: ready %v, %d results", ready, len(res))
	}
}

func TestServerErrorsAreTemporary(t *testing.T) {
	t.Parallel()
	c, _ := serveSandbox(t, sandbox.Config{ErrorRate: 1})
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"SubmitBatch", func() error {
			_, err := c.SubmitBatch(ctx, BatchRequest{Target: "universal", URLs: []string{"https://a.example/"}})
			return err
		}},
		{"Submit", func() error {
			_, err := c.Submit(ctx, json.RawMessage(`{"url":"https://a.example/"}`))
			return err
		}},
		{"Task", func() error { _, err := c.Task(ctx, "7434928397127555073"); return err }},
		{"Results", func() error { _, _, err := c.Results(ctx, "7434928397127555073"); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			e := apiError(t, err)
			if e.StatusCode < 500 || !e.Temporary() {
				t.Errorf("status %d Temporary() %v, want 5xx true", e.StatusCode, e.Temporary())
			}
			if e.RateLimited() || e.Auth() || e.Validation() || e.Gone() {
				t.Errorf("status %d classed as more than a server error: %+v", e.StatusCode, e)
			}
		})
	}
}

// A dropped connection is a transport error, neither an API answer nor a
// cancellation: callers send the request again.
func TestDroppedConnectionIsATransportError(t *testing.T) {
	t.Parallel()
	c, _ := serveSandbox(t, sandbox.Config{DropRate: 1})
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"SubmitBatch", func() error {
			_, err := c.SubmitBatch(ctx, BatchRequest{Target: "universal", URLs: []string{"https://a.example/"}})
			return err
		}},
		{"Task", func() error { _, err := c.Task(ctx, "7434928397127555073"); return err }},
		{"Results", func() error { _, _, err := c.Results(ctx, "7434928397127555073"); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("no error from a dropped connection")
			}
			var e *Error
			if errors.As(err, &e) {
				t.Fatalf("dropped connection gave an API error %v", e)
			}
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("dropped connection reported as the context's end: %v", err)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error text %q holds the token", err)
			}
		})
	}
}

func TestCancelledContextSendsNothingAndIsTheContextsError(t *testing.T) {
	t.Parallel()
	c, rec := serveSandbox(t, sandbox.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.SubmitBatch(ctx, BatchRequest{Target: "universal", URLs: []string{"https://a.example/"}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	var e *Error
	if errors.As(err, &e) {
		t.Errorf("cancelled request gave an API error %v", e)
	}
	if n := len(rec.exchanges()); n != 0 {
		t.Errorf("%d requests reached the server after cancel", n)
	}
}

func TestClientIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	c, _ := serveSandbox(t, sandbox.Config{})
	urls := make([]string, 40)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://a.example/%d", i)
	}
	resp := submitURLs(t, c, urls...)
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(resp.Tasks))
	for _, tk := range resp.Tasks {
		wg.Go(func() {
			got, err := c.Task(context.Background(), string(tk.ID))
			if err == nil && got.ID != tk.ID {
				err = fmt.Errorf("Task(%s) answered task %s", tk.ID, got.ID)
			}
			errs <- err
			res, ready, err := c.Results(context.Background(), string(tk.ID))
			if err == nil && (!ready || res[0].TaskID != string(tk.ID)) {
				err = fmt.Errorf("Results(%s): ready %v, %d results", tk.ID, ready, len(res))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestClientToleratesOddAnswers covers answers the sandbox does not give
// but the public record allows: an empty results list, an error body that is
// not JSON, a 2xx body that is not JSON.
func TestClientToleratesOddAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("empty results list is not ready", func(t *testing.T) {
		t.Parallel()
		c, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"results":[]}`)
		}), testToken)
		res, ready, err := c.Results(ctx, "7434928397127555073")
		if err != nil || ready || res != nil {
			t.Errorf("Results = %v, %v, %v; want nil, false, nil", res, ready, err)
		}
	})

	t.Run("HTML error page keeps status and Retry-After", func(t *testing.T) {
		t.Parallel()
		c, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>bad gateway</html>")
		}), testToken)
		_, err := c.Task(ctx, "7434928397127555073")
		e := apiError(t, err)
		if e.StatusCode != http.StatusBadGateway || e.Message != "Bad Gateway" || e.RetryAfter != 7*time.Second {
			t.Errorf("error = %+v, want 502 \"Bad Gateway\" RetryAfter 7s", e)
		}
		if !e.Temporary() {
			t.Error("502 is not Temporary")
		}
	})

	t.Run("undecodable 200 is an error", func(t *testing.T) {
		t.Parallel()
		c, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html>maintenance</html>")
		}), testToken)
		if tk, err := c.Task(ctx, "7434928397127555073"); err == nil {
			t.Errorf("Task = %+v, nil; want a decode error", tk)
		}
		// through net/http too (the POST): an *AnswerError, which the
		// batcher must not send again
		_, err := c.SubmitBatch(ctx, BatchRequest{Target: "universal", URLs: []string{"https://a.example"}})
		var ae *AnswerError
		if !errors.As(err, &ae) || ae.Op != "POST /v3/task/batch" {
			t.Errorf("SubmitBatch err = %v, want an *AnswerError", err)
		}
	})
}

func TestBatchRequestMarshalJSON(t *testing.T) {
	t.Parallel()
	// Strings that need escaping, or that the fast path must hand to
	// encoding/json: quotes, backslash, controls, HTML characters, non-ASCII,
	// U+2028, invalid UTF-8, DEL.
	tricky := []string{
		"https://a.example/plain",
		`https://a.example/?q="x"&y=\z`,
		"line\nbreak\ttab\x00nul\x1f",
		"<script>&amp;</script>",
		"café 東京 🍵",
		"sep\u2028arator",
		"bad\xffutf8",
		"del\x7f",
		"",
	}
	tests := []struct {
		name   string
		req    BatchRequest
		params map[string]any // expected keys besides target and the list
	}{
		{"urls without params", BatchRequest{Target: "universal", URLs: tricky}, nil},
		{"queries without params", BatchRequest{Target: "google_search", Queries: tricky}, nil},
		{"empty object params", BatchRequest{Target: "universal", URLs: tricky[:1], Params: json.RawMessage(`{}`)}, nil},
		{"empty object params with spaces", BatchRequest{Target: "universal", URLs: tricky[:1], Params: json.RawMessage(" {  \n } ")}, nil},
		{"params merged", BatchRequest{Target: "amazon_search", Queries: tricky,
			Params: json.RawMessage(` {"geo":"United States","parse":true,"page_count":3,"headers":{"X-A":"b\"c"}} `)},
			map[string]any{"geo": "United States", "parse": true, "page_count": float64(3), "headers": map[string]any{"X-A": `b"c`}}},
		{"tricky target", BatchRequest{Target: "uni\"versal", URLs: tricky[:1]}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := tt.req.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("invalid JSON: %q", b)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			// What encoding/json makes of the same values is the reference.
			want := map[string]any{}
			for k, v := range tt.params {
				want[k] = v
			}
			key, items := "url", tt.req.URLs
			if len(tt.req.Queries) > 0 {
				key, items = "query", tt.req.Queries
			}
			ref, _ := json.Marshal(map[string]any{"target": tt.req.Target, key: items})
			if err := json.Unmarshal(ref, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded body\n got %#v\nwant %#v\nfrom %s", got, want, b)
			}
			// encoding/json must be able to use the method too: it
			// validates what MarshalJSON returns.
			if _, err := json.Marshal(tt.req); err != nil {
				t.Errorf("json.Marshal: %v", err)
			}
		})
	}
}

func TestBatchRequestMarshalJSONRefusesNonObjectParams(t *testing.T) {
	t.Parallel()
	for _, params := range []string{`[]`, `[1,2]`, `"geo"`, `1`, `12`, `true`, `null`, `{"a":1`, `{"a":1}{"b":2}`, `{"a":}`} {
		t.Run(params, func(t *testing.T) {
			t.Parallel()
			req := BatchRequest{Target: "universal", URLs: []string{"https://a.example/"}, Params: json.RawMessage(params)}
			if b, err := req.MarshalJSON(); err == nil {
				t.Errorf("MarshalJSON with params %s = %s, want an error", params, b)
			}
		})
	}
}

func TestBatchResponseUnmarshalJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         string
		wantID     string
		wantTasks  []Task
		wantErrors int
	}{
		{
			name: "object form keeps an id above 2^53 exactly",
			in: `{"id": 7495756599328274433,
			 "queries": [{"id": "7495756599328274434", "query": "coffee", "status": "pending", "target": "google_search"},
			             {"id": "7495756599328274435", "query": "tea", "status": "pending", "target": "google_search"}],
			 "errors": []}`,
			wantID: "7495756599328274433",
			wantTasks: []Task{
				{ID: "7495756599328274434", Query: "coffee", Status: "pending", Target: "google_search"},
				{ID: "7495756599328274435", Query: "tea", Status: "pending", Target: "google_search"},
			},
		},
		{
			name:       "object form with errors",
			in:         `{"id":7495756599328274437,"queries":[],"errors":[{"field":"url[1]","message":"bad"},"plain"]}`,
			wantID:     "7495756599328274437",
			wantTasks:  []Task{},
			wantErrors: 2,
		},
		{
			name:   "object form with the id as a string",
			in:     `{"id":"7495756599328274433","queries":[{"id":"7495756599328274434","url":"https://a.example/"}]}`,
			wantID: "7495756599328274433",
			wantTasks: []Task{
				{ID: "7495756599328274434", URL: "https://a.example/"},
			},
		},
		{
			name:   "tasks key",
			in:     `{"id":7495756599328274433,"tasks":[{"id":"7495756599328274434","url":"https://a.example/","status":"pending"}]}`,
			wantID: "7495756599328274433",
			wantTasks: []Task{
				{ID: "7495756599328274434", URL: "https://a.example/", Status: "pending"},
			},
		},
		{
			name: "array form",
			in: ` [{"id":"7495756599328274434","url":"https://a.example/","status":"pending","created_at":"2026-03-04 11:51:04"},
			       {"id":7495756599328274435,"url":"https://b.example/","status":"pending"}]`,
			wantTasks: []Task{
				{ID: "7495756599328274434", URL: "https://a.example/", Status: "pending", CreatedAt: "2026-03-04 11:51:04"},
				{ID: "7495756599328274435", URL: "https://b.example/", Status: "pending"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r BatchResponse
			if err := json.Unmarshal([]byte(tt.in), &r); err != nil {
				t.Fatal(err)
			}
			if r.ID != tt.wantID {
				t.Errorf("ID = %q, want %q", r.ID, tt.wantID)
			}
			if !slices.Equal(r.Tasks, tt.wantTasks) {
				t.Errorf("Tasks = %+v\nwant %+v", r.Tasks, tt.wantTasks)
			}
			if len(r.Errors) != tt.wantErrors {
				t.Errorf("Errors = %s, want %d", r.Errors, tt.wantErrors)
			}
		})
	}
	t.Run("malformed is an error", func(t *testing.T) {
		t.Parallel()
		for _, in := range []string{`{"id":`, `[{"id":}]`, `{"queries":{}}`, `{"id":true,"queries":[]}`, `[{"id":false}]`, `{"queries":[{"id":"1"}]} x`} {
			var r BatchResponse
			if err := json.Unmarshal([]byte(in), &r); err == nil {
				t.Errorf("Unmarshal(%s) = nil error, %+v", in, r)
			}
		}
	})
}

func TestTaskUnmarshalJSONKeepsIDsExactly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Task
	}{
		{"numeric id above 2^53",
			`{"id":7434928397127555073,"status":"done","target":"universal","url":"https://ip.decodo.com","query":"","page_from":1,"geo":null}`,
			Task{ID: "7434928397127555073", Status: "done", Target: "universal", URL: "https://ip.decodo.com"}},
		{"string id",
			`{"id":"7434928397127555073","status":"faulted","query":"coffee","created_at":"2026-03-04 11:51:04","updated_at":"2026-03-04 11:51:09"}`,
			Task{ID: "7434928397127555073", Status: "faulted", Query: "coffee", CreatedAt: "2026-03-04 11:51:04", UpdatedAt: "2026-03-04 11:51:09"}},
		{"no id", `{"status":"pending"}`, Task{Status: "pending"}},
		{"null id", `{"id":null,"status":"pending"}`, Task{Status: "pending"}},
		{"escaped string id", `{"id":"74349\u0032","url":"https://a.example/\u00e9"}`, Task{ID: "743492", URL: "https://a.example/é"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got Task
			if err := json.Unmarshal([]byte(tt.in), &got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	for _, in := range []string{`{"id":true}`, `{"id":{}}`, `{"id":[1]}`, `{"id":"1","status":2}`, `{"id":1`} {
		var got Task
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("Unmarshal(%s) = %+v, nil; want an error", in, got)
		}
	}
}

func TestTaskItemIsURLOrQuery(t *testing.T) {
	t.Parallel()
	if got := (&Task{URL: "https://a.example/"}).Item(); got != "https://a.example/" {
		t.Errorf("Item() of a url task = %q", got)
	}
	if got := (&Task{Query: "coffee"}).Item(); got != "coffee" {
		t.Errorf("Item() of a query task = %q", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 11, 51, 4, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{"none", "", 0},
		{"seconds", "5", 5 * time.Second},
		{"seconds with spaces", " 120 ", 2 * time.Minute},
		{"zero", "0", 0},
		{"negative", "-3", 0},
		{"HTTP date ahead", now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{"HTTP date passed", now.Add(-30 * time.Second).Format(http.TimeFormat), 0},
		{"HTTP date now", now.Format(http.TimeFormat), 0},
		{"garbage", "soon", 0},
		{"garbage date", "Wed, 32 Foo 2026 99:99:99 GMT", 0},
		{"infinity", "Inf", 0},
		{"not a number", "NaN", 0},
		{"beyond a Duration", "1e300", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestNewChecksEndpointAndToken(t *testing.T) {
	t.Parallel()
	const token = "c2VjcmV0LXVzZXI6c2VjcmV0LXBhc3M=" // base64("secret-user:secret-pass")
	tests := []struct {
		name     string
		endpoint string
		token    string
		ok       bool
		insecure bool // the error is ErrInsecureEndpoint
	}{
		{"https default", DefaultEndpoint, token, true, false},
		{"https any host", "https://10.0.0.7:8443/", token, true, false},
		{"http 127.0.0.1", "http://127.0.0.1:8080", token, true, false},
		{"http 127.0.0.2", "http://127.0.0.2", token, true, false},
		{"http localhost", "http://localhost:8080", token, true, false},
		{"http ::1", "http://[::1]:8080", token, true, false},
		{"http public host", "http://scraper-api.decodo.com", token, false, true},
		{"http private address", "http://10.0.0.7:8080", token, false, true},
		{"http localhost lookalike", "http://localhost.evil.example", token, false, true},
		{"http 0.0.0.0", "http://0.0.0.0:8080", token, false, true},
		{"ftp", "ftp://scraper-api.decodo.com", token, false, false},
		{"no scheme", "scraper-api.decodo.com", token, false, false},
		{"no host", "https://", token, false, false},
		{"empty endpoint", "", token, false, false},
		{"empty token", DefaultEndpoint, "", false, false},
		{"empty token on loopback", "http://127.0.0.1:8080", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.endpoint, tt.token, Config{})
			if tt.ok {
				if err != nil || c == nil {
					t.Fatalf("New(%q) = %v, %v; want a client", tt.endpoint, c, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New(%q, %q) = nil error, want one", tt.endpoint, tt.token)
			}
			if got := errors.Is(err, ErrInsecureEndpoint); got != tt.insecure {
				t.Errorf("New(%q): errors.Is(%v, ErrInsecureEndpoint) = %v, want %v", tt.endpoint, err, got, tt.insecure)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error text %q holds the token", err)
			}
		})
	}
}

func TestErrorPredicatesFollowStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status                                     int
		auth, limited, temporary, validation, gone bool
	}{
		{400, false, false, false, true, false},
		{401, true, false, false, false, false},
		{403, true, false, false, false, false},
		{404, false, false, false, false, true},
		{410, false, false, false, false, true},
		{413, false, false, false, false, false},
		{422, false, false, false, true, false},
		{429, false, true, true, false, false},
		{500, false, false, true, false, false},
		{502, false, false, true, false, false},
		{503, false, false, true, false, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			e := &Error{StatusCode: tt.status}
			got := [5]bool{e.Auth(), e.RateLimited(), e.Temporary(), e.Validation(), e.Gone()}
			want := [5]bool{tt.auth, tt.limited, tt.temporary, tt.validation, tt.gone}
			if got != want {
				t.Errorf("[Auth RateLimited Temporary Validation Gone] = %v, want %v", got, want)
			}
			var wrapped *Error
			if !errors.As(fmt.Errorf("wrapped: %w", e), &wrapped) || wrapped.Temporary() != tt.temporary {
				t.Errorf("errors.As through a wrap: %v, Temporary() want %v", wrapped, tt.temporary)
			}
		})
	}
}

func TestErrorTextNamesOpStatusMessageAndItems(t *testing.T) {
	t.Parallel()
	e := &Error{StatusCode: 400, Op: "POST /v3/task/batch", Message: "2 invalid fields", Errors: []string{"url[0] bad", "url[3] bad"}}
	msg := e.Error()
	for _, part := range []string{"POST /v3/task/batch", "400", "2 invalid fields", "url[0] bad", "url[3] bad"} {
		if !strings.Contains(msg, part) {
			t.Errorf("Error() = %q lacks %q", msg, part)
		}
	}
}

func TestBackoffDelayStaysInBounds(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	tests := []struct {
		name     string
		b        Backoff
		n        int
		min, max time.Duration
	}{
		{"zero backoff never waits", Backoff{}, 5, 0, 0},
		{"zero base never waits", Backoff{Max: time.Second}, 5, 0, 0},
		{"retry 0 is like retry 1", Backoff{Base: 100 * ms, Max: time.Second}, 0, 50 * ms, 100 * ms},
		{"retry 1", Backoff{Base: 100 * ms, Max: time.Second}, 1, 50 * ms, 100 * ms},
		{"retry 2 doubles", Backoff{Base: 100 * ms, Max: time.Second}, 2, 100 * ms, 200 * ms},
		{"retry 4", Backoff{Base: 100 * ms, Max: time.Second}, 4, 400 * ms, 800 * ms},
		{"retry 5 capped", Backoff{Base: 100 * ms, Max: time.Second}, 5, 500 * ms, time.Second},
		{"retry 1000 capped", Backoff{Base: 100 * ms, Max: time.Second}, 1000, 500 * ms, time.Second},
		{"base above max capped", Backoff{Base: 5 * time.Second, Max: time.Second}, 1, 500 * ms, time.Second},
		{"default, late retry", DefaultBackoff, 64, DefaultBackoff.Max / 2, DefaultBackoff.Max},
		{"odd base", Backoff{Base: 3, Max: 1000}, 1, 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			seen := map[time.Duration]bool{}
			for range 500 {
				d := tt.b.Delay(tt.n)
				if d < tt.min || d > tt.max {
					t.Fatalf("Delay(%d) = %v, want within [%v, %v]", tt.n, d, tt.min, tt.max)
				}
				seen[d] = true
			}
			// Jitter: 500 draws from a range this wide are not all equal.
			if tt.max-tt.min >= ms && len(seen) < 2 {
				t.Errorf("Delay(%d) always %v: no jitter", tt.n, tt.b.Delay(tt.n))
			}
		})
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	t.Run("returns the context's error when cancelled during the wait", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Sleep(ctx, time.Hour) }()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Sleep = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Sleep ignored the cancelled context")
		}
	})
	t.Run("returns the deadline's error", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- Sleep(ctx, time.Hour) }()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Sleep = %v, want context.DeadlineExceeded", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Sleep ignored the context's deadline")
		}
	})
	t.Run("no wait on a done context still reports it", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, d := range []time.Duration{0, -time.Second} {
			if err := Sleep(ctx, d); !errors.Is(err, context.Canceled) {
				t.Errorf("Sleep(%v) = %v, want context.Canceled", d, err)
			}
		}
	})
	t.Run("returns nil when the wait ends", func(t *testing.T) {
		t.Parallel()
		if err := Sleep(context.Background(), time.Millisecond); err != nil {
			t.Errorf("Sleep = %v, want nil", err)
		}
		if err := Sleep(context.Background(), 0); err != nil {
			t.Errorf("Sleep(0) = %v, want nil", err)
		}
	})
}

func TestNewRefusesLineBreaksInHeaders(t *testing.T) {
	t.Parallel()
	for _, tok := range []string{"abc\r\nX-Evil: 1", "abc\n", "a\x00b"} {
		if _, err := New("https://scraper-api.decodo.com", tok, Config{}); err == nil {
			t.Errorf("token %q accepted", tok)
		}
	}
	if _, err := New("https://scraper-api.decodo.com", "tok", Config{Version: "1\r\n"}); err == nil {
		t.Error("version with a line break accepted")
	}
}

// TestNewKeepsAnIdleConnectionPerWorker proves the transport keeps at least
// one idle connection per concurrent request (the default keeps two per
// host, so most polls would dial), and still allows HTTP/2.
func TestNewKeepsAnIdleConnectionPerWorker(t *testing.T) {
	t.Parallel()
	for _, conns := range []int{0, 1, 32, 500} {
		c, err := New(DefaultEndpoint, testToken, Config{Conns: conns})
		if err != nil {
			t.Fatal(err)
		}
		tr := c.http.Transport.(*http.Transport)
		want := conns
		if want == 0 {
			want = 32 // the default
		}
		if tr.MaxIdleConnsPerHost < want || tr.MaxIdleConns < want || !tr.ForceAttemptHTTP2 {
			t.Errorf("Conns %d: MaxIdleConnsPerHost %d MaxIdleConns %d ForceAttemptHTTP2 %v, want >= %d, >= %d, true",
				conns, tr.MaxIdleConnsPerHost, tr.MaxIdleConns, tr.ForceAttemptHTTP2, want, want)
		}
	}
}

// TestResultsContentIsCompact proves that a content the API sends
// pretty-printed (spaces, tabs and line breaks between its tokens) comes
// back compact, through the fast reader and through encoding/json, so that
// each result fits on one line of results.jsonl; and that a task_id may be
// a number.
func TestResultsContentIsCompact(t *testing.T) {
	t.Parallel()
	contents := []string{
		"{\n  \"title\" : \"a  b\\n c\",\n\t\"items\": [ 1, 2.5e3 ,true,\r\n null, \"x y\" ],\n  \"nested\": { \"k\": [ ] , \"e\" : { } }\n}",
		"[\n   \"page 2\",\n   { \"a\" : 1 }\n]",
		"\"<html>\\n  <body> </body>\\n</html>\"",
		"  42 ",
	}
	var answer strings.Builder
	answer.WriteString("{\n  \"%s\" : [\n")
	for i, c := range contents {
		if i > 0 {
			answer.WriteString(" ,\n")
		}
		fmt.Fprintf(&answer, "    {\n      \"content\" :\t%s ,\n      \"status_code\": 200,\n      \"task_id\": %d\n    }", c, 7434928397127555073+i)
	}
	answer.WriteString("\n  ]\n}\n")
	for _, tt := range []struct{ name, key string }{
		{"fast reader", "results"},
		{"encoding/json", `res\u0075lts`}, // an escaped key: the fast reader hands over
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := fmt.Sprintf(answer.String(), tt.key)
			if !json.Valid([]byte(body)) {
				t.Fatalf("test answer is not JSON:\n%s", body)
			}
			if _, err := scanResults([]byte(body)); (err == nil) != (tt.key == "results") {
				t.Fatalf("scanResults err = %v: the answer does not take the path under test", err)
			}
			c, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, body)
			}), testToken)
			res, ready, err := c.Results(context.Background(), "7434928397127555073")
			if err != nil || !ready || len(res) != len(contents) {
				t.Fatalf("Results = %d results, %v, %v; want %d, true, nil", len(res), ready, err, len(contents))
			}
			for i, r := range res {
				var want bytes.Buffer
				if err := json.Compact(&want, []byte(contents[i])); err != nil {
					t.Fatal(err)
				}
				if bytes.ContainsAny(r.Content, "\r\n") || !json.Valid(r.Content) || !bytes.Equal(r.Content, want.Bytes()) {
					t.Errorf("result %d content %q, want %q", i, r.Content, want.Bytes())
				}
				if wantID := fmt.Sprint(7434928397127555073 + i); r.TaskID != wantID {
					t.Errorf("result %d task_id %q, want %s", i, r.TaskID, wantID)
				}
			}
		})
	}
}

// BenchmarkResults measures one poll, Client.Results through net/http,
// against a loopback server in this process: the server's share is in
// each op too.
func BenchmarkResults(b *testing.B) {
	body := `{"results":[{"content":"` + strings.Repeat("lorem ipsum ", 100) + `","status_code":200,"url":"https://example.com/p/1","task_id":"7434928397127555073","updated_at":"2026-11-28 10:00:00"}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	defer srv.Close()
	c, err := New(srv.URL, "dG9r", Config{Conns: 16})
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ready, err := c.Results(context.Background(), "7434928397127555073"); err != nil || !ready {
				b.Error(err)
				return
			}
		}
	})
}

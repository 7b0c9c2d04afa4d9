package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testToken is base64("user:pass"), the form of a dashboard token.
const testToken = "dXNlcjpwYXNz"

var (
	taskIDPattern = regexp.MustCompile(`^[0-9]{19}$`)
	rawBatchID    = regexp.MustCompile(`^\{"id":([0-9]+),`)
)

// fakeClock is a settable clock for Config.Now.
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

// start serves a new sandbox for the test's lifetime.
func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s := New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts.URL
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// call makes one request with a plain client. body is sent as is when it
// is a string, as JSON otherwise.
func call(t *testing.T, method, url, token string, body any) answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Basic "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

type taskObject struct {
	ID          string          `json:"id"`
	Status      string          `json:"status"`
	Target      string          `json:"target"`
	URL         string          `json:"url"`
	Query       string          `json:"query"`
	PageFrom    *int            `json:"page_from"`
	PageCount   int             `json:"page_count"`
	DeviceType  string          `json:"device_type"`
	Parse       bool            `json:"parse"`
	CreatedAt   string          `json:"created_at"`
	UpdatedAt   string          `json:"updated_at"`
	Passthrough json.RawMessage `json:"passthrough"`
	Passtrough  json.RawMessage `json:"passtrough"`
}

type batchObject struct {
	ID      json.Number         `json:"id"`
	Queries []taskObject        `json:"queries"`
	Errors  []map[string]string `json:"errors"`
}

type errorBody struct {
	Status  string              `json:"status"`
	Message string              `json:"message"`
	Errors  []map[string]string `json:"errors"`
}

type resultsBody struct {
	Results []struct {
		Content    json.RawMessage   `json:"content"`
		StatusCode int               `json:"status_code"`
		URL        string            `json:"url"`
		Query      string            `json:"query"`
		TaskID     string            `json:"task_id"`
		Headers    map[string]string `json:"headers"`
		Cookies    []any             `json:"cookies"`
		CreatedAt  string            `json:"created_at"`
		UpdatedAt  string            `json:"updated_at"`
	} `json:"results"`
}

func decode[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	d := json.NewDecoder(bytes.NewReader(a.body))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %T from %d %s: %v", v, a.status, a.body, err)
	}
	return v
}

// wantError checks an answer is a JSON error of the given status.
func wantError(t *testing.T, a answer, status int) errorBody {
	t.Helper()
	if a.status != status {
		t.Fatalf("status = %d, want %d; body %s", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	e := decode[errorBody](t, a)
	if e.Status == "" || e.Message == "" || e.Errors == nil {
		t.Errorf("error body %s lacks status, message or errors", a.body)
	}
	return e
}

func urls(n int) []string {
	u := make([]string, n)
	for i := range u {
		u[i] = fmt.Sprintf("https://shop.example/item/%d?ref=a&b=%d", i, i)
	}
	return u
}

// submitOne creates one task through POST /v3/task and returns its id.
func submitOne(t *testing.T, base string, body map[string]any) string {
	t.Helper()
	a := call(t, "POST", base+"/v3/task", testToken, body)
	if a.status != 200 {
		t.Fatalf("POST /v3/task: %d %s", a.status, a.body)
	}
	return decode[taskObject](t, a).ID
}

func TestAuthRefusesMissingOrWrongToken(t *testing.T) {
	t.Parallel()
	_, base := start(t, Config{Tokens: []string{testToken}})
	batch := map[string]any{"url": []string{"https://a.example/"}}
	tests := []struct {
		name, header string
	}{
		{"no header", ""},
		{"wrong token", "Basic d3Jvbmc6d3Jvbmc="},
		{"empty token", "Basic "},
		{"bearer scheme", "Bearer " + testToken},
	}
	for _, tt := range tests {
		for _, ep := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/v3/task/batch", batch},
			{"POST", "/v3/task", map[string]any{"url": "https://a.example/"}},
			{"GET", "/v3/task/7434928397127555073", nil},
			{"GET", "/v3/task/7434928397127555073/results", nil},
		} {
			t.Run(tt.name+" "+ep.method+" "+ep.path, func(t *testing.T) {
				j, _ := json.Marshal(ep.body)
				req, _ := http.NewRequest(ep.method, base+ep.path, bytes.NewReader(j))
				if tt.header != "" {
					req.Header.Set("Authorization", tt.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				wantError(t, answer{resp.StatusCode, resp.Header, b}, http.StatusUnauthorized)
			})
		}
	}
	t.Run("right token passes", func(t *testing.T) {
		a := call(t, "GET", base+"/v3/task/7434928397127555073", testToken, nil)
		wantError(t, a, http.StatusNotFound) // authenticated, then not found
	})
}

func TestBatchAnswersTasksInBothForms(t *testing.T) {
	t.Parallel()
	for _, array := range []bool{false, true} {
		t.Run(fmt.Sprintf("array=%v", array), func(t *testing.T) {
			t.Parallel()
			clock := newClock()
			_, base := start(t, Config{ArrayResponse: array, Now: clock.Now})
			in := []string{"https://a.example/1", "https://b.example/2?x=1&y=2", "https://c.example/3"}
			a := call(t, "POST", base+"/v3/task/batch", testToken,
				map[string]any{"url": in, "geo": "United States", "passthrough": "p-1"})
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			var tasks []taskObject
			var batchID uint64
			if array {
				tasks = decode[[]taskObject](t, a)
			} else {
				b := decode[batchObject](t, a)
				// The id is a bare number, decoded exactly through json.Number.
				m := rawBatchID.FindSubmatch(a.body)
				if m == nil {
					t.Fatalf("batch id is not a bare JSON number: %.80s", a.body)
				}
				if b.ID.String() != string(m[1]) {
					t.Fatalf("json.Number %s != literal %s", b.ID, m[1])
				}
				id, err := strconv.ParseUint(b.ID.String(), 10, 64)
				if err != nil || id <= 1<<53 {
					t.Fatalf("batch id %s: want an integer above 2^53 (err %v)", b.ID, err)
				}
				if b.Errors == nil || len(b.Errors) != 0 {
					t.Errorf("errors = %v, want []", b.Errors)
				}
				batchID, tasks = id, b.Queries
			}
			if len(tasks) != len(in) {
				t.Fatalf("%d tasks for %d urls", len(tasks), len(in))
			}
			seen := map[string]bool{strconv.FormatUint(batchID, 10): true}
			for i, tk := range tasks {
				if !taskIDPattern.MatchString(tk.ID) || seen[tk.ID] {
					t.Errorf("task %d id %q: want a unique string of 19 digits", i, tk.ID)
				}
				seen[tk.ID] = true
				if tk.URL != in[i] || tk.Query != "" || tk.Target != "universal" || tk.Status != "pending" {
					t.Errorf("task %d = %+v, want url %q, no query, universal, pending", i, tk, in[i])
				}
				if tk.CreatedAt != "2026-03-04 11:51:04" || tk.UpdatedAt != tk.CreatedAt {
					t.Errorf("task %d times %q %q, want 2026-03-04 11:51:04", i, tk.CreatedAt, tk.UpdatedAt)
				}
				if tk.PageFrom == nil || *tk.PageFrom != 1 || tk.DeviceType != "desktop" || tk.PageCount != 1 {
					t.Errorf("task %d lacks the example object's defaults: %+v", i, tk)
				}
				if string(tk.Passthrough) != `"p-1"` {
					t.Errorf("task %d passthrough %s, want \"p-1\"", i, tk.Passthrough)
				}
			}
			if !bytes.Contains(a.body, []byte(`"geo":"United States"`)) {
				t.Errorf("geo not echoed: %.300s", a.body)
			}
		})
	}
	t.Run("query target", func(t *testing.T) {
		t.Parallel()
		_, base := start(t, Config{})
		a := call(t, "POST", base+"/v3/task/batch", testToken,
			map[string]any{"target": "google_search", "query": []string{"coffee", "tea"}})
		b := decode[batchObject](t, a)
		if len(b.Queries) != 2 || b.Queries[0].Query != "coffee" || b.Queries[1].Query != "tea" ||
			b.Queries[0].URL != "" || b.Queries[0].Target != "google_search" {
			t.Fatalf("queries = %+v", b.Queries)
		}
	})
}

func TestBatchPacingAnswers429InsideInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		interval   time.Duration
		after      time.Duration // time from the accepted batch to the second one
		want       int
		retryAfter string
	}{
		{"at once", 0, 0, 429, "1"},
		{"just inside", 0, 999 * time.Millisecond, 429, "1"},
		{"at the interval", 0, time.Second, 200, ""},
		{"long interval rounds up", 2500 * time.Millisecond, 400 * time.Millisecond, 429, "3"},
		{"long interval later", 2500 * time.Millisecond, 1600 * time.Millisecond, 429, "1"},
		{"no limit", -1, 0, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newClock()
			s, base := start(t, Config{BatchInterval: tt.interval, Now: clock.Now})
			body := map[string]any{"url": urls(2)}
			if a := call(t, "POST", base+"/v3/task/batch", testToken, body); a.status != 200 {
				t.Fatalf("first batch: %d %s", a.status, a.body)
			}
			clock.Advance(tt.after)
			a := call(t, "POST", base+"/v3/task/batch", testToken, body)
			if tt.want == 200 {
				if a.status != 200 {
					t.Fatalf("second batch: %d %s", a.status, a.body)
				}
				if n := s.Stats().TasksCreated; n != 4 {
					t.Fatalf("tasks created = %d, want 4", n)
				}
				return
			}
			wantError(t, a, tt.want)
			if got := a.header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if st := s.Stats(); st.TasksCreated != 2 || st.Batches != 1 {
				t.Errorf("refused batch created tasks: %+v", st)
			}
		})
	}
	t.Run("per token", func(t *testing.T) {
		t.Parallel()
		clock := newClock()
		_, base := start(t, Config{Tokens: []string{testToken, "b3RoZXI6b3RoZXI="}, Now: clock.Now})
		body := map[string]any{"url": urls(1)}
		if a := call(t, "POST", base+"/v3/task/batch", testToken, body); a.status != 200 {
			t.Fatalf("first token: %d", a.status)
		}
		if a := call(t, "POST", base+"/v3/task/batch", "b3RoZXI6b3RoZXI=", body); a.status != 200 {
			t.Fatalf("second token paced by the first: %d %s", a.status, a.body)
		}
	})
	t.Run("refused batch does not reset the interval", func(t *testing.T) {
		t.Parallel()
		clock := newClock()
		_, base := start(t, Config{Now: clock.Now})
		body := map[string]any{"url": urls(1)}
		call(t, "POST", base+"/v3/task/batch", testToken, body)
		clock.Advance(600 * time.Millisecond)
		if a := call(t, "POST", base+"/v3/task/batch", testToken, body); a.status != 429 {
			t.Fatalf("inside: %d", a.status)
		}
		clock.Advance(400 * time.Millisecond)
		if a := call(t, "POST", base+"/v3/task/batch", testToken, body); a.status != 200 {
			t.Fatalf("1s after the accepted batch: %d %s", a.status, a.body)
		}
	})
}

func TestBatchItemLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		maxItems int
		n        int
		want     int
	}{
		{"3000 accepted", 0, 3000, 200},
		{"3001 refused", 0, 3001, 400},
		{"configured limit accepted", 5, 5, 200},
		{"configured limit refused", 5, 6, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, base := start(t, Config{MaxItems: tt.maxItems})
			a := call(t, "POST", base+"/v3/task/batch", testToken, map[string]any{"url": urls(tt.n)})
			if tt.want == 200 {
				b := decode[batchObject](t, a)
				if a.status != 200 || len(b.Queries) != tt.n {
					t.Fatalf("status %d, %d tasks; want 200 and %d", a.status, len(b.Queries), tt.n)
				}
				return
			}
			e := wantError(t, a, tt.want)
			if !strings.Contains(e.Message, strconv.Itoa(tt.n)) {
				t.Errorf("message %q does not name the count %d", e.Message, tt.n)
			}
			if n := s.Stats().TasksCreated; n != 0 {
				t.Errorf("refused batch created %d tasks", n)
			}
		})
	}
}

func TestInvalidItemsRefuseTheWholeBatch(t *testing.T) {
	t.Parallel()
	long := "https://a.example/" + strings.Repeat("x", maxURLLen-len("https://a.example/")+1)
	tests := []struct {
		name      string
		body      string
		wantField string // an errors entry names this field
		wantValue string // and quotes this value
	}{
		{"url and query", `{"url":["https://a.example/"],"query":["coffee"]}`, "query", ""},
		{"neither url nor query", `{"target":"universal"}`, "url", ""},
		{"bad scheme named", `{"url":["https://a.example/","ftp://b.example/f"]}`, "url[1]", "ftp://b.example/f"},
		{"relative url named", `{"url":["/just/a/path"]}`, "url[0]", "/just/a/path"},
		{"no host", `{"url":["https://"]}`, "url[0]", "https://"},
		{"url too long", `{"url":["` + long + `"]}`, "url[0]", ""},
		{"query too long", `{"target":"google_search","query":["` + strings.Repeat("q", maxQueryLen+1) + `"]}`, "query[0]", ""},
		{"empty query", `{"target":"google_search","query":["coffee","  "]}`, "query[1]", ""},
		{"sandbox-invalid hook", `{"url":["https://a.example/","https://b.example/sandbox-invalid","https://c.example/"]}`, "url[1]", "https://b.example/sandbox-invalid"},
		{"unknown target", `{"target":"nope","url":["https://a.example/"]}`, "target", "nope"},
		{"two targets", `{"target":["universal","google"],"url":["https://a.example/"]}`, "target", ""},
		{"query for a url target", `{"target":"amazon","query":["coffee"]}`, "query", ""},
		{"url for a query target", `{"target":"google_search","url":["https://a.example/"]}`, "url", ""},
		{"empty array", `{"url":[]}`, "url", ""},
		{"url not an array", `{"url":"https://a.example/"}`, "url", ""},
		{"page_count out of range", `{"target":"google","url":["https://a.example/"],"page_count":11}`, "page_count", "11"},
		{"parse not a bool", `{"target":"google","url":["https://a.example/"],"parse":"yes"}`, "parse", ""},
		{"body not an object", `["https://a.example/"]`, "body", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, base := start(t, Config{})
			e := wantError(t, call(t, "POST", base+"/v3/task/batch", testToken, tt.body), http.StatusBadRequest)
			found := false
			for _, item := range e.Errors {
				if item["field"] == tt.wantField && (tt.wantValue == "" || item["value"] == tt.wantValue) {
					found = true
				}
			}
			if !found {
				t.Errorf("errors %v do not name %s %q", e.Errors, tt.wantField, tt.wantValue)
			}
			if tt.wantValue != "" && !strings.Contains(e.Message, tt.wantValue) {
				t.Errorf("message %q does not quote %q", e.Message, tt.wantValue)
			}
			if n := s.Stats().TasksCreated; n != 0 {
				t.Errorf("refused batch created %d tasks", n)
			}
		})
	}
	t.Run("every bad item is named", func(t *testing.T) {
		t.Parallel()
		_, base := start(t, Config{})
		in := urls(10)
		in[2], in[7] = "mailto:x@y.example", "https://z.example/sandbox-invalid"
		e := wantError(t, call(t, "POST", base+"/v3/task/batch", testToken, map[string]any{"url": in}), 400)
		var fields []string
		for _, item := range e.Errors {
			fields = append(fields, item["field"])
		}
		if !slices.Equal(fields, []string{"url[2]", "url[7]"}) {
			t.Errorf("errors name %v, want [url[2] url[7]]", fields)
		}
	})
	t.Run("limits themselves are accepted", func(t *testing.T) {
		t.Parallel()
		_, base := start(t, Config{BatchInterval: -1})
		okURL := "https://a.example/" + strings.Repeat("x", maxURLLen-len("https://a.example/"))
		if a := call(t, "POST", base+"/v3/task/batch", testToken, map[string]any{"url": []string{okURL}}); a.status != 200 {
			t.Errorf("url of %d characters: %d %s", maxURLLen, a.status, a.body)
		}
		q := strings.Repeat("é", maxQueryLen) // characters, not bytes
		if a := call(t, "POST", base+"/v3/task/batch", testToken, map[string]any{"target": "google_search", "query": []string{q}}); a.status != 200 {
			t.Errorf("query of %d characters: %d %.200s", maxQueryLen, a.status, a.body)
		}
	})
}

func TestResultsAre204WhilePendingThen200(t *testing.T) {
	t.Parallel()
	clock := newClock()
	_, base := start(t, Config{Delay: Delay{Fixed: 10 * time.Second}, Now: clock.Now})
	u := "https://a.example/page?q=1&r=\"2\""
	id := submitOne(t, base, map[string]any{"url": u})

	for _, at := range []time.Duration{0, 9999 * time.Millisecond} {
		clock.Advance(at)
		a := call(t, "GET", base+"/v3/task/"+id+"/results", testToken, nil)
		if a.status != 204 || len(a.body) != 0 {
			t.Fatalf("pending results: %d %q, want 204 with no body", a.status, a.body)
		}
		if tk := decode[taskObject](t, call(t, "GET", base+"/v3/task/"+id, testToken, nil)); tk.Status != "pending" {
			t.Fatalf("status %q, want pending", tk.Status)
		}
	}
	clock.Advance(time.Millisecond)
	a := call(t, "GET", base+"/v3/task/"+id+"/results", testToken, nil)
	if a.status != 200 {
		t.Fatalf("done results: %d %s", a.status, a.body)
	}
	r := decode[resultsBody](t, a)
	if len(r.Results) != 1 {
		t.Fatalf("%d results, want 1", len(r.Results))
	}
	e := r.Results[0]
	var content string
	if err := json.Unmarshal(e.Content, &content); err != nil {
		t.Fatalf("content is not a string: %v", err)
	}
	if !strings.Contains(content, u) || len(content) < 1000 || len(content) > 1200 {
		t.Errorf("content (%d bytes) should hold %q and be about 1 KiB", len(content), u)
	}
	if e.StatusCode != 200 || e.URL != u || e.TaskID != id || e.Headers["content-type"] == "" || e.Cookies == nil {
		t.Errorf("result entry = %+v", e)
	}
	if e.CreatedAt != "2026-03-04 11:51:04" || e.UpdatedAt != "2026-03-04 11:51:14" {
		t.Errorf("times %q %q, want created 11:51:04, updated 11:51:14", e.CreatedAt, e.UpdatedAt)
	}
	tk := decode[taskObject](t, call(t, "GET", base+"/v3/task/"+id, testToken, nil))
	if tk.Status != "done" || tk.ID != id || tk.UpdatedAt != "2026-03-04 11:51:14" {
		t.Errorf("task object after completion = %+v", tk)
	}
	// Results can be fetched again.
	if again := call(t, "GET", base+"/v3/task/"+id+"/results", testToken, nil); !bytes.Equal(again.body, a.body) {
		t.Errorf("second fetch differs")
	}
}

func TestResultShapesFollowParameters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    map[string]any
		entries int
		check   func(t *testing.T, content json.RawMessage, url, query string)
	}{
		{"pages", map[string]any{"target": "google", "url": "https://a.example/", "page_count": 3}, 3,
			func(t *testing.T, c json.RawMessage, url, _ string) {
				if url != "https://a.example/" || !bytes.Contains(c, []byte("a.example")) {
					t.Errorf("entry url %q content %.80s", url, c)
				}
			}},
		{"query echoed", map[string]any{"target": "google_search", "query": "iced coffee"}, 1,
			func(t *testing.T, c json.RawMessage, url, query string) {
				if query != "iced coffee" || url != "" || !bytes.Contains(c, []byte("iced coffee")) {
					t.Errorf("entry url %q query %q content %.80s", url, query, c)
				}
			}},
		{"parse gives an object", map[string]any{"target": "google_search", "query": "tea", "parse": true}, 1,
			func(t *testing.T, c json.RawMessage, _, _ string) {
				var obj map[string]any
				if err := json.Unmarshal(c, &obj); err != nil || obj["query"] != "tea" {
					t.Errorf("content %.120s is not an object naming the query (%v)", c, err)
				}
			}},
		{"markdown", map[string]any{"url": "https://a.example/md", "markdown": true}, 1,
			func(t *testing.T, c json.RawMessage, _, _ string) {
				var s string
				if err := json.Unmarshal(c, &s); err != nil || !strings.HasPrefix(s, "# ") || !strings.Contains(s, "https://a.example/md") {
					t.Errorf("content %.80s is not markdown naming the url (%v)", c, err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, base := start(t, Config{})
			id := submitOne(t, base, tt.body)
			r := decode[resultsBody](t, call(t, "GET", base+"/v3/task/"+id+"/results", testToken, nil))
			if len(r.Results) != tt.entries {
				t.Fatalf("%d entries, want %d", len(r.Results), tt.entries)
			}
			for _, e := range r.Results {
				tt.check(t, e.Content, e.URL, e.Query)
			}
		})
	}
}

func TestFaultedTasks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode FaultMode
	}{
		{"no content", FaultNoContent},
		{"error", FaultError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, base := start(t, Config{FaultRate: 1, FaultMode: tt.mode})
			id := submitOne(t, base, map[string]any{"url": "https://a.example/"})
			tk := decode[taskObject](t, call(t, "GET", base+"/v3/task/"+id, testToken, nil))
			if tk.Status != "faulted" {
				t.Fatalf("status %q, want faulted", tk.Status)
			}
			a := call(t, "GET", base+"/v3/task/"+id+"/results", testToken, nil)
			switch tt.mode {
			case FaultNoContent:
				if a.status != 204 || len(a.body) != 0 {
					t.Errorf("results: %d %q, want 204 with no body", a.status, a.body)
				}
			case FaultError:
				if a.status != 400 && a.status != 500 {
					t.Fatalf("results: %d, want 400 or 500", a.status)
				}
				wantError(t, a, a.status)
			}
			if st := s.Stats(); st.TasksFaulted != 1 || st.TasksDone != 0 {
				t.Errorf("stats faulted %d done %d, want 1 and 0", st.TasksFaulted, st.TasksDone)
			}
		})
	}
}

func TestExpiredAndUnknownTasksAre404(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv, base := start(t, Config{TTL: time.Hour, Now: clock.Now})
	id := submitOne(t, base, map[string]any{"url": "https://a.example/"})
	clock.Advance(time.Hour - time.Second)
	for _, p := range []string{"/v3/task/" + id, "/v3/task/" + id + "/results"} {
		if a := call(t, "GET", base+p, testToken, nil); a.status != 200 {
			t.Fatalf("GET %s before the TTL: %d", p, a.status)
		}
	}
	clock.Advance(time.Second)
	// A new task makes the sandbox free the expired one; both must be 404.
	submitOne(t, base, map[string]any{"url": "https://b.example/"})
	srv.mu.Lock()
	kept := len(srv.tasks)
	srv.mu.Unlock()
	if kept != 1 {
		t.Errorf("%d tasks kept, want the new one only: the expired one was not freed", kept)
	}
	for _, p := range []string{
		"/v3/task/" + id, "/v3/task/" + id + "/results",
		"/v3/task/7434928397127555073", "/v3/task/7434928397127555073/results",
		"/v3/task/not-a-number", "/v3/task/batch",
	} {
		wantError(t, call(t, "GET", base+p, testToken, nil), http.StatusNotFound)
	}
}

func TestRoutesAndMethods(t *testing.T) {
	t.Parallel()
	_, base := start(t, Config{})
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/v3/task", 405},
		{"DELETE", "/v3/task/batch", 405},
		{"POST", "/v3/task/7434928397127555073", 405},
		{"GET", "/v2/scrape", 404},
		{"GET", "/v3/task/1/other", 404},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			wantError(t, call(t, tt.method, base+tt.path, testToken, nil), tt.want)
		})
	}
}

func TestInjectedErrorsAre5xx(t *testing.T) {
	t.Parallel()
	s, base := start(t, Config{ErrorRate: 1})
	for _, ep := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v3/task/batch", map[string]any{"url": urls(1)}},
		{"POST", "/v3/task", map[string]any{"url": "https://a.example/"}},
		{"GET", "/v3/task/7434928397127555073", nil},
		{"GET", "/v3/task/7434928397127555073/results", nil},
	} {
		a := call(t, ep.method, base+ep.path, testToken, ep.body)
		if a.status != 500 && a.status != 502 && a.status != 503 {
			t.Errorf("%s %s: %d, want 500, 502 or 503", ep.method, ep.path, a.status)
			continue
		}
		wantError(t, a, a.status)
	}
	if n := s.Stats().TasksCreated; n != 0 {
		t.Errorf("%d tasks created behind injected errors", n)
	}
}

func TestDroppedConnectionsGiveEOF(t *testing.T) {
	t.Parallel()
	s, base := start(t, Config{DropRate: 1})
	for _, ep := range []struct{ method, path, body string }{
		{"GET", "/v3/task/7434928397127555073/results", ""},
		{"POST", "/v3/task/batch", `{"url":["https://a.example/"]}`},
	} {
		client := &http.Client{Transport: &http.Transport{}}
		req, _ := http.NewRequest(ep.method, base+ep.path, strings.NewReader(ep.body))
		req.Header.Set("Authorization", "Basic "+testToken)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s %s: got %d, want a connection error", ep.method, ep.path, resp.StatusCode)
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s %s: error %v, want io.EOF or io.ErrUnexpectedEOF", ep.method, ep.path, err)
		}
	}
	st := s.Stats()
	if st.Requests["GET /v3/task/{id}/results drop"] < 1 || st.Requests["POST /v3/task/batch drop"] != 1 {
		t.Errorf("drops not counted: %v", st.Requests)
	}
	if st.TasksCreated != 0 {
		t.Errorf("a dropped batch created %d tasks", st.TasksCreated)
	}
}

func TestGetLimitRateAnswers429OnGETOnly(t *testing.T) {
	t.Parallel()
	_, base := start(t, Config{GetLimitRate: 1})
	id := submitOne(t, base, map[string]any{"url": "https://a.example/"}) // POST is not limited
	for _, p := range []string{"/v3/task/" + id, "/v3/task/" + id + "/results"} {
		a := call(t, "GET", base+p, testToken, nil)
		wantError(t, a, http.StatusTooManyRequests)
		if ra := a.header.Get("Retry-After"); ra != "1" {
			t.Errorf("GET %s: Retry-After %q, want 1", p, ra)
		}
	}
}

func TestTargetErrorsAreDoneTasks(t *testing.T) {
	t.Parallel()
	_, base := start(t, Config{TargetErrorRate: 1, BatchInterval: -1})
	a := call(t, "POST", base+"/v3/task/batch", testToken, map[string]any{"url": urls(20)})
	seen := map[int]bool{}
	for _, tk := range decode[batchObject](t, a).Queries {
		if st := decode[taskObject](t, call(t, "GET", base+"/v3/task/"+tk.ID, testToken, nil)); st.Status != "done" {
			t.Fatalf("task status %q, want done", st.Status)
		}
		r := call(t, "GET", base+"/v3/task/"+tk.ID+"/results", testToken, nil)
		if r.status != 200 {
			t.Fatalf("results HTTP %d, want 200", r.status)
		}
		code := decode[resultsBody](t, r).Results[0].StatusCode
		if code != 404 && code != 500 {
			t.Fatalf("status_code %d, want 404 or 500", code)
		}
		seen[code] = true
	}
	if !seen[404] || !seen[500] {
		t.Errorf("20 target errors gave only %v", seen)
	}
}

func TestCallbackCarriesPassthrough(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, key string }{
		{"passthrough", "passthrough"},
		{"published spelling", "passtrough"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			type call struct {
				method, ctype string
				body          []byte
			}
			got := make(chan call, 1)
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got <- call{r.Method, r.Header.Get("Content-Type"), b}
			}))
			t.Cleanup(rcv.Close)
			s, base := start(t, Config{Delay: Delay{Fixed: 20 * time.Millisecond}})
			id := submitOne(t, base, map[string]any{
				"url": "https://a.example/", "callback_url": rcv.URL + "/hook", tt.key: "secret-123",
			})
			select {
			case c := <-got:
				if c.method != "POST" || c.ctype != "application/json" {
					t.Errorf("callback %s with Content-Type %q", c.method, c.ctype)
				}
				var tk taskObject
				if err := json.Unmarshal(c.body, &tk); err != nil {
					t.Fatalf("callback body %s: %v", c.body, err)
				}
				echoed := tk.Passthrough
				if tt.key == "passtrough" {
					echoed = tk.Passtrough
				}
				if tk.ID != id || tk.Status != "done" || tk.URL != "https://a.example/" || string(echoed) != `"secret-123"` {
					t.Errorf("callback task = %s", c.body)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no callback within 10s")
			}
			// The counter is bumped after the receiver answered.
			for range 200 {
				if s.Stats().CallbacksSent == 1 {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Errorf("CallbacksSent = %d, want 1", s.Stats().CallbacksSent)
		})
	}
	t.Run("only loopback is called", func(t *testing.T) {
		t.Parallel()
		s, base := start(t, Config{})
		submitOne(t, base, map[string]any{"url": "https://a.example/", "callback_url": "https://hooks.example/cb"})
		if st := s.Stats(); st.CallbacksSkipped != 1 || st.CallbacksSent+st.CallbacksFailed != 0 {
			t.Errorf("stats %+v, want one skipped callback", st)
		}
	})
}

func TestStatsCountWhatHappened(t *testing.T) {
	t.Parallel()
	clock := newClock()
	t0 := clock.Now()
	s, base := start(t, Config{Delay: Delay{Fixed: 5 * time.Second}, Now: clock.Now})
	b := decode[batchObject](t, call(t, "POST", base+"/v3/task/batch", testToken, map[string]any{"url": urls(2)}))
	call(t, "POST", base+"/v3/task/batch", testToken, map[string]any{"url": urls(2)}) // 429
	call(t, "GET", base+"/v3/task/1", "", nil)                                        // 401
	for _, tk := range b.Queries {
		call(t, "GET", base+"/v3/task/"+tk.ID+"/results", testToken, nil) // 204
	}
	clock.Advance(7 * time.Second)
	for range 2 {
		for _, tk := range b.Queries {
			call(t, "GET", base+"/v3/task/"+tk.ID+"/results", testToken, nil) // 200; waits 2s once
			call(t, "GET", base+"/v3/task/"+tk.ID, testToken, nil)
		}
	}

	want := map[string]int{
		"POST /v3/task/batch 200":       1,
		"POST /v3/task/batch 429":       1,
		"GET /v3/task/{id} 401":         1,
		"GET /v3/task/{id}/results 204": 2,
		"GET /v3/task/{id}/results 200": 4,
		"GET /v3/task/{id} 200":         4,
	}
	st := s.Stats()
	if !mapsEqual(st.Requests, want) {
		t.Errorf("Requests = %v, want %v", st.Requests, want)
	}
	if st.TasksCreated != 2 || st.TasksDone != 2 || st.TasksFaulted != 0 || st.Batches != 1 {
		t.Errorf("created %d done %d faulted %d batches %d", st.TasksCreated, st.TasksDone, st.TasksFaulted, st.Batches)
	}
	if !st.FirstCreated.Equal(t0) || !st.LastCompletion.Equal(t0.Add(5*time.Second)) {
		t.Errorf("first created %v, last completion %v", st.FirstCreated, st.LastCompletion)
	}
	if len(st.BatchTimes) != 1 || !st.BatchTimes[0].Equal(t0) {
		t.Errorf("batch times %v, want [%v]", st.BatchTimes, t0)
	}
	if w := st.ResultWaits; w.Count != 2 || w.Mean != 2*time.Second || w.Max != 2*time.Second {
		t.Errorf("result waits %+v, want 2 of 2s", w)
	}

	// The stats endpoint serves the same numbers without a token.
	a := call(t, "GET", base+"/_sandbox/stats", "", nil)
	if a.status != 200 {
		t.Fatalf("stats endpoint: %d", a.status)
	}
	var served Stats
	if err := json.Unmarshal(a.body, &served); err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(served.Requests, want) || served.TasksDone != 2 || served.ResultWaits != st.ResultWaits {
		t.Errorf("served stats %+v differ from %+v", served, st)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestParseDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Delay
		wantErr bool
	}{
		{in: "5s", want: Delay{Kind: Fixed, Fixed: 5 * time.Second}},
		{in: "0", want: Delay{}},
		{in: "fixed:250ms", want: Delay{Kind: Fixed, Fixed: 250 * time.Millisecond}},
		{in: " uniform:1s-5s ", want: Delay{Kind: Uniform, Min: time.Second, Max: 5 * time.Second}},
		{in: "uniform:2s-2s", want: Delay{Kind: Uniform, Min: 2 * time.Second, Max: 2 * time.Second}},
		{in: "lognormal:6s,0.6", want: Delay{Kind: LogNormal, Median: 6 * time.Second, Sigma: 0.6}},
		{in: "lognormal:6s,0.6,1s-60s", want: Delay{Kind: LogNormal, Median: 6 * time.Second, Sigma: 0.6, Min: time.Second, Max: time.Minute}},
		{in: "LogNormal:1m,0", want: Delay{Kind: LogNormal, Median: time.Minute}},
		{in: "", wantErr: true},
		{in: "-1s", wantErr: true},
		{in: "five", wantErr: true},
		{in: "uniform:5s-1s", wantErr: true},
		{in: "uniform:1s", wantErr: true},
		{in: "uniform:x-5s", wantErr: true},
		{in: "lognormal:6s", wantErr: true},
		{in: "lognormal:0s,0.5", wantErr: true},
		{in: "lognormal:6s,-1", wantErr: true},
		{in: "lognormal:6s,0.5,10s", wantErr: true},
		{in: "lognormal:6s,0.5,1s-2s,3", wantErr: true},
		{in: "gamma:1s", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDelay(tt.in)
			if tt.wantErr {
				if err == nil || !errors.Is(err, ErrDelay) {
					t.Fatalf("ParseDelay(%q) = %+v, %v; want an ErrDelay", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDelay(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			back, err := ParseDelay(got.String())
			if err != nil || back != got {
				t.Errorf("round trip through %q: %+v, %v", got.String(), back, err)
			}
		})
	}
}

func TestDelaySamplesStayInShape(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	t.Run("uniform", func(t *testing.T) {
		d := Delay{Kind: Uniform, Min: time.Second, Max: 3 * time.Second}
		var sum time.Duration
		for range n {
			v := d.sample(r)
			if v < d.Min || v > d.Max {
				t.Fatalf("sample %v outside [%v, %v]", v, d.Min, d.Max)
			}
			sum += v
		}
		if mean := sum / n; mean < 1900*time.Millisecond || mean > 2100*time.Millisecond {
			t.Errorf("mean %v, want about 2s", mean)
		}
	})
	t.Run("lognormal", func(t *testing.T) {
		d := Delay{Kind: LogNormal, Median: 6 * time.Second, Sigma: 0.6, Min: time.Second, Max: time.Minute}
		v := make([]time.Duration, n)
		for i := range v {
			v[i] = d.sample(r)
		}
		slices.Sort(v)
		if v[0] < d.Min || v[n-1] > d.Max {
			t.Fatalf("samples span [%v, %v], outside the clip", v[0], v[n-1])
		}
		if med := v[n/2]; math.Abs(med.Seconds()-6) > 0.3 {
			t.Errorf("median %v, want about 6s", med)
		}
		// Sigma 0.6: the 84th percentile is about median*e^0.6 = 10.9s.
		if p84 := v[n*84/100]; math.Abs(p84.Seconds()-10.9) > 0.8 {
			t.Errorf("84th percentile %v, want about 10.9s", p84)
		}
	})
}

// draws submits the same batch to a server seeded with seed and returns each
// task's delay and fault, in submission order.
func draws(t *testing.T, seed int64) []string {
	t.Helper()
	clock := newClock()
	s, base := start(t, Config{
		Seed: seed, Now: clock.Now, FaultRate: 0.3, TargetErrorRate: 0.2,
		Delay: Delay{Kind: Uniform, Min: time.Second, Max: 100 * time.Second},
	})
	b := decode[batchObject](t, call(t, "POST", base+"/v3/task/batch", testToken, map[string]any{"url": urls(50)}))
	out := make([]string, len(b.Queries))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range b.Queries {
		id, _ := strconv.ParseUint(q.ID, 10, 64)
		tk := s.tasks[id]
		out[i] = fmt.Sprintf("%v/%v/%d", time.Duration(tk.due-tk.group.created), tk.faulted, tk.code)
	}
	return out
}

func TestSameSeedGivesSameDelaysAndFaults(t *testing.T) {
	t.Parallel()
	a, b, c := draws(t, 42), draws(t, 42), draws(t, 43)
	if !slices.Equal(a, b) {
		t.Errorf("seed 42 twice:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 42 and 43 gave the same draws %v", a)
	}
}

func TestRegisterFlagsSetsEveryKnob(t *testing.T) {
	t.Parallel()
	var c Config
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	c.RegisterFlags(fs)
	err := fs.Parse([]string{
		"--token", "a", "--token", "b", "--batch-interval", "2s", "--max-items", "100",
		"--delay", "lognormal:6s,0.6,1s-60s", "--fault-rate", "0.1", "--fault-mode", "error",
		"--ttl", "1h", "--error-rate", "0.01", "--drop-rate", "0.02", "--get-429-rate", "0.03",
		"--batch-latency", "150ms", "--content-size", "4096", "--target-error-rate", "0.04",
		"--array-response", "--seed", "7", "--allow-unknown-params", "--indent-answers",
		"--page-error-rate", "0.05", "--truncate-batch-rate", "0.2", "--batch-500-after-create-rate", "0.1",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Tokens: []string{"a", "b"}, BatchInterval: 2 * time.Second, MaxItems: 100,
		Delay:     Delay{Kind: LogNormal, Median: 6 * time.Second, Sigma: 0.6, Min: time.Second, Max: time.Minute},
		FaultRate: 0.1, FaultMode: FaultError, TTL: time.Hour, ErrorRate: 0.01, DropRate: 0.02,
		GetLimitRate: 0.03, BatchLatency: 150 * time.Millisecond, ContentSize: 4096,
		TargetErrorRate: 0.04, ArrayResponse: true, Seed: 7, AllowUnknownParams: true, IndentAnswers: true,
		PageErrorRate: 0.05, TruncateBatchRate: 0.2, Batch500AfterCreateRate: 0.1,
	}
	if fmt.Sprintf("%+v", c) != fmt.Sprintf("%+v", want) {
		t.Errorf("config\n%+v\nwant\n%+v", c, want)
	}
	for _, bad := range [][]string{
		{"--fault-rate", "1.5"}, {"--drop-rate", "-0.1"}, {"--delay", "uniform:3s-1s"}, {"--fault-mode", "sometimes"},
		{"--truncate-batch-rate", "2"}, {"--page-error-rate", "x"},
	} {
		fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		new(Config).RegisterFlags(fs)
		if err := fs.Parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestBatchLatencyRespectsCanceledClients(t *testing.T) {
	t.Parallel()
	s, base := start(t, Config{BatchLatency: 5 * time.Second})
	client := &http.Client{Timeout: 100 * time.Millisecond}
	req, _ := http.NewRequest("POST", base+"/v3/task/batch", strings.NewReader(`{"url":["https://a.example/"]}`))
	req.Header.Set("Authorization", "Basic "+testToken)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d before the latency", resp.StatusCode)
	}
	for range 200 {
		if s.Stats().Requests["POST /v3/task/batch canceled"] == 1 {
			if n := s.Stats().TasksCreated; n != 0 {
				t.Errorf("a canceled batch created %d tasks", n)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("cancellation not seen: %v", s.Stats().Requests)
}

// discard is a ResponseWriter that keeps nothing, to time the handler alone.
type discard struct {
	h      http.Header
	status int
	n      int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(status int)      { d.status = status }
func (d *discard) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }

// benchServer makes a server holding n tasks, done at once, and the GET
// requests for each task's path+suffix.
func benchServer(b *testing.B, cfg Config, n int, suffix string) (*Server, []*http.Request) {
	cfg.BatchInterval = -1
	s := New(cfg)
	b.Cleanup(s.Close)
	var reqs []*http.Request
	for len(reqs) < n {
		body, _ := json.Marshal(map[string]any{"url": urls(min(3000, n-len(reqs)))})
		r := httptest.NewRequest("POST", "/v3/task/batch", bytes.NewReader(body))
		r.Header.Set("Authorization", "Basic "+testToken)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		var bo batchObject
		if err := json.Unmarshal(w.Body.Bytes(), &bo); err != nil {
			b.Fatal(err, w.Body.String())
		}
		for _, q := range bo.Queries {
			r := httptest.NewRequest("GET", "/v3/task/"+q.ID+suffix, nil)
			r.Header.Set("Authorization", "Basic "+testToken)
			reqs = append(reqs, r)
		}
	}
	return s, reqs
}

// BenchmarkResults times the handler alone on the hot GET paths, over
// 100,000 tasks.
func BenchmarkResults(b *testing.B) {
	for _, bc := range []struct {
		name   string
		cfg    Config
		suffix string
		want   int
	}{
		{"results-200-1KiB", Config{}, "/results", 200},
		{"results-204-pending", Config{Delay: Delay{Fixed: time.Hour}}, "/results", 204},
		{"status", Config{}, "", 200},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, reqs := benchServer(b, bc.cfg, 100_000, bc.suffix)
			w := &discard{h: make(http.Header)}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				w.status = 0
				s.ServeHTTP(w, reqs[i%len(reqs)])
				i++
			}
			if w.status != bc.want {
				b.Fatalf("status %d, want %d", w.status, bc.want)
			}
		})
	}
}

// BenchmarkResultsHTTP pushes GET /results through a real loopback server
// from parallel clients; ns/op is the inverse of the requests per second.
func BenchmarkResultsHTTP(b *testing.B) {
	s, reqs := benchServer(b, Config{}, 100_000, "/results")
	ts := httptest.NewServer(s)
	b.Cleanup(ts.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	paths := make([]string, len(reqs))
	for i, r := range reqs {
		paths[i] = ts.URL + r.URL.Path
	}
	var next sync.Mutex
	k := 0
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			next.Lock()
			p := paths[k%len(paths)]
			k++
			next.Unlock()
			req, _ := http.NewRequest("GET", p, nil)
			req.Header.Set("Authorization", "Basic "+testToken)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkBatch3000 times the creation of a full batch, answer included.
func BenchmarkBatch3000(b *testing.B) {
	s := New(Config{BatchInterval: -1, TTL: time.Second})
	b.Cleanup(s.Close)
	body, _ := json.Marshal(map[string]any{"url": urls(3000), "geo": "Germany"})
	w := &discard{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/v3/task/batch", bytes.NewReader(body))
		r.Header.Set("Authorization", "Basic "+testToken)
		s.ServeHTTP(w, r)
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}

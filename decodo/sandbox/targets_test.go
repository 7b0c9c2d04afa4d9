package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSingleTasksOfEveryInput proves that POST /v3/task takes a task of each
// input field, echoes it, completes it with results holding the input, and
// counts it in Stats like a batch task.
func TestSingleTasksOfEveryInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  map[string]any
		field string // "" for a target taking none
		input string
	}{
		{"prompt", map[string]any{"target": "chatgpt", "prompt": "Which coffee grinder is best?", "search": true}, "prompt", "Which coffee grinder is best?"},
		{"prompt of gemini", map[string]any{"target": "gemini", "prompt": "Summarize \"tea\"", "parse": true}, "prompt", `Summarize "tea"`},
		{"product_id", map[string]any{"target": "walmart_product", "product_id": "15296401808", "delivery_zip": "10001", "fulfillment_type": "pickup"}, "product_id", "15296401808"},
		{"product_id of tiktok", map[string]any{"target": "tiktok_shop_product", "product_id": "1729587769570", "country": "US"}, "product_id", "1729587769570"},
		{"no input", map[string]any{"target": "universal_ecommerce", "callback_url": "https://hooks.example/cb"}, "", ""},
		{"url", map[string]any{"url": "https://a.example/", "xhr": true}, "url", "https://a.example/"},
		{"query", map[string]any{"target": "youtube_search", "query": "lofi", "hd": true, "4k": false, "upload_date": "today"}, "query", "lofi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, base := start(t, Config{})
			a := call(t, "POST", base+"/v3/task", testToken, tt.body)
			if a.status != 200 {
				t.Fatalf("POST /v3/task: %d %s", a.status, a.body)
			}
			var tk map[string]any
			if err := json.Unmarshal(a.body, &tk); err != nil {
				t.Fatal(err)
			}
			id, _ := tk["id"].(string)
			if !taskIDPattern.MatchString(id) || tk["status"] != "pending" || tk["target"] != tt.body["target"] && tt.body["target"] != nil {
				t.Errorf("task object %s", a.body)
			}
			if tk["url"] == nil || tk["query"] == nil {
				t.Errorf("task object lacks the example's url and query: %s", a.body)
			}
			if tt.field != "" && tk[tt.field] != tt.input {
				t.Errorf("task object %s = %v, want %q", tt.field, tk[tt.field], tt.input)
			}
			for k, v := range tt.body {
				if k != "target" && k != tt.field && fmt.Sprint(tk[k]) != fmt.Sprint(v) {
					t.Errorf("parameter %s echoed as %v, want %v", k, tk[k], v)
				}
			}

			r := call(t, "GET", base+"/v3/task/"+id+"/results", testToken, nil)
			if r.status != 200 {
				t.Fatalf("results: %d %s", r.status, r.body)
			}
			var res struct {
				Results []map[string]any `json:"results"`
			}
			if err := json.Unmarshal(r.body, &res); err != nil || len(res.Results) != 1 {
				t.Fatalf("results %s (%v)", r.body, err)
			}
			e := res.Results[0]
			if e["task_id"] != id || e["status_code"] != float64(200) {
				t.Errorf("result entry %v", e)
			}
			if tt.field != "" {
				if e[tt.field] != tt.input || !strings.Contains(string(r.body), strings.ReplaceAll(tt.input, `"`, `\"`)) {
					t.Errorf("result entry %s = %v, want %q in the entry and content", tt.field, e[tt.field], tt.input)
				}
			}
			st := s.Stats()
			if st.TasksCreated != 1 || st.SingleTasks != 1 || st.Batches != 0 || st.TasksDone != 1 || st.Items != 1 {
				t.Errorf("stats created %d single %d batches %d done %d items %d; want 1 1 0 1 1",
					st.TasksCreated, st.SingleTasks, st.Batches, st.TasksDone, st.Items)
			}
			if st.Requests["POST /v3/task 200"] != 1 {
				t.Errorf("requests %v", st.Requests)
			}
		})
	}
}

// TestInputFieldsFollowTheTarget proves that a request must fill exactly the
// field its target takes, and that a batch takes only url or query arrays.
func TestInputFieldsFollowTheTarget(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("p", 8193)
	tests := []struct {
		name      string
		path      string
		body      string
		wantField string
		wantMsg   string // the message contains this
	}{
		{"url for a prompt target", "/v3/task", `{"target":"chatgpt","url":"https://a.example/"}`, "url", "takes a prompt, not a url"},
		{"query for a product_id target", "/v3/task", `{"target":"walmart_product","query":"x"}`, "query", "takes a product_id, not a query"},
		{"prompt missing", "/v3/task", `{"target":"perplexity"}`, "prompt", "prompt is required"},
		{"product_id missing", "/v3/task", `{"target":"target_product","parse":true}`, "product_id", "product_id is required"},
		{"input for a target taking none", "/v3/task", `{"target":"universal_ecommerce","url":"https://a.example/"}`, "url", "takes no url"},
		{"prompt and query", "/v3/task", `{"target":"chatgpt","query":"a","prompt":"b"}`, "prompt", "mutually exclusive"},
		{"prompt too long", "/v3/task", `{"target":"chatgpt","prompt":"` + long + `"}`, "prompt", "8193 characters long (at most 8192)"},
		{"empty prompt", "/v3/task", `{"target":"gemini","prompt":" "}`, "prompt", "prompt is empty"},
		{"empty product_id", "/v3/task", `{"target":"walmart_product","product_id":""}`, "product_id", "product_id is empty"},
		{"product_id not a string", "/v3/task", `{"target":"walmart_product","product_id":15296401808}`, "product_id", "must be a string"},
		{"batch of prompts", "/v3/task/batch", `{"target":"chatgpt","prompt":["a","b"]}`, "target", "a batch takes only url or query arrays"},
		{"batch of product_ids", "/v3/task/batch", `{"target":"walmart_product","product_id":["1","2"]}`, "target", "a batch takes only url or query arrays"},
		{"batch of a target taking none", "/v3/task/batch", `{"target":"universal_ecommerce"}`, "target", "a batch takes only url or query arrays"},
		{"unknown target suggests", "/v3/task", `{"target":"googel_search","query":"x"}`, "target", "googel_search"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, base := start(t, Config{})
			e := wantError(t, call(t, "POST", base+tt.path, testToken, tt.body), http.StatusBadRequest)
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("message %q lacks %q", e.Message, tt.wantMsg)
			}
			if len(e.Errors) == 0 || e.Errors[0]["field"] != tt.wantField {
				t.Errorf("errors %v do not name %s", e.Errors, tt.wantField)
			}
			if n := s.Stats().TasksCreated; n != 0 {
				t.Errorf("a refused request created %d tasks", n)
			}
		})
	}
	t.Run("unknown target names the nearest", func(t *testing.T) {
		t.Parallel()
		_, base := start(t, Config{})
		e := wantError(t, call(t, "POST", base+"/v3/task", testToken, `{"target":"googel_search","query":"x"}`), 400)
		if !strings.Contains(e.Errors[0]["message"], "did you mean google_search?") {
			t.Errorf("errors %v", e.Errors)
		}
	})
	t.Run("a prompt of 8192 characters is taken", func(t *testing.T) {
		t.Parallel()
		_, base := start(t, Config{})
		p := strings.Repeat("é", 8192) // characters, not bytes
		if a := call(t, "POST", base+"/v3/task", testToken, map[string]any{"target": "chatgpt", "prompt": p}); a.status != 200 {
			t.Errorf("prompt of 8192 characters: %d %.200s", a.status, a.body)
		}
	})
}

// TestParametersAreCheckedAgainstTheTable proves that a parameter the
// target does not take is a 400 naming it (and the nearest known name),
// that values break their type, enum, range or wholeness with a 400 naming
// the parameter and its rule, and that every target's own parameters pass.
func TestParametersAreCheckedAgainstTheTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		body      string
		wantField string
		wantMsg   string // the errors entry's message contains this
	}{
		{"unknown with a near name", `{"target":"google_search","query":"x","google_result_language":"de"}`, "google_result_language", "did you mean google_results_language?"},
		{"unknown without a near name", `{"target":"google_search","query":"x","colour":"red"}`, "colour", "unknown parameter for target google_search"},
		{"another target's parameter", `{"url":"https://a.example/","parse":true}`, "parse", "unknown parameter for target universal"},
		{"page_count for universal", `{"url":"https://a.example/","page_count":2}`, "page_count", "unknown parameter for target universal"},
		{"bool as a string", `{"url":"https://a.example/","xhr":"yes"}`, "xhr", "must be true or false"},
		{"enum", `{"url":"https://a.example/","proxy_pool":"cheap"}`, "proxy_pool", "must be one of standard, premium"},
		{"headless enum", `{"target":"amazon","url":"https://a.example/","headless":"pdf"}`, "headless", "must be one of html, png"},
		{"above the range", `{"target":"google_search","query":"x","page_from":101}`, "page_from", "must be a whole number from 0 to 100"},
		{"below the range", `{"target":"google_search","query":"x","page_count":0}`, "page_count", "must be a whole number from 1 to 10"},
		{"not whole", `{"target":"google_search","query":"x","page_count":2.5}`, "page_count", "whole number"},
		{"number as a string", `{"target":"youtube_channel","query":"x","limit":"10"}`, "limit", "must be a whole number from 0 to 100"},
		{"adults above 3", `{"target":"google_travel_hotels","query":"x","adults":4}`, "adults", "from 1 to 3"},
		{"object as a string", `{"url":"https://a.example/","headers":"X-A: b"}`, "headers", "must be a JSON object"},
		{"array of strings", `{"url":"https://a.example/","successful_status_codes":[200,"404"]}`, "successful_status_codes", "must be an array of numbers"},
		{"string as a number", `{"target":"google_search","query":"x","geo":7}`, "geo", "must be a string"},
		{"payload not base64", `{"url":"https://a.example/","payload":"%%%"}`, "payload", "base64"},
		{"callback_url not a url", `{"url":"https://a.example/","callback_url":"hooks"}`, "callback_url", "http"},
		{"server-set keys", `{"url":"https://a.example/","status":"done"}`, "status", "unknown parameter"},
	}
	for _, tt := range tests {
		for _, path := range []string{"/v3/task", "/v3/task/batch"} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				t.Parallel()
				body := tt.body
				if path == "/v3/task/batch" {
					body = strings.Replace(strings.Replace(body, `"query":"x"`, `"query":["x"]`, 1), `"url":"https://a.example/"`, `"url":["https://a.example/"]`, 1)
				}
				s, base := start(t, Config{})
				e := wantError(t, call(t, "POST", base+path, testToken, body), http.StatusBadRequest)
				found := false
				for _, item := range e.Errors {
					found = found || item["field"] == tt.wantField && strings.Contains(item["message"], tt.wantMsg)
				}
				if !found {
					t.Errorf("errors %v do not name %s with %q", e.Errors, tt.wantField, tt.wantMsg)
				}
				if !strings.Contains(e.Message, tt.wantField) {
					t.Errorf("message %q does not name %s", e.Message, tt.wantField)
				}
				if n := s.Stats().TasksCreated; n != 0 {
					t.Errorf("a refused request created %d tasks", n)
				}
			})
		}
	}
	t.Run("parameters of the table pass", func(t *testing.T) {
		t.Parallel()
		_, base := start(t, Config{BatchInterval: -1})
		for _, body := range []map[string]any{
			{"target": "google_search", "query": []string{"x"}, "google_results_language": "de", "google_nfpr": true,
				"google_safe_search": false, "google_tbm": "isch", "google_tbs": "qdr:d", "page_from": 0, "page_count": 10, "geo": "Germany"},
			{"url": []string{"https://a.example/"}, "xhr": true, "headers": map[string]any{"X-A": "b"}, "cookies": []any{},
				"http_method": "post", "payload": "eyJhIjoxfQ==", "proxy_pool": "premium", "successful_status_codes": []int{200, 404},
				"force_headers": true, "force_cookies": false, "passthrough": "p", "passtrough": "p"},
			{"target": "youtube_search", "query": []string{"x"}, "hd": true, "4k": true, "360": false, "3d": false,
				"upload_date": "today", "video_sort_by": "views", "type": "video"},
			{"target": "google_travel_hotels", "query": []string{"x"}, "adults": 2, "children": 1, "stars": 4.5, "page_from": 3.0},
			{"target": "youtube_channel", "query": []string{"x"}, "limit": 100},
			{"target": "walmart_search", "query": []string{"x"}, "delivery_zip": "10001", "fulfillment_type": "delivery", "walmart_store_id": "5"},
		} {
			if a := call(t, "POST", base+"/v3/task/batch", testToken, body); a.status != 200 {
				t.Errorf("%v: %d %s", body, a.status, a.body)
			}
		}
	})
	t.Run("every bad parameter is named", func(t *testing.T) {
		t.Parallel()
		_, base := start(t, Config{})
		e := wantError(t, call(t, "POST", base+"/v3/task", testToken,
			`{"target":"google_search","query":"x","page_from":-1,"xhr":1,"nope":true}`), 400)
		var fields []string
		for _, item := range e.Errors {
			fields = append(fields, item["field"])
		}
		if strings.Join(fields, " ") != "nope page_from xhr" {
			t.Errorf("errors name %v, want nope page_from xhr", fields)
		}
	})
}

// TestAllowUnknownParamsLetsThemThrough proves the knob: an unknown
// parameter is accepted and echoed as sent, without effect, while the
// parameters of the table are still checked.
func TestAllowUnknownParamsLetsThemThrough(t *testing.T) {
	t.Parallel()
	_, strict := start(t, Config{})
	_, lax := start(t, Config{AllowUnknownParams: true})
	body := map[string]any{"url": "https://a.example/", "brand_new_param": map[string]any{"a": 1}, "page_count": 3}

	wantError(t, call(t, "POST", strict+"/v3/task", testToken, body), http.StatusBadRequest)

	a := call(t, "POST", lax+"/v3/task", testToken, body)
	if a.status != 200 {
		t.Fatalf("with the knob: %d %s", a.status, a.body)
	}
	if !bytes.Contains(a.body, []byte(`"brand_new_param":{"a":1}`)) {
		t.Errorf("unknown parameter not echoed: %s", a.body)
	}
	// page_count is not universal's: let through, it has no effect.
	id := decode[taskObject](t, a).ID
	if r := decode[resultsBody](t, call(t, "GET", lax+"/v3/task/"+id+"/results", testToken, nil)); len(r.Results) != 1 {
		t.Errorf("%d result entries for a page_count universal does not take, want 1", len(r.Results))
	}
	e := wantError(t, call(t, "POST", lax+"/v3/task", testToken,
		map[string]any{"target": "google", "url": "https://a.example/", "page_count": 11, "x": 1}), http.StatusBadRequest)
	if len(e.Errors) != 1 || e.Errors[0]["field"] != "page_count" {
		t.Errorf("with the knob, a known parameter out of range gave %v, want page_count alone", e.Errors)
	}
}

// TestPagesHaveTheirOwnStatusHeadersAndCookies proves that a task with
// page_count N answers N entries, each with its own status_code, headers,
// cookies, task_id, input and timestamps, and that PageErrorRate fails
// pages (not tasks) independently.
func TestPagesHaveTheirOwnStatusHeadersAndCookies(t *testing.T) {
	t.Parallel()
	type entry struct {
		Content    json.RawMessage   `json:"content"`
		StatusCode int               `json:"status_code"`
		Query      string            `json:"query"`
		TaskID     string            `json:"task_id"`
		Headers    map[string]string `json:"headers"`
		Cookies    []map[string]any  `json:"cookies"`
		CreatedAt  string            `json:"created_at"`
		UpdatedAt  string            `json:"updated_at"`
	}
	pages := func(t *testing.T, cfg Config, n int) (codes [][]int) {
		t.Helper()
		cfg.BatchInterval = -1
		_, base := start(t, cfg)
		b := decode[batchObject](t, call(t, "POST", base+"/v3/task/batch", testToken,
			map[string]any{"target": "google_search", "query": []string{"a", "b", "c", "d", "e", "f", "g", "h"}, "page_count": n, "parse": true}))
		for _, tk := range b.Queries {
			if st := decode[taskObject](t, call(t, "GET", base+"/v3/task/"+tk.ID, testToken, nil)); st.Status != "done" {
				t.Fatalf("task %s, want done", st.Status)
			}
			var r struct{ Results []entry }
			a := call(t, "GET", base+"/v3/task/"+tk.ID+"/results", testToken, nil)
			if err := json.Unmarshal(a.body, &r); err != nil || len(r.Results) != n {
				t.Fatalf("%d entries (%v), want %d", len(r.Results), err, n)
			}
			var cs []int
			for i, e := range r.Results {
				p := strconv.Itoa(i + 1)
				if e.TaskID != tk.ID || e.Query != tk.Query || e.CreatedAt == "" || e.UpdatedAt == "" || e.Headers["content-type"] != "application/json" {
					t.Errorf("page %s entry %+v", p, e)
				}
				if n > 1 && (e.Headers["x-sandbox-page"] != p || len(e.Cookies) != 1 || e.Cookies[0]["value"] != p) {
					t.Errorf("page %s headers %v cookies %v do not name the page", p, e.Headers, e.Cookies)
				}
				var c struct {
					Page       int `json:"page"`
					StatusCode int `json:"status_code"`
				}
				if err := json.Unmarshal(e.Content, &c); err != nil || c.Page != i+1 || c.StatusCode != e.StatusCode {
					t.Errorf("page %s content %.100s (%v)", p, e.Content, err)
				}
				cs = append(cs, e.StatusCode)
			}
			codes = append(codes, cs)
		}
		return codes
	}
	t.Run("no page errors", func(t *testing.T) {
		t.Parallel()
		for _, cs := range pages(t, Config{}, 3) {
			if fmt.Sprint(cs) != "[200 200 200]" {
				t.Errorf("codes %v, want three 200s", cs)
			}
		}
	})
	t.Run("every page fails", func(t *testing.T) {
		t.Parallel()
		seen := map[int]bool{}
		for _, cs := range pages(t, Config{PageErrorRate: 1}, 3) {
			for _, c := range cs {
				if c != 404 && c != 500 {
					t.Errorf("code %d, want 404 or 500", c)
				}
				seen[c] = true
			}
		}
		if !seen[404] || !seen[500] {
			t.Errorf("24 failed pages gave only %v", seen)
		}
	})
	t.Run("pages fail on their own", func(t *testing.T) {
		t.Parallel()
		mixed := 0
		for _, cs := range pages(t, Config{PageErrorRate: 0.5, Seed: 3}, 10) {
			ok, bad := 0, 0
			for _, c := range cs {
				if c == 200 {
					ok++
				} else {
					bad++
				}
			}
			if ok > 0 && bad > 0 {
				mixed++
			}
		}
		if mixed == 0 {
			t.Error("no task of 10 pages had both good and failed pages")
		}
	})
	t.Run("a single page is not drawn", func(t *testing.T) {
		t.Parallel()
		for _, cs := range pages(t, Config{PageErrorRate: 1}, 1) {
			if cs[0] != 200 {
				t.Errorf("single page code %d; PageErrorRate is for tasks of several pages", cs[0])
			}
		}
	})
	t.Run("same seed, same pages", func(t *testing.T) {
		t.Parallel()
		a := pages(t, Config{PageErrorRate: 0.3, Seed: 9}, 5)
		b := pages(t, Config{PageErrorRate: 0.3, Seed: 9}, 5)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("seed 9 twice: %v and %v", a, b)
		}
	})
}

// TestIndentAnswers proves the knob: every JSON answer of the API (task,
// batch, status, results with parsed content, errors) spans several lines,
// is still one valid JSON value, and says what the compact one says.
func TestIndentAnswers(t *testing.T) {
	t.Parallel()
	_, plainBase := start(t, Config{BatchInterval: -1})
	_, base := start(t, Config{IndentAnswers: true, BatchInterval: -1})
	check := func(t *testing.T, what string, a answer, status int) {
		t.Helper()
		if a.status != status {
			t.Fatalf("%s: %d %s, want %d", what, a.status, a.body, status)
		}
		if !json.Valid(a.body) || bytes.Count(a.body, []byte("\n")) < 3 || !bytes.Contains(a.body, []byte("\n  \"")) {
			t.Errorf("%s not indented JSON: %.200s", what, a.body)
		}
		if cl := a.header.Get("Content-Length"); cl != strconv.Itoa(len(a.body)) {
			t.Errorf("%s: Content-Length %s for %d bytes", what, cl, len(a.body))
		}
	}
	single := call(t, "POST", base+"/v3/task", testToken, map[string]any{"target": "google_search", "query": "tea", "parse": true, "page_count": 3})
	check(t, "single task", single, 200)
	id := decode[taskObject](t, single).ID
	batch := call(t, "POST", base+"/v3/task/batch", testToken, map[string]any{"target": "google_search", "query": []string{"a", "b"}})
	check(t, "batch", batch, 200)
	if b := decode[batchObject](t, batch); len(b.Queries) != 2 || !rawBatchID.MatchString(string(compactJSON(t, batch.body))) {
		t.Errorf("indented batch lost its shape: %s", batch.body)
	}
	check(t, "status", call(t, "GET", base+"/v3/task/"+id, testToken, nil), 200)
	res := call(t, "GET", base+"/v3/task/"+id+"/results", testToken, nil)
	check(t, "results", res, 200)
	r := decode[resultsBody](t, res)
	if len(r.Results) != 3 || !bytes.Contains(r.Results[0].Content, []byte("\n")) {
		t.Errorf("parsed content not indented, or pages lost: %d entries, content %.100q", len(r.Results), r.Results[0].Content)
	}
	check(t, "400", call(t, "POST", base+"/v3/task", testToken, `{"url":"ftp://x"}`), 400)
	check(t, "404", call(t, "GET", base+"/v3/task/7434928397127555073", testToken, nil), 404)

	// The same request without the knob says the same thing on one line.
	plainID := submitOne(t, plainBase, map[string]any{"target": "google_search", "query": "tea", "parse": true, "page_count": 3})
	plain := call(t, "GET", plainBase+"/v3/task/"+plainID+"/results", testToken, nil)
	if bytes.Contains(plain.body, []byte("\n")) {
		t.Errorf("answer without the knob spans lines")
	}
	// Times differ between the two tasks; what must match is everything else.
	stamp := regexp.MustCompile(`"(created_at|updated_at)":"[^"]*"`)
	norm := func(b []byte, id string) string {
		return stamp.ReplaceAllString(strings.ReplaceAll(string(compactJSON(t, b)), id, "ID"), `"$1":"T"`)
	}
	if norm(plain.body, plainID) != norm(res.body, id) {
		t.Errorf("indented results differ from the plain ones once compacted")
	}
}

func compactJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("compact %.100s: %v", b, err)
	}
	return out.Bytes()
}

// rawPost sends a batch over a fresh connection and reads the answer by
// hand, to see a truncated one as it is: its status, Content-Length, the
// bytes that came, and the error that ended them.
func rawPost(t *testing.T, base, body string) (status, declared int, got []byte, readErr error) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, _ := http.NewRequest("POST", base+"/v3/task/batch", strings.NewReader(body))
	req.Header.Set("Authorization", "Basic "+testToken)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, readErr = io.ReadAll(resp.Body)
	return resp.StatusCode, int(resp.ContentLength), got, readErr
}

// TestTruncatedBatchAnswers proves the knob: the tasks are created, the
// answer is a 200 whose body is cut in the middle, both as a short
// complete answer and as a connection closed halfway.
func TestTruncatedBatchAnswers(t *testing.T) {
	t.Parallel()
	s, base := start(t, Config{TruncateBatchRate: 1, BatchInterval: -1, Seed: 1})
	body := `{"url":["https://a.example/1","https://a.example/2","https://a.example/3"]}`
	short, cut := 0, 0
	const n = 12
	for range n {
		status, declared, got, err := rawPost(t, base, body)
		if status != 200 {
			t.Fatalf("status %d, want 200", status)
		}
		if json.Valid(got) || len(got) < 100 {
			t.Fatalf("body of %d bytes is not cut JSON: %s", len(got), got)
		}
		switch {
		case err == nil && declared == len(got):
			short++
		case errors.Is(err, io.ErrUnexpectedEOF) && (declared == 2*len(got) || declared == 2*len(got)+1):
			cut++
		default:
			t.Fatalf("declared %d, got %d bytes, error %v", declared, len(got), err)
		}
	}
	if short == 0 || cut == 0 {
		t.Errorf("%d short answers and %d cut connections; want both kinds", short, cut)
	}
	st := s.Stats()
	if st.TasksCreated != 3*n || st.Batches != n || st.BatchesTruncated != n || st.Requests["POST /v3/task/batch 200"] != n {
		t.Errorf("stats created %d batches %d truncated %d requests %v", st.TasksCreated, st.Batches, st.BatchesTruncated, st.Requests)
	}
	// The same items sent again: each is now paid for twice, and counted.
	if st.Items != 3 || st.DuplicateSubmissions != 3*(n-1) || len(st.Duplicates) != 3 || st.Duplicates[`universal url {} https://a.example/2`] != n {
		t.Errorf("items %d duplicates %d %v", st.Items, st.DuplicateSubmissions, st.Duplicates)
	}
}

// TestBatch500AfterCreate proves the knob: the tasks are created (and
// their results come), but the batch is answered 500.
func TestBatch500AfterCreate(t *testing.T) {
	t.Parallel()
	s, base := start(t, Config{Batch500AfterCreateRate: 1, BatchInterval: -1})
	wantError(t, call(t, "POST", base+"/v3/task/batch", testToken, map[string]any{"url": urls(4)}), http.StatusInternalServerError)
	// A single task is not affected.
	submitOne(t, base, map[string]any{"url": "https://a.example/"})
	st := s.Stats()
	if st.TasksCreated != 5 || st.Batches != 1 || st.Batches500AfterCreate != 1 || st.Requests["POST /v3/task/batch 500"] != 1 {
		t.Errorf("stats created %d batches %d 500s %d requests %v", st.TasksCreated, st.Batches, st.Batches500AfterCreate, st.Requests)
	}
	if st.DuplicateSubmissions != 0 || st.Items != 5 {
		t.Errorf("items %d duplicates %d, want 5 and 0", st.Items, st.DuplicateSubmissions)
	}
}

// TestFaultsAfterCreateFollowTheSeed proves that which batches are cut or
// answered 500 is the same under the same seed.
func TestFaultsAfterCreateFollowTheSeed(t *testing.T) {
	t.Parallel()
	run := func(seed int64) string {
		_, base := start(t, Config{Batch500AfterCreateRate: 0.4, BatchInterval: -1, Seed: seed})
		var b strings.Builder
		for range 16 {
			b.WriteString(strconv.Itoa(call(t, "POST", base+"/v3/task/batch", testToken, map[string]any{"url": urls(1)}).status))
			b.WriteByte(' ')
		}
		return b.String()
	}
	a, b := run(5), run(5)
	if a != b || !strings.Contains(a, "500") || !strings.Contains(a, "200") {
		t.Errorf("seed 5 twice: %s / %s; want the same mix of 200 and 500", a, b)
	}
}

// TestSubmissionsArePerItem proves the per-item counter: an item is the
// target, input and parameters, whatever the key order, callback_url or
// passthrough; a different parameter or target is another item.
func TestSubmissionsArePerItem(t *testing.T) {
	t.Parallel()
	s, base := start(t, Config{BatchInterval: -1})
	for _, body := range []string{
		`{"target":"google_search","query":["a","b"],"geo":"Germany","passthrough":"mac-1"}`,
		`{"geo":"Germany","query":["b"],"target":"google_search","passthrough":"mac-2","callback_url":"https://hooks.example/"}`, // b again
		`{"target":"google_search","query":["a"],"geo":"France"}`,                                                                // another item
		`{"target":"bing_search","query":["a"],"geo":"Germany"}`,                                                                 // another item
	} {
		if a := call(t, "POST", base+"/v3/task/batch", testToken, body); a.status != 200 {
			t.Fatalf("%s: %d %s", body, a.status, a.body)
		}
	}
	submitOne(t, base, map[string]any{"target": "chatgpt", "prompt": "hi"})
	submitOne(t, base, map[string]any{"target": "chatgpt", "prompt": "hi", "passtrough": "x"}) // hi again
	st := s.Stats()
	want := map[string]int{
		`google_search query {"geo":"Germany"} b`: 2,
		`chatgpt prompt {} hi`:                    2,
	}
	if st.Items != 5 || st.DuplicateSubmissions != 2 || !mapsEqual(st.Duplicates, want) {
		t.Errorf("items %d duplicates %d %v; want 5, 2, %v", st.Items, st.DuplicateSubmissions, st.Duplicates, want)
	}
	// The stats endpoint serves them too.
	var served Stats
	if err := json.Unmarshal(call(t, "GET", base+"/_sandbox/stats", "", nil).body, &served); err != nil || !mapsEqual(served.Duplicates, want) || served.DuplicateSubmissions != 2 {
		t.Errorf("served %+v (%v)", served, err)
	}
}

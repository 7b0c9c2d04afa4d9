// Package decodo is a client of the Decodo Scraper API's asynchronous
// endpoints: queue one task or a batch, read a task's status, fetch its
// results. See decodo-api.md for the API it follows.
package decodo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/decodo-batch/decodo-batch/io/jsonstr"
)

// DefaultEndpoint is the base URL of the real API.
const DefaultEndpoint = "https://scraper-api.decodo.com"

// Task statuses.
const (
	StatusPending = "pending"
	StatusDone    = "done"
	StatusFaulted = "faulted"
)

// Task is the task object the API answers for a queued task and for a status
// request. Only the fields the client acts on are decoded.
type Task struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Target    string `json:"target"`
	URL       string `json:"url"`
	Query     string `json:"query"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

// UnmarshalJSON accepts an id sent as a string or as a bare number, kept
// exact either way.
func (t *Task) UnmarshalJSON(b []byte) error {
	var w wireTask
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*t = w.task()
	return nil
}

// wireTask is a task object as sent: decoding into it directly (not
// through Task's UnmarshalJSON) scans a batch answer once, not once per
// task.
type wireTask struct {
	ID        flexID `json:"id"`
	Status    string `json:"status"`
	Target    string `json:"target"`
	URL       string `json:"url"`
	Query     string `json:"query"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

func (w *wireTask) task() Task {
	return Task{ID: string(w.ID), Status: w.Status, Target: w.Target, URL: w.URL, Query: w.Query, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
}

func tasksOf(ws []wireTask) []Task {
	if ws == nil {
		return nil
	}
	ts := make([]Task, len(ws))
	for i := range ws {
		ts[i] = ws[i].task()
	}
	return ts
}

// flexID is an id sent as a JSON string or number, as its text.
type flexID string

func (f *flexID) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexID(s)
		return nil
	}
	if string(b) == "null" {
		*f = ""
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexID(n)
	return nil
}

// Item returns the url or query the task was created for.
func (t *Task) Item() string {
	if t.URL != "" {
		return t.URL
	}
	return t.Query
}

// BatchRequest is one POST /v3/task/batch: URLs or Queries (never both) of
// one Target, with Params (a JSON object of the other task parameters, may be
// empty) shared by every item.
type BatchRequest struct {
	Target  string
	URLs    []string
	Queries []string
	Params  json.RawMessage
}

// Len returns the number of items in the batch.
func (r *BatchRequest) Len() int { return len(r.URLs) + len(r.Queries) }

// MarshalJSON writes the request body: the shared parameters, then target and
// the item list. It returns an error if Params is neither empty nor a JSON
// object.
func (r BatchRequest) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.Grow(64 + 80*r.Len() + len(r.Params))
	b.WriteByte('{')
	if p := bytes.TrimSpace(r.Params); len(p) > 0 {
		// Valid also rejects trailing data, so p is exactly one object and
		// ends with '}'; an object with only spaces inside adds no comma.
		if p[0] != '{' || !json.Valid(p) {
			return nil, errors.New("decodo: batch params are not a JSON object")
		}
		if in := bytes.TrimSpace(p[1 : len(p)-1]); len(in) > 0 {
			b.Write(in)
			b.WriteByte(',')
		}
	}
	b.WriteString(`"target":`)
	writeJSONString(&b, r.Target)
	key, items := `,"url":[`, r.URLs
	if len(r.Queries) > 0 {
		key, items = `,"query":[`, r.Queries
	}
	b.WriteString(key)
	for i, s := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, s)
	}
	b.WriteString("]}")
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	b.Write(jsonstr.Append(b.AvailableBuffer(), s))
}

// BatchResponse is the API's answer to a batch: its id (a number above 2^53,
// kept exact as text), the queued tasks and the items it refused.
type BatchResponse struct {
	ID     string
	Tasks  []Task
	Errors []json.RawMessage
}

// UnmarshalJSON accepts both forms the API is known to answer: the SDK's
// object {"id", "queries", "errors"} and a bare array of task objects.
func (r *BatchResponse) UnmarshalJSON(b []byte) error {
	fast, err := scanBatch(b)
	if err != nil {
		fast, err = decodeBatch(b)
	}
	if err == nil {
		*r = *fast
	}
	return err
}

// decodeBatch reads a batch answer with encoding/json alone: what the fast
// reader hands on, and the reference it is tested against.
func decodeBatch(b []byte) (*BatchResponse, error) {
	r := &BatchResponse{}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var ws []wireTask
		if err := json.Unmarshal(b, &ws); err != nil {
			return nil, err
		}
		r.Tasks = tasksOf(ws)
		return r, nil
	}
	var v struct {
		ID      flexID            `json:"id"`
		Queries []wireTask        `json:"queries"`
		Tasks   []wireTask        `json:"tasks"`
		Errors  []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	r.ID, r.Tasks, r.Errors = string(v.ID), tasksOf(v.Queries), v.Errors
	if r.Tasks == nil {
		r.Tasks = tasksOf(v.Tasks)
	}
	return r, nil
}

// Result is one entry of a task's results: one page of what the target site
// answered. Content is kept as raw JSON (a string, or a value with parse).
type Result struct {
	Content    json.RawMessage `json:"content"`
	StatusCode int             `json:"status_code"`
	URL        string          `json:"url"`
	Query      string          `json:"query"`
	TaskID     string          `json:"task_id"`
	UpdatedAt  string          `json:"updated_at"`
}

// AnswerError is a 2xx answer that could not be read. For a batch it means
// the API queued (and will bill) tasks whose ids are unknown: sending the
// batch again would pay for them twice.
type AnswerError struct {
	Op  string // what was asked, e.g. "POST /v3/task/batch"
	Err error  // why the answer could not be read
}

func (e *AnswerError) Error() string { return e.Op + ": unreadable 2xx answer: " + e.Err.Error() }
func (e *AnswerError) Unwrap() error { return e.Err }

// Error is a non-2xx answer of the API.
type Error struct {
	StatusCode int           // HTTP status
	Op         string        // what was asked, e.g. "POST /v3/task/batch"
	Message    string        // the API's message, or the HTTP status text
	Errors     []string      // the API's per-item errors, as text
	RetryAfter time.Duration // from a Retry-After header, 0 if none
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %d", e.Op, e.StatusCode)
	if e.Message != "" {
		msg += " " + e.Message
	}
	if len(e.Errors) > 0 {
		msg += ": " + strings.Join(e.Errors, "; ")
	}
	return msg
}

// Auth reports whether the error is a refused token (401 or 403).
func (e *Error) Auth() bool { return e.StatusCode == 401 || e.StatusCode == 403 }

// RateLimited reports whether the error is a 429.
func (e *Error) RateLimited() bool { return e.StatusCode == 429 }

// Temporary reports whether trying again later may succeed: 429 and 5xx.
func (e *Error) Temporary() bool { return e.StatusCode == 429 || e.StatusCode >= 500 }

// Validation reports whether the API refused the request's content (400, 422).
func (e *Error) Validation() bool { return e.StatusCode == 400 || e.StatusCode == 422 }

// Gone reports whether the task is unknown or its results expired (404, 410).
func (e *Error) Gone() bool { return e.StatusCode == 404 || e.StatusCode == 410 }

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	// ParseFloat takes "Inf", and seconds beyond a Duration's range would
	// convert to a negative one: both count as garbage.
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && s < float64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

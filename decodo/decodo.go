// Package decodo is a client of the Decodo Scraper API's asynchronous
// endpoints: queue one task or a batch, read a task's status, fetch its
// results.
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
	ID        ID     `json:"id"`
	Status    string `json:"status"`
	Target    string `json:"target"`
	URL       string `json:"url"`
	Query     string `json:"query"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

// ID is a task's or a batch's id: the API sends it as a string of digits
// or as a bare number above 2^53, kept exact as text either way.
type ID string

// UnmarshalJSON reads an id sent as a string or a number (null gives "").
// It returns an error for an id of another type.
func (id *ID) UnmarshalJSON(b []byte) error {
	s, err := idText(b)
	*id = ID(s)
	return err
}

// idText returns an id sent as a JSON string or number as its text: a
// number stays exact whatever its size. null or no id gives "".
func idText(v []byte) (string, error) {
	if len(v) > 0 && (v[0] == '-' || '0' <= v[0] && v[0] <= '9') {
		return string(v), nil // already checked to be a JSON number
	}
	s, err := str(v)
	if err != nil {
		return "", fmt.Errorf("decodo: id %.40s is neither a string nor a number", v)
	}
	return s, nil
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
// object {"id", "queries" (or "tasks"), "errors"} and a bare array of task
// objects. It returns the errors of [ID.UnmarshalJSON].
func (r *BatchResponse) UnmarshalJSON(b []byte) error {
	*r = BatchResponse{}
	if b = bytes.TrimLeft(b, " \t\r\n"); len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, &r.Tasks)
	}
	var v struct {
		ID      ID                `json:"id"`
		Queries []Task            `json:"queries"`
		Tasks   []Task            `json:"tasks"`
		Errors  []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	r.ID, r.Tasks, r.Errors = string(v.ID), v.Queries, v.Errors
	if r.Tasks == nil {
		r.Tasks = v.Tasks
	}
	return nil
}

// Result is one entry of a task's results: one page of what the target site
// answered. Content is kept as raw JSON (a string, or a value with parse),
// compact: it holds no line break, so it fits on one line of an output file.
type Result struct {
	Content    json.RawMessage `json:"content"`
	StatusCode int             `json:"status_code"`
	// Headers and Cookies are what the target site sent with the page, as
	// the API gives them (an object, an array), compact like Content; nil
	// when the entry has none or null.
	Headers   json.RawMessage `json:"headers"`
	Cookies   json.RawMessage `json:"cookies"`
	URL       string          `json:"url"`
	Query     string          `json:"query"`
	TaskID    string          `json:"task_id"`
	UpdatedAt string          `json:"updated_at"`
}

// UnmarshalJSON reads a result as the fast reader of results answers does:
// the task_id as a string or a number, the content, headers and cookies
// made compact.
func (r *Result) UnmarshalJSON(b []byte) error {
	type fields Result
	*r = Result{}
	v := struct {
		*fields
		TaskID json.RawMessage `json:"task_id"`
	}{fields: (*fields)(r)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	var err error
	if r.TaskID, err = idText(v.TaskID); err != nil {
		return err
	}
	r.Content = compactContent(r.Content)
	r.Headers = compactOrNil(r.Headers)
	r.Cookies = compactOrNil(r.Cookies)
	return nil
}

// compactOrNil returns the valid JSON value v made compact, or nil for
// nothing or null.
func compactOrNil(v []byte) json.RawMessage {
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	return compactContent(v)
}

// compactContent returns a copy of the valid JSON value v without the
// spaces and line breaks between its tokens. A string needs nothing: it
// cannot hold a raw line break.
func compactContent(v []byte) json.RawMessage {
	if len(v) == 0 || v[0] == '"' || compact(v) {
		return bytes.Clone(v)
	}
	var b bytes.Buffer
	b.Grow(len(v))
	if json.Compact(&b, v) != nil {
		return bytes.Clone(v) // not reached: v was read as JSON
	}
	return b.Bytes()
}

// AnswerError is a 2xx answer that could not be read: its body broke off or
// does not parse. For a batch it means the API queued (and will bill) tasks
// whose ids are unknown: sending the batch again would pay for them twice.
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

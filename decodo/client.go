package decodo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ErrInsecureEndpoint is returned by [New] for a plain http:// endpoint that
// is not a loopback address: the token would cross the network in clear.
var ErrInsecureEndpoint = errors.New("decodo: refusing to send the token over plain http to a non-loopback host")

// ErrUnavailable is what callers return when the API could not be reached
// or answered 5xx beyond their retries: nothing was lost, and a later run
// goes on.
var ErrUnavailable = errors.New("the API was unavailable")

// ErrAuth is what callers return when the API refuses the token (401/403);
// it ends a run.
var ErrAuth = errors.New("the API refused the token (401/403)")

// Client talks to the asynchronous endpoints of the API. It is safe for
// concurrent use.
type Client struct {
	http *http.Client
	base string // without a trailing slash
	auth string // "Basic <token>"
	ua   string

	timeout, submitTimeout time.Duration // of a GET, of a POST
}

// Config holds what [New] needs besides the endpoint and token.
type Config struct {
	// Conns is the number of concurrent requests (the workers): as many
	// idle connections, and a few more, are kept to the API.
	Conns int
	// Timeout bounds one GET, 0 for 60s.
	Timeout time.Duration
	// SubmitTimeout bounds one POST, 0 for 180s (the official Go SDK's):
	// a submission given up too early may still be queued, and its rows
	// are then not sent again.
	SubmitTimeout time.Duration
	// Version goes into the User-Agent.
	Version string
}

// New returns a client of the API at endpoint with the Basic token. It
// returns [ErrInsecureEndpoint] for http:// to a non-loopback host and an
// error for an endpoint that is not an absolute http(s) URL.
func New(endpoint, token string, cfg Config) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("decodo: endpoint %q is not an http(s) URL", endpoint)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, ErrInsecureEndpoint
	}
	if token == "" {
		return nil, errors.New("decodo: no token")
	}
	// Written into request headers: a line break would start another.
	if strings.ContainsAny(token, "\r\n\x00") || strings.ContainsAny(cfg.Version, "\r\n\x00") {
		return nil, errors.New("decodo: the token or version holds a line break or NUL")
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 32
	}
	if cfg.SubmitTimeout <= 0 {
		cfg.SubmitTimeout = 180 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	// The default transport keeps two idle connections per host: with more
	// polls in flight, every other one would dial anew. The headroom is
	// for batch submissions beside the polls. HTTP/2, where TLS offers it,
	// stays allowed.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = cfg.Conns + 8
	tr.MaxIdleConnsPerHost = cfg.Conns + 8
	return &Client{
		http:    &http.Client{Transport: tr},
		timeout: cfg.Timeout, submitTimeout: cfg.SubmitTimeout,
		base: strings.TrimRight(u.String(), "/"),
		auth: "Basic " + token,
		ua:   "decodo-batch/" + cfg.Version,
	}, nil
}

// CloseIdleConnections closes the connections kept for later requests.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SubmitBatch queues a batch. It returns an [*Error] for a non-2xx answer,
// or the transport's error.
func (c *Client) SubmitBatch(ctx context.Context, req BatchRequest) (*BatchResponse, error) {
	body, err := req.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var resp BatchResponse
	// resp.UnmarshalJSON directly: through json.Unmarshal the answer
	// (thousands of task objects) would be scanned twice.
	if _, err := c.do(ctx, http.MethodPost, "/v3/task/batch", "POST /v3/task/batch", body, resp.UnmarshalJSON); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Submit queues one task with the given parameters (a JSON object holding
// target and its input field: url, query, prompt or product_id). It returns an [*Error] for a non-2xx answer.
func (c *Client) Submit(ctx context.Context, params json.RawMessage) (*Task, error) {
	var t Task
	if _, err := c.do(ctx, http.MethodPost, "/v3/task", "POST /v3/task", params, func(b []byte) error { return json.Unmarshal(b, &t) }); err != nil {
		return nil, err
	}
	return &t, nil
}

// Task reads a task's status. It returns an [*Error] for a non-2xx answer
// (404 once the task is unknown or expired).
func (c *Client) Task(ctx context.Context, id string) (*Task, error) {
	var t Task
	if _, err := c.do(ctx, http.MethodGet, "/v3/task/"+url.PathEscape(id), "GET /v3/task/{id}", nil, func(b []byte) error { return json.Unmarshal(b, &t) }); err != nil {
		return nil, err
	}
	return &t, nil
}

// Results fetches a task's results. ready is false while the task is
// pending (HTTP 204, or an empty results list). It returns an [*Error] for a
// non-2xx answer.
func (c *Client) Results(ctx context.Context, id string) (results []Result, ready bool, err error) {
	var v struct {
		Results []Result `json:"results"`
	}
	status, err := c.do(ctx, http.MethodGet, "/v3/task/"+url.PathEscape(id)+"/results", "GET /v3/task/{id}/results", nil, func(b []byte) error {
		if res, err := scanResults(b); err == nil {
			v.Results = res
			return nil
		}
		return json.Unmarshal(b, &v)
	})
	if err != nil || status == http.StatusNoContent || len(v.Results) == 0 {
		return nil, false, err
	}
	return v.Results, true, nil
}

// do sends one request and hands a 2xx body to decode. A 204 is not
// decoded.
func (c *Client) do(ctx context.Context, method, path, op string, body []byte, decode func([]byte) error) (int, error) {
	timeout := c.timeout
	if method == http.MethodPost {
		timeout = c.submitTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error carries the URL, never the header with the token.
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, answerError(op, resp.StatusCode, resp.Header.Get("Retry-After"), data)
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	defer bodyPool.Put(buf)
	buf.Reset()
	if n := resp.ContentLength; n > 0 && n < 64<<20 {
		buf.Grow(int(n) + 1)
	}
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		// The API answered 2xx: for a POST, it queued what was sent.
		return resp.StatusCode, &AnswerError{Op: op, Err: fmt.Errorf("read answer: %w", err)}
	}
	// decode keeps nothing of data: the buffer goes back to the pool.
	data := buf.Bytes()
	if err := decode(data); err != nil {
		return resp.StatusCode, &AnswerError{Op: op, Err: err}
	}
	return resp.StatusCode, nil
}

// bodyPool holds answer buffers: results come by the thousand a second.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// answerError makes the [*Error] of a non-2xx answer from its status, its
// Retry-After header and (the start of) its body.
func answerError(op string, status int, retryAfter string, data []byte) *Error {
	e := &Error{
		StatusCode: status,
		Op:         op,
		RetryAfter: parseRetryAfter(retryAfter, time.Now()),
	}
	var v struct {
		Status  string            `json:"status"`
		Message string            `json:"message"`
		Errors  []json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(data, &v) == nil {
		e.Message = v.Message
		for _, raw := range v.Errors {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				s = string(raw)
			}
			e.Errors = append(e.Errors, s)
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

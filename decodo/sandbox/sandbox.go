// Package sandbox is an in-process simulation of the Decodo Scraper API's
// asynchronous endpoints, served as an [http.Handler]:
//
//	POST /v3/task                 queue one task
//	POST /v3/task/batch           queue up to 3000 tasks, paced per token
//	GET  /v3/task/{id}            the task object: pending, done or faulted
//	GET  /v3/task/{id}/results    204 while pending, then the results
//	GET  /_sandbox/stats          the counters of [Stats] as JSON (no auth)
//
// It is written from the API description alone, not from this project's
// client, so that tests run against it catch the client's misreadings.
// [Stats] counts the tasks created for each distinct item, so a test can
// prove that nothing was paid for twice.
//
// A request meets these checks in this order, and the first that fires
// answers it: a dropped connection ([Config.DropRate]); an outage
// ([Server.SetDown]); an injected 500, 502
// or 503 ([Config.ErrorRate]); for GET, an injected 429 ([Config.GetLimitRate]);
// authentication (401); the route (404, 405). A batch then meets the pacing
// check (429), decided on arrival and in the order of arrival (a batch let
// through takes its slot, whatever follows), waits [Config.BatchLatency] and
// is validated (400); its tasks are then created, and its answer may still
// be a 500 ([Config.Batch500AfterCreateRate]) or cut short
// ([Config.TruncateBatchRate]). The stats endpoint skips all of these.
//
// Requests are validated against the table of targets of package decodo
// (the official SDK's request schemas): the target's one input field (a
// batch takes only url or query arrays; prompt, product_id and no input go
// one task per POST /v3/task), and each parameter's name, type, enum and
// range. That table is all the sandbox shares with the client.
//
// Tasks complete lazily: each task stores its completion time, drawn from
// [Config.Delay] when it is created, and a request compares it with the
// clock. No goroutine or timer exists per task except for tasks with a
// callback_url.
package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo/internal/schema"
)

// FaultMode says what GET /v3/task/{id}/results answers for a faulted task;
// the public record does not say, so the client must cope with both.
type FaultMode uint8

// The fault modes.
const (
	FaultNoContent FaultMode = iota // 204 with no body, forever, as if pending
	FaultError                      // a JSON error: 400 or 500, fixed per task
)

// String returns "no-content" or "error".
func (m FaultMode) String() string {
	if m == FaultError {
		return "error"
	}
	return "no-content"
}

// Config holds the knobs of a [Server]. The zero Config is a fast, faultless
// API: tasks complete at once, batches are paced at 1 per second per token,
// any non-empty token is accepted.
type Config struct {
	// Tokens are the accepted Basic tokens (the base64 value after "Basic ").
	// Empty accepts any non-empty token.
	Tokens []string
	// BatchInterval is the least time between the arrivals of two accepted
	// POST /v3/task/batch of one token; a batch inside it gets 429 with a
	// Retry-After in whole seconds, rounded up. 0 means 1s; negative, no limit.
	BatchInterval time.Duration
	// MaxItems is the most url or query items of one batch; 0 means 3000.
	MaxItems int
	// Delay is how long a task stays pending.
	Delay Delay
	// FaultRate is the fraction of tasks that end "faulted" instead of "done".
	FaultRate float64
	// FaultMode is what /results answers for a faulted task.
	FaultMode FaultMode
	// TTL is how long a task and its results are kept after creation; after
	// it both GETs answer 404. 0 means 24h; negative, forever.
	TTL time.Duration
	// ErrorRate is the fraction of requests (any endpoint) answered 500, 502
	// or 503 with a JSON error, before anything else is done.
	ErrorRate float64
	// DropRate is the fraction of requests whose connection is closed with
	// no answer at all.
	DropRate float64
	// GetLimitRate is the fraction of GET requests answered 429 with
	// "Retry-After: 1".
	GetLimitRate float64
	// BatchLatency is how long a batch that passes the pacing check takes to
	// be processed and answered; a client that gives up meanwhile creates
	// nothing.
	BatchLatency time.Duration
	// ContentSize is the size in bytes of the generated content of each
	// result page (0 means 1024). The content holds the task's url or query
	// verbatim, however large or small the size.
	ContentSize int
	// ContentKind is what the HTML content of a result looks like:
	// [ContentText] (the default, "") or [ContentHTML], pages like real
	// ones. With headless=png, the content is a PNG, base64-encoded.
	ContentKind string
	// TargetErrorRate is the fraction of done tasks whose result has a
	// status_code of 404 or 500: the target site failed, the task did not.
	TargetErrorRate float64
	// ArrayResponse makes batch POSTs answer a bare JSON array of task
	// objects (the form one third-party client reads) instead of the
	// {"id", "queries", "errors"} object of the official SDKs.
	ArrayResponse bool
	// AllowUnknownParams accepts, unchecked and without effect, parameters
	// the table of targets does not list for the request's target, as the
	// real API may for parameters newer than the table. By default such a
	// parameter is refused with a 400 naming it and the nearest known name.
	AllowUnknownParams bool
	// PageErrorRate is the fraction of the pages of a done task with
	// page_count > 1 whose status_code is 404 or 500, each page drawn on
	// its own: the target site failed that page, the task did not.
	PageErrorRate float64
	// IndentAnswers pretty-prints every JSON answer of the API over
	// several lines, parsed contents included.
	IndentAnswers bool
	// TruncateBatchRate is the fraction of accepted batches whose tasks are
	// created but whose 200 answer is cut in the middle: either a complete
	// HTTP answer holding half the JSON, or the full length announced and
	// the connection closed halfway (each half the time). The client cannot
	// learn the ids of tasks it will be billed for.
	TruncateBatchRate float64
	// Batch500AfterCreateRate is the fraction of accepted batches whose
	// tasks are created but which are answered 500, as an API failing after
	// it queued them would.
	Batch500AfterCreateRate float64
	// CallbackLossRate is the fraction of callbacks never made;
	// CallbackDupRate the fraction made twice (the second up to a second
	// later); CallbackDelay delays each callback past its task's
	// completion by a random time up to it (so they come out of order).
	// Their draws have a stream of their own.
	CallbackLossRate, CallbackDupRate float64
	CallbackDelay                     time.Duration
	// Seed seeds the draws of delays and faults: the same seed and the same
	// submissions in the same order give the same delays and faults. Injected
	// request faults (ErrorRate, DropRate, GetLimitRate, TruncateBatchRate,
	// Batch500AfterCreateRate) use their own stream, so they never shift the
	// task draws.
	Seed int64
	// Now is the clock; nil means time.Now. Tests may fake it.
	Now func() time.Time
}

// Defaults and API limits: the real API takes one batch a second per account.
const (
	defaultBatchInterval = time.Second
	defaultMaxItems      = 3000
	defaultTTL           = 24 * time.Hour
	defaultContentSize   = 1024
	maxURLLen            = schema.MaxURLLen
	maxQueryLen          = schema.MaxQueryLen
	maxBodyBytes         = 64 << 20
	callbackTimeout      = 10 * time.Second

	// invalidHook in an item makes the sandbox refuse it, so tests can make
	// the API reject an item that the client believes valid.
	invalidHook = "sandbox-invalid"
)

// Server is the simulated API; it implements [http.Handler]. Create it with
// [New]; it is safe for concurrent use.
type Server struct {
	cfg      Config
	now      func() time.Time
	tokens   map[string]struct{}
	interval time.Duration // <= 0: no pacing
	ttl      int64         // nanoseconds; <= 0: forever
	filler   string        // ContentSize bytes of JSON-safe text, shared by every result
	html     *htmlPool     // with ContentKind html
	png      string        // the headless=png screenshot, base64

	// injMu guards injRand, the stream of request-level faults. It is apart
	// from rand so that concurrent GETs cannot shift the task draws.
	injMu   sync.Mutex
	injRand *rand.Rand

	down atomic.Int32 // while not 0, the status every request is answered with ([Server.SetDown])

	cbClient *http.Client
	cbCtx    context.Context
	cbCancel context.CancelFunc
	cbWG     sync.WaitGroup

	mu        sync.Mutex
	rand      *rand.Rand
	cbRand    *rand.Rand // callback loss, duplication and delay
	tasks     map[uint64]task
	lastID    uint64
	lastBatch map[string]time.Time // token -> arrival of its last batch let through the rate limit
	expiry    []span               // submissions in creation order, for freeing expired tasks
	timers    map[uint64]*time.Timer
	closed    bool
	st        counters
}

// task is one task; compact because a benchmark creates hundreds of
// thousands. The shared parts live in its group.
type task struct {
	group   *group
	input   string // the url, query, prompt or product_id; "" for a target taking none
	due     int64  // completion time, Unix nanoseconds
	code    int16  // done: the target's status_code; faulted: the /results error status under FaultError
	faulted bool
	served  bool   // a 200 of /results was given (for Stats.ResultWaits)
	pages   uint32 // 2 bits a page, from the first: 0 the task's code, 1 a 404, 2 a 500 ([Config.PageErrorRate])
}

// pageCode returns the status_code of page (from 1) of a done task.
func (t *task) pageCode(page int) int16 {
	switch (t.pages >> (2 * (page - 1))) & 3 {
	case 1:
		return http.StatusNotFound
	case 2:
		return http.StatusInternalServerError
	}
	return t.code
}

// group is what the tasks of one submission share.
type group struct {
	created   int64  // Unix nanoseconds
	createdAt string // created, formatted once for every answer
	target    string
	input     schema.Input // the field the tasks carry their input in
	params    []byte       // the echoed parameters as `,"key":value...`
	item      string       // the item's identity besides its input (see itemOf)
	itemHash  uint64       // a hash of item
	pageCount int
	headless  string // "png": the content is a screenshot
	parse     bool
	markdown  bool
	callback  string // loopback callback_url, or ""
}

// span is the id range of one submission, freed together when it expires.
type span struct {
	first   uint64
	n       int
	created int64
}

// New returns a [Server] for cfg, with defaults filled in.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BatchInterval == 0 {
		cfg.BatchInterval = defaultBatchInterval
	}
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = defaultMaxItems
	}
	if cfg.TTL == 0 {
		cfg.TTL = defaultTTL
	}
	if cfg.ContentSize == 0 {
		cfg.ContentSize = defaultContentSize
	}
	s := &Server{
		cfg:       cfg,
		now:       cfg.Now,
		interval:  cfg.BatchInterval,
		ttl:       int64(cfg.TTL),
		filler:    makeFiller(cfg.ContentSize),
		png:       pngBase64(cfg.Seed),
		injRand:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed_1a7e)),
		rand:      rand.New(rand.NewPCG(uint64(cfg.Seed), 0xdec0d0)),
		cbRand:    rand.New(rand.NewPCG(uint64(cfg.Seed), 0xca11bac)),
		tasks:     make(map[uint64]task),
		lastBatch: make(map[string]time.Time),
		timers:    make(map[uint64]*time.Timer),
		// Callbacks come in thousands a second: keep their connections.
		cbClient: &http.Client{Timeout: callbackTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}},
		st:       counters{requests: make(map[countKey]int)},
	}
	if cfg.ContentKind == ContentHTML {
		s.html = newHTMLPool(cfg.Seed, cfg.ContentSize)
	}
	if len(cfg.Tokens) > 0 {
		s.tokens = make(map[string]struct{}, len(cfg.Tokens))
		for _, t := range cfg.Tokens {
			s.tokens[t] = struct{}{}
		}
	}
	s.cbCtx, s.cbCancel = context.WithCancel(context.Background())
	return s
}

// Close stops the callbacks not yet made and waits for those under way.
// Requests are still answered afterwards, without callbacks.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for id, t := range s.timers {
		t.Stop()
		delete(s.timers, id)
	}
	s.mu.Unlock()
	s.cbCancel()
	s.cbWG.Wait()
}

type route uint8

const (
	routeOther route = iota
	routeTask
	routeBatch
	routeStatus
	routeResults
	routeStats
)

var routePatterns = [...]string{
	routeOther:   "*",
	routeTask:    "/v3/task",
	routeBatch:   "/v3/task/batch",
	routeStatus:  "/v3/task/{id}",
	routeResults: "/v3/task/{id}/results",
	routeStats:   "/_sandbox/stats",
}

// match finds the route of a request and the task id in its path. ok is
// false when the path exists but not for this method.
func match(method, path string) (rt route, id string, ok bool) {
	switch path {
	case "/v3/task":
		return routeTask, "", method == http.MethodPost
	case "/_sandbox/stats":
		return routeStats, "", true
	case "/v3/task/batch":
		if method != http.MethodGet {
			return routeBatch, "", method == http.MethodPost
		}
		// GET falls through: like a ServeMux with "GET /v3/task/{id}", it
		// looks for a task called "batch" and finds none.
	}
	rest, found := strings.CutPrefix(path, "/v3/task/")
	if !found || rest == "" {
		return routeOther, "", true
	}
	id, sub, hasSub := strings.Cut(rest, "/")
	switch {
	case !hasSub:
		rt = routeStatus
	case sub == "results":
		rt = routeResults
	default:
		return routeOther, "", true
	}
	return rt, id, method == http.MethodGet
}

// SetDown makes the server answer every request but the stats with status
// (503, 502...) and a JSON error, before any other check, until it is
// called with 0: an outage, for tests.
func (s *Server) SetDown(status int) { s.down.Store(int32(status)) }

// ServeHTTP answers one request; the order of its checks is in the package
// documentation.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, id, allowed := match(r.Method, r.URL.Path)
	if rt == routeStats {
		s.serveStats(w)
		return
	}
	if s.chance(s.cfg.DropRate) {
		s.count(r.Method, rt, statusDrop)
		drop(w)
		return
	}
	if code := int(s.down.Load()); code != 0 {
		s.fail(w, r, rt, &apiError{status: code, message: "sandbox: down (" + http.StatusText(code) + ")"})
		return
	}
	if s.chance(s.cfg.ErrorRate) {
		code := [...]int{500, 502, 503}[s.pick(3)]
		s.fail(w, r, rt, &apiError{status: code, message: "sandbox: injected " + http.StatusText(code)})
		return
	}
	if r.Method == http.MethodGet && s.chance(s.cfg.GetLimitRate) {
		s.fail(w, r, rt, &apiError{status: http.StatusTooManyRequests, message: "sandbox: injected rate limit", retryAfter: 1})
		return
	}
	token, ok := s.authorize(r)
	if !ok {
		s.fail(w, r, rt, &apiError{status: http.StatusUnauthorized, message: "Unauthorized: missing or invalid Basic token"})
		return
	}
	if !allowed {
		w.Header().Set("Allow", allowedMethod(rt))
		s.fail(w, r, rt, &apiError{status: http.StatusMethodNotAllowed, message: "method " + r.Method + " not allowed on " + routePatterns[rt]})
		return
	}
	switch rt {
	case routeTask:
		s.serveSubmit(w, r, token, false)
	case routeBatch:
		s.serveSubmit(w, r, token, true)
	case routeStatus, routeResults:
		s.serveTask(w, r, rt, id)
	default:
		s.fail(w, r, rt, &apiError{status: http.StatusNotFound, message: "no such endpoint: " + r.URL.Path})
	}
}

func allowedMethod(rt route) string {
	if rt == routeTask || rt == routeBatch {
		return http.MethodPost
	}
	return http.MethodGet
}

// authorize reports the request's token and whether it is accepted.
func (s *Server) authorize(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "Basic "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	if tok == "" {
		return "", false
	}
	if s.tokens != nil {
		if _, ok := s.tokens[tok]; !ok {
			return "", false
		}
	}
	return tok, true
}

// chance reports true with probability rate, from the request-fault stream.
func (s *Server) chance(rate float64) bool {
	if rate <= 0 {
		return false
	}
	if rate >= 1 {
		return true
	}
	s.injMu.Lock()
	defer s.injMu.Unlock()
	return s.injRand.Float64() < rate
}

func (s *Server) pick(n int) int {
	s.injMu.Lock()
	defer s.injMu.Unlock()
	return s.injRand.IntN(n)
}

// drop closes the connection without a byte of answer.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	// HTTP/2 or a wrapped writer: the server aborts the stream or connection.
	panic(http.ErrAbortHandler)
}

// apiError is an error answer: {"status": "error", "message", "errors"}.
type apiError struct {
	status     int
	message    string
	errors     []itemError
	retryAfter int // seconds; 0: no Retry-After header
}

// itemError names one bad field or item. Its values are all strings because
// the official Go SDK decodes batch errors as []map[string]string.
type itemError struct {
	Field   string `json:"field"`
	Value   string `json:"value,omitempty"`
	Message string `json:"message"`
}

// fail counts and writes e.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, rt route, e *apiError) {
	s.count(r.Method, rt, e.status)
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	errs := e.errors
	if errs == nil {
		errs = []itemError{}
	}
	body, _ := json.Marshal(struct {
		Status  string      `json:"status"`
		Message string      `json:"message"`
		Errors  []itemError `json:"errors"`
	}{"error", e.message, errs})
	s.answer(w, e.status, body)
}

// answer writes a JSON answer of the API, indented under
// [Config.IndentAnswers].
func (s *Server) answer(w http.ResponseWriter, status int, body []byte) {
	writeBody(w, status, s.indent(body))
}

// indent returns body indented under [Config.IndentAnswers], else body.
func (s *Server) indent(body []byte) []byte {
	if !s.cfg.IndentAnswers {
		return body
	}
	var b bytes.Buffer
	b.Grow(len(body) + len(body)/4)
	if json.Indent(&b, body, "", "  ") != nil {
		return body // not reached: every answer is valid JSON
	}
	return b.Bytes()
}

var jsonContentType = []string{"application/json"}

// writeBody writes a JSON answer. The Content-Type slice is shared by every
// answer: net/http only reads it.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client is gone; nothing to do
}

// bufPool holds answer buffers of the hot GET paths.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 1<<20 {
		return // let an outsized buffer go rather than pin it
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

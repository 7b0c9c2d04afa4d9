// Package callback receives the API's callbacks: a POST of a finished
// task's object, with the passthrough its submission carried. It verifies
// each one (the passthrough's MAC under the job's secret, and a task id the
// run is watching), drops duplicates, and tells its owner "task X is done"
// or "task X says it faulted" as an [Event]. It knows nothing of files or
// the journal: the owner says which tasks to expect ([Receiver.Expect])
// and which are finished ([Receiver.Forget]).
//
// Nothing a callback says is taken at its word: an Event only moves the
// task's next look to now, and the results (or the fault) come from the API.
//
// The server is built to face the internet: bounded header, body and idle
// times, a body size cap, a bound on connections, POST only on the callback
// path, GET /healthz for load balancers, optional TLS.
package callback

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Event is a verified callback, the first of its task.
type Event struct {
	ID      string    // the task's id
	Faulted bool      // the callback says the task faulted (unconfirmed)
	At      time.Time // when it arrived
}

// Config tunes a [Receiver]. Zero fields take the defaults in brackets.
type Config struct {
	Addr     string // where to listen [":8080"]
	Path     string // the path callbacks come to ["/" and any other but /healthz]
	CertFile string // with KeyFile: serve TLS
	KeyFile  string
	MaxBody  int64 // bytes of a callback's body at most [64 KiB]
	MaxConns int   // connections open at once at most [256]
	// Buffer is how many events wait for the owner at most; a verified
	// callback past it is answered 503, for the API to try again [65536].
	Buffer int
	Log    *slog.Logger
}

// Rejection reasons, the keys of [Counts.Rejected].
const (
	ReasonMethod      = "method"           // not a POST (405)
	ReasonPath        = "path"             // not the callback path (404)
	ReasonTooLarge    = "too_large"        // body over MaxBody (413)
	ReasonMalformed   = "malformed"        // not a JSON task object, no id, an unknown status (400)
	ReasonPassthrough = "bad_passthrough"  // missing, or not made by this job's secret (403)
	ReasonUnknownTask = "unknown_task"     // a good passthrough, but a task not watched (404)
	ReasonMismatch    = "wrong_submission" // a good passthrough of another submission than the task's (403)
	ReasonBusy        = "busy"             // the owner is behind (503)
)

// Counts are what the receiver answered, for summary.json.
type Counts struct {
	Accepted   int64            `json:"accepted"`   // verified, first of their task: the task was looked at
	Duplicates int64            `json:"duplicates"` // verified, for a task already called back or finished (200, nothing done)
	Early      int64            `json:"early"`      // verified, before the owner knew the task's id: held (202) until it did
	Rejected   map[string]int64 `json:"rejected,omitempty"`
}

// Receiver is the callback server. Create it with [New], start it with
// [Receiver.Listen] and [Receiver.Serve], stop it with [Receiver.Shutdown].
type Receiver struct {
	cfg    Config
	signer *Signer
	events chan Event
	srv    *http.Server
	ln     net.Listener

	mu     sync.Mutex
	tasks  map[string]expected
	recent recentSet // ids finished lately: their late callbacks are duplicates
	// A task can call back before its submission's answer reached the
	// owner: the passthroughs made for submissions not yet reported
	// (Expect), and the callbacks that came for them, parked until then.
	inflight map[string]bool
	parked   map[string]map[string]Event // passthrough -> task id -> event
	nParked  int

	accepted, duplicates, early atomic.Int64
	rejected                    sync.Map // reason -> *atomic.Int64
}

// expected is a task the run watches.
type expected struct {
	pt     string // the passthrough of its submission; "" when unknown (resumed)
	called bool   // its first verified callback came
}

// New returns a receiver that verifies passthroughs with signer.
func New(cfg Config, signer *Signer) *Receiver {
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 256
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 1 << 16
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{
		cfg: cfg, signer: signer,
		events: make(chan Event, cfg.Buffer),
		tasks:  make(map[string]expected),
		recent: recentSet{max: 1 << 16},

		inflight: make(map[string]bool),
		parked:   make(map[string]map[string]Event),
	}
	r.srv = &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       10 * time.Second, // idle keep-alives must not hold the connection slots
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug),
	}
	return r
}

// Events returns the channel of verified callbacks.
func (r *Receiver) Events() <-chan Event { return r.events }

// Passthrough returns the passthrough of a new submission. Callbacks that
// carry it and come before [Receiver.Expect] names its tasks are held
// until then (answered 202), not refused.
func (r *Receiver) Passthrough() string {
	pt := r.signer.New()
	r.mu.Lock()
	r.inflight[pt] = true
	r.mu.Unlock()
	return pt
}

// maxParked bounds the callbacks held for submissions not yet reported.
const maxParked = 1 << 16

// Expect starts accepting callbacks for the tasks ids of one submission,
// which carried passthrough pt ("" for tasks of an earlier session, whose
// passthrough this session does not know: their MAC alone is checked).
// Callbacks that came early for them become events now.
func (r *Receiver) Expect(pt string, ids ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	early := r.parked[pt]
	delete(r.parked, pt)
	delete(r.inflight, pt)
	r.nParked -= len(early)
	for _, id := range ids {
		e := expected{pt: pt}
		if ev, ok := early[id]; ok {
			delete(early, id)
			select {
			case r.events <- ev:
				e.called = true
				r.accepted.Add(1)
			default: // the owner is behind: polling finds the task
				r.count(ReasonBusy)
			}
		}
		r.tasks[id] = e
	}
	for range early { // tasks the submission did not have
		r.count(ReasonUnknownTask)
	}
}

// Forget stops accepting callbacks for task id (it is finished); a late
// one is answered as a duplicate, for a while.
func (r *Receiver) Forget(id string) {
	r.mu.Lock()
	if _, ok := r.tasks[id]; ok {
		delete(r.tasks, id)
		r.recent.add(id)
	}
	r.mu.Unlock()
}

// Listen opens the listening socket, at most MaxConns connections at once.
func (r *Receiver) Listen() error {
	ln, err := net.Listen("tcp", r.cfg.Addr)
	if err != nil {
		return fmt.Errorf("callback receiver: %w", err)
	}
	r.ln = newLimitListener(ln, r.cfg.MaxConns)
	return nil
}

// Addr returns the address listened on, after [Receiver.Listen].
func (r *Receiver) Addr() net.Addr { return r.ln.Addr() }

// Serve answers callbacks until [Receiver.Shutdown]; it returns nil then,
// or the error that stopped the server.
func (r *Receiver) Serve() error {
	var err error
	if r.cfg.CertFile != "" || r.cfg.KeyFile != "" {
		err = r.srv.ServeTLS(r.ln, r.cfg.CertFile, r.cfg.KeyFile)
	} else {
		err = r.srv.Serve(r.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits, until ctx is done, for
// the requests under way. Until it is called every callback is answered,
// while the run drains too.
func (r *Receiver) Shutdown(ctx context.Context) error {
	return r.srv.Shutdown(ctx)
}

// Counts returns what was answered so far.
func (r *Receiver) Counts() Counts {
	c := Counts{Accepted: r.accepted.Load(), Duplicates: r.duplicates.Load(), Early: r.early.Load()}
	r.rejected.Range(func(k, v any) bool {
		if c.Rejected == nil {
			c.Rejected = make(map[string]int64)
		}
		c.Rejected[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return c
}

func (r *Receiver) count(reason string) {
	v, ok := r.rejected.Load(reason)
	if !ok {
		v, _ = r.rejected.LoadOrStore(reason, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

func (r *Receiver) reject(w http.ResponseWriter, code int, reason string) {
	r.count(reason)
	if code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	http.Error(w, reason, code)
}

// payload is what is read of a callback: the task object's id (or
// task_id, as one client reads it), its status, and the passthrough in
// either spelling.
type payload struct {
	ID          json.RawMessage `json:"id"`
	TaskID      json.RawMessage `json:"task_id"`
	Status      string          `json:"status"`
	Passthrough *string         `json:"passthrough"`
	Passtrough  *string         `json:"passtrough"`
}

// ServeHTTP answers one request: GET /healthz, or a callback.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/healthz" {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			r.reject(w, http.StatusMethodNotAllowed, ReasonMethod)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n")) //nolint:errcheck
		return
	}
	if r.cfg.Path != "" && req.URL.Path != r.cfg.Path {
		r.reject(w, http.StatusNotFound, ReasonPath)
		return
	}
	if req.Method != http.MethodPost {
		r.reject(w, http.StatusMethodNotAllowed, ReasonMethod)
		return
	}
	if req.ContentLength > r.cfg.MaxBody {
		r.reject(w, http.StatusRequestEntityTooLarge, ReasonTooLarge)
		return
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, req.Body, r.cfg.MaxBody)); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			r.reject(w, http.StatusRequestEntityTooLarge, ReasonTooLarge)
		} else {
			r.reject(w, http.StatusBadRequest, ReasonMalformed)
		}
		return
	}
	var p payload
	if err := json.Unmarshal(buf.Bytes(), &p); err != nil {
		r.reject(w, http.StatusBadRequest, ReasonMalformed)
		return
	}
	id, ok := taskID(p.ID)
	if !ok {
		id, ok = taskID(p.TaskID)
	}
	var faulted bool
	switch p.Status {
	case "done", "":
	case "faulted":
		faulted = true
	default: // pending, or something this version does not know
		ok = false
	}
	if !ok {
		r.reject(w, http.StatusBadRequest, ReasonMalformed)
		return
	}
	pt := p.Passthrough
	if pt == nil {
		pt = p.Passtrough
	}
	if pt == nil || !r.signer.Verify(*pt) {
		r.reject(w, http.StatusForbidden, ReasonPassthrough)
		return
	}

	r.mu.Lock()
	e, watched := r.tasks[id]
	switch {
	case !watched && r.recent.has(id):
		r.mu.Unlock()
		r.duplicates.Add(1)
		w.WriteHeader(http.StatusOK)
		return
	case !watched && r.inflight[*pt] && r.nParked < maxParked:
		// Its submission's answer has not reached the owner yet.
		m := r.parked[*pt]
		if m == nil {
			m = make(map[string]Event)
			r.parked[*pt] = m
		}
		if _, dup := m[id]; dup {
			r.mu.Unlock()
			r.duplicates.Add(1)
			w.WriteHeader(http.StatusAccepted)
			return
		}
		m[id] = Event{ID: id, Faulted: faulted, At: time.Now()}
		r.nParked++
		r.early.Add(1)
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		return
	case !watched:
		r.mu.Unlock()
		r.reject(w, http.StatusNotFound, ReasonUnknownTask)
		return
	case e.pt != "" && subtle.ConstantTimeCompare([]byte(e.pt), []byte(*pt)) != 1:
		// A passthrough of this job, but of another submission.
		r.mu.Unlock()
		r.reject(w, http.StatusForbidden, ReasonMismatch)
		return
	case e.called:
		r.mu.Unlock()
		r.duplicates.Add(1)
		w.WriteHeader(http.StatusOK)
		return
	}
	select {
	case r.events <- Event{ID: id, Faulted: faulted, At: time.Now()}:
		e.called = true
		r.tasks[id] = e
		r.mu.Unlock()
	default:
		r.mu.Unlock()
		r.reject(w, http.StatusServiceUnavailable, ReasonBusy)
		return
	}
	r.accepted.Add(1)
	w.WriteHeader(http.StatusOK)
}

// taskID reads a task id given as a JSON string or number: 1 to 32 digits
// (ids are 19; a number is read from its text, not as a float).
func taskID(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
	}
	if len(s) == 0 || len(s) > 32 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	return s, true
}

// recentSet remembers the last max ids added.
type recentSet struct {
	max  int
	set  map[string]struct{}
	ring []string
	next int
}

func (s *recentSet) add(id string) {
	if s.set == nil {
		s.set = make(map[string]struct{})
	}
	if len(s.ring) < s.max {
		s.ring = append(s.ring, id)
	} else {
		delete(s.set, s.ring[s.next])
		s.ring[s.next] = id
		s.next = (s.next + 1) % s.max
	}
	s.set[id] = struct{}{}
}

func (s *recentSet) has(id string) bool {
	_, ok := s.set[id]
	return ok
}

// limitListener accepts at most n connections open at once; the others
// wait in the kernel's backlog (golang.org/x/net/netutil does the same).
type limitListener struct {
	net.Listener
	sem  chan struct{}
	done chan struct{}
	once sync.Once
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.done) })
	return err
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

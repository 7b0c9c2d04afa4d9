package job

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/callback"
	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

func urlInput(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "https://example.com/cb/%d\n", i)
	}
	return writeFile(t, "in.txt", b.String())
}

// TestRunCallbacksLostAndDuplicated proves a run with callbacks ends with
// every row once when 5% of the callbacks are lost (polling finds their
// tasks past the deadline), 10% come twice and all come late and out of
// order, with faulted tasks among them (confirmed, then resubmitted).
func TestRunCallbacksLostAndDuplicated(t *testing.T) {
	t.Parallel()
	sb, api := fastSandbox(t, sandbox.Config{
		CallbackLossRate: 0.05, CallbackDupRate: 0.1, CallbackDelay: 50 * time.Millisecond,
		FaultRate: 0.03, Seed: 11,
	})
	const rows = 2000
	cfg := testConfig(t, api, urlInput(t, rows))
	cfg.Batch.Size = 250
	cfg.Retries = 6
	cfg.CallbackURL = "http://127.0.0.1:0/decodo"
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	seen := outcomes(t, cfg.Out)
	if len(seen) != rows || sum.Results != rows {
		t.Fatalf("%d rows in the outputs, %d results; want %d", len(seen), sum.Results, rows)
	}
	st := sb.Stats()
	if st.CallbacksSent == 0 || st.CallbacksLost == 0 || st.CallbacksDuplicated == 0 {
		t.Fatalf("sandbox sent %d callbacks, lost %d, duplicated %d: the knobs did nothing", st.CallbacksSent, st.CallbacksLost, st.CallbacksDuplicated)
	}
	c := sum.Callbacks
	if c == nil || c.Accepted == 0 || c.Duplicates == 0 {
		t.Fatalf("summary callbacks %+v", c)
	}
	if len(c.Rejected) != 0 {
		t.Errorf("genuine callbacks rejected: %v", c.Rejected)
	}
	// Faulted tasks are resubmitted; nothing else is.
	if want := st.TasksCreated - rows; int(sum.Resubmitted) != want || st.DuplicateSubmissions != want {
		t.Errorf("%d resubmitted, %d duplicate submissions, %d tasks created beyond the rows", sum.Resubmitted, st.DuplicateSubmissions, want)
	}
	fi, err := os.Stat(filepath.Join(cfg.Out, "checkpoint.secret"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v %v", fi, err)
	}
}

// capture records, for a test, the task ids and the passthrough and
// callback URL of the submissions it passes on, and counts the status
// GETs of each task.
type capture struct {
	API
	mu     sync.Mutex
	ids    []string // of every batch
	batch  []string // of the largest batch so far, which carried pt
	pt     string
	url    string
	status map[string]int
	first  chan struct{}
	once   sync.Once
}

func (c *capture) Task(ctx context.Context, id string) (*decodo.Task, error) {
	c.mu.Lock()
	if c.status == nil {
		c.status = map[string]int{}
	}
	c.status[id]++
	c.mu.Unlock()
	return c.API.Task(ctx, id)
}

func (c *capture) SubmitBatch(ctx context.Context, req decodo.BatchRequest) (*decodo.BatchResponse, error) {
	resp, err := c.API.SubmitBatch(ctx, req)
	if err == nil {
		var p struct {
			URL string `json:"callback_url"`
			PT  string `json:"passthrough"`
		}
		json.Unmarshal(req.Params, &p) //nolint:errcheck
		c.mu.Lock()
		if len(resp.Tasks) >= len(c.batch) { // the largest batch so far, with its passthrough
			c.pt, c.batch = p.PT, nil
			for _, t := range resp.Tasks {
				c.batch = append(c.batch, string(t.ID))
			}
		}
		c.url = p.URL
		for _, t := range resp.Tasks {
			c.ids = append(c.ids, string(t.ID))
		}
		c.mu.Unlock()
		c.once.Do(func() { close(c.first) })
	}
	return resp, err
}

// TestRunForgedCallbacks proves forged callbacks sent during a run cost
// nothing: a wrong passthrough, unknown ids, and even "faulted" for
// pending tasks with a genuine passthrough (leaked) cause no extra
// submission and no extra line; the forgeries are refused and counted.
func TestRunForgedCallbacks(t *testing.T) {
	t.Parallel()
	sb, api := fastSandbox(t, sandbox.Config{
		Delay: sandbox.Delay{Kind: sandbox.Uniform, Min: 3 * time.Second, Max: 4 * time.Second}, Seed: 5,
	})
	const rows = 1200
	capt := &capture{API: api, first: make(chan struct{})}
	cfg := testConfig(t, capt, urlInput(t, rows))
	cfg.Batch.Size = 300
	cfg.CallbackURL = "http://127.0.0.1:0/decodo"
	// Statuses are checked on a faulted claim only, not because a task is
	// pending long (the test counts them).
	cfg.Poll.StatusAfter = time.Minute

	var forged struct {
		sync.Mutex
		codes map[string]map[int]int // by kind of forgery
	}
	forged.codes = map[string]map[int]int{"claim": {}, "bad": {}, "unknown": {}}
	const each = 40
	var claimed []string // pending tasks claimed faulted with a genuine passthrough
	forge := func() {
		<-capt.first
		// A loaded machine may send a first batch smaller than the claims.
		var ids []string
		var pt, url string
		for deadline := time.Now().Add(20 * time.Second); len(ids) < each && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			capt.mu.Lock()
			ids, pt, url = append([]string(nil), capt.batch...), capt.pt, capt.url
			capt.mu.Unlock()
		}
		if len(ids) < each {
			return // the test fails on the claims' count
		}
		send := func(kind, body string) {
			resp, err := http.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				return
			}
			resp.Body.Close()
			forged.Lock()
			forged.codes[kind][resp.StatusCode]++
			forged.Unlock()
		}
		// Genuine passthrough, pending tasks, "faulted": confirmed by a
		// status check, never resubmitted. First, while the tasks are
		// surely pending (a task's first callback decides its nudge).
		for i := range each {
			claimed = append(claimed, ids[len(ids)-1-i])
			send("claim", `{"id":"`+ids[len(ids)-1-i]+`","status":"faulted","passthrough":"`+pt+`"}`)
		}
		wrong := callback.NewSigner(make([]byte, callback.SecretSize)).New()
		var wg sync.WaitGroup // in parallel: all in before the run ends
		for i := range each {
			id := ids[i%len(ids)]
			wg.Go(func() {
				send("bad", `{"id":"`+id+`","status":"done","passthrough":"`+wrong+`"}`)
				send("bad", `{"id":"`+id+`","status":"faulted","passthrough":"not-ours"}`)
				send("unknown", fmt.Sprintf(`{"id":"99999999999999%05d","status":"done","passthrough":"%s"}`, i, pt))
			})
		}
		wg.Wait()
	}
	done := make(chan struct{})
	go func() { defer close(done); forge() }()
	sum, err := Run(context.Background(), cfg)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	seen := outcomes(t, cfg.Out)
	if len(seen) != rows || sum.Results != rows {
		t.Fatalf("%d rows in the outputs, %d results; want %d", len(seen), sum.Results, rows)
	}
	st := sb.Stats()
	if st.TasksCreated != rows || st.DuplicateSubmissions != 0 || sum.Resubmitted != 0 {
		t.Errorf("%d tasks created for %d rows, %d duplicate submissions, %d resubmitted: a forged callback cost money",
			st.TasksCreated, rows, st.DuplicateSubmissions, sum.Resubmitted)
	}
	c := sum.Callbacks
	if c == nil {
		t.Fatal("no callback counts in the summary")
	}
	if c.Rejected[callback.ReasonPassthrough] != 2*each || c.Rejected[callback.ReasonUnknownTask] != each {
		t.Errorf("rejections %v, want %d bad_passthrough and %d unknown_task", c.Rejected, 2*each, each)
	}
	forged.Lock()
	defer forged.Unlock()
	// Callbacks with a passthrough whose submission the owner has not
	// taken yet (the API answered it, the owner is busy) are held (202)
	// until it has: then a claim is taken, an unknown id counted unknown.
	bad, unknown, claims := forged.codes["bad"], forged.codes["unknown"], forged.codes["claim"]
	if bad[403] != 2*each || unknown[404]+unknown[202] != each || claims[200]+claims[202] != each {
		t.Errorf("answers to forgeries %v", forged.codes)
	}
	// The faulted claims of pending tasks were checked with a status GET
	// each, at most (one may find its task done already and fetch it),
	// besides the status checks polling makes of a task pending long: a
	// few each at most, not a storm.
	capt.mu.Lock()
	defer capt.mu.Unlock()
	gets := 0
	for _, id := range claimed {
		gets += capt.status[id]
	}
	if len(claimed) != each || gets == 0 || gets > 3*each {
		t.Errorf("%d status GETs of the %d tasks claimed faulted", gets, len(claimed))
	}
}

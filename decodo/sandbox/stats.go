package sandbox

import (
	"encoding/json"
	"hash/maphash"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Stats is a snapshot of a [Server]'s counters. GET /_sandbox/stats serves
// it as JSON (durations in nanoseconds), so a benchmark in another process
// can decode it into this type.
type Stats struct {
	// Requests counts answers by "METHOD /path-pattern STATUS", e.g.
	// "GET /v3/task/{id}/results 204" or "POST /v3/task/batch 429". STATUS
	// is "drop" for a dropped connection and "canceled" for a client gone
	// before its answer. Unknown paths count under the pattern "*"; the
	// stats endpoint itself is not counted.
	Requests map[string]int
	// TasksCreated counts the tasks created; TasksDone and TasksFaulted
	// those whose completion time has passed, by outcome.
	TasksCreated, TasksDone, TasksFaulted int
	// Batches counts the accepted batches.
	Batches int
	// LastCompletion is the latest completion time (creation + delay) among
	// the tasks created so far; FirstCreated the creation of the first task.
	LastCompletion time.Time
	FirstCreated   time.Time
	// ResultWaits summarizes, over the done tasks whose results were
	// fetched, the time from completion to the first 200 of /results.
	ResultWaits WaitSummary
	// BatchTimes are the arrival times of the accepted batches, in order.
	BatchTimes []time.Time
	// Callbacks made (a 2xx answer), failed, and skipped because the
	// callback_url was not a loopback address.
	CallbacksSent, CallbacksFailed, CallbacksSkipped int
	// CallbacksLost and CallbacksDuplicated count the callbacks dropped
	// and sent twice on purpose ([Config.CallbackLossRate], CallbackDupRate).
	CallbacksLost, CallbacksDuplicated int
	// SingleTasks counts the tasks created by POST /v3/task (they are in
	// TasksCreated too).
	SingleTasks int
	// BatchesTruncated and Batches500AfterCreate count the accepted batches
	// whose answer was cut short ([Config.TruncateBatchRate]) or replaced
	// by a 500 ([Config.Batch500AfterCreateRate]) after their tasks were
	// created.
	BatchesTruncated, Batches500AfterCreate int
	// Items counts the distinct items tasks were created for. An item is
	// a target, an input value and the parameters set with it, other than
	// callback_url and passthrough (which say where the outcome goes, not
	// what is scraped).
	Items int
	// DuplicateSubmissions counts the tasks created for an item that
	// already had one: the tasks paid for twice (or more), resubmissions of
	// faulted or expired tasks included. 0 proves that no item was ever
	// submitted twice.
	DuplicateSubmissions int
	// Duplicates gives, for each item created more than once, how many
	// tasks were created for it. Its key reads `TARGET FIELD {PARAMS}
	// INPUT` (INPUT last, as sent).
	Duplicates map[string]int
}

// WaitSummary describes a set of waits.
type WaitSummary struct {
	Count                    int
	Mean, P50, P95, P99, Max time.Duration
}

// Pseudo statuses of counted requests that got no HTTP answer.
const (
	statusDrop     = -1
	statusCanceled = -2
)

type countKey struct {
	method string
	route  route
	status int
}

// counters are the raw material of [Stats]; guarded by Server.mu.
type counters struct {
	requests            map[countKey]int
	created             int
	done, faulted       int
	batches             int
	firstCreated        time.Time
	lastDue             int64
	due                 dueHeap // completions not yet counted in done or faulted
	waits               []int64
	batchTimes          []time.Time
	callbacksSent       int
	callbacksFailed     int
	callbacksSkipped    int
	callbacksLost       int
	callbacksDuplicated int
	singles             int
	truncated           int
	batch500s           int
	items               map[uint64]uint32 // tasks created per item, by hash (see countItem)
	dups                map[uint64]string // the items created more than once, spelled out
	duplicates          int               // the tasks beyond the first of each item
}

// countItem counts one task created for input in group g. The count is
// kept by a 64-bit hash of the item, not the item, so that a run of
// millions of tasks keeps a few bytes per item: two items of a test's
// thousands collide with a probability below 1e-12.
func (c *counters) countItem(g *group, input string) {
	h := maphash.String(itemSeed, input) ^ splitmix(g.itemHash)
	if c.items == nil {
		c.items = make(map[uint64]uint32)
	}
	c.items[h]++
	if c.items[h] > 1 {
		c.duplicates++
		if c.dups == nil {
			c.dups = make(map[uint64]string)
		}
		if _, ok := c.dups[h]; !ok {
			c.dups[h] = g.item + " " + input
		}
	}
}

func (s *Server) count(method string, rt route, status int) {
	s.mu.Lock()
	s.countLocked(method, rt, status)
	s.mu.Unlock()
}

func (s *Server) countLocked(method string, rt route, status int) {
	s.st.requests[countKey{method, rt, status}]++
}

func (c *counters) pushDue(due int64, faulted bool) {
	c.lastDue = max(c.lastDue, due)
	c.due.push(dueEntry{due, faulted})
}

// advance counts the tasks completed by now and drops them from the heap.
func (c *counters) advance(now int64) {
	for len(c.due) > 0 && c.due[0].due <= now {
		if c.due.pop().faulted {
			c.faulted++
		} else {
			c.done++
		}
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	now := s.now().UnixNano()
	s.mu.Lock()
	s.st.advance(now)
	st := Stats{
		Requests:            make(map[string]int, len(s.st.requests)),
		TasksCreated:        s.st.created,
		TasksDone:           s.st.done,
		TasksFaulted:        s.st.faulted,
		Batches:             s.st.batches,
		FirstCreated:        s.st.firstCreated,
		BatchTimes:          slices.SortedFunc(slices.Values(s.st.batchTimes), time.Time.Compare),
		CallbacksSent:       s.st.callbacksSent,
		CallbacksFailed:     s.st.callbacksFailed,
		CallbacksSkipped:    s.st.callbacksSkipped,
		CallbacksLost:       s.st.callbacksLost,
		CallbacksDuplicated: s.st.callbacksDuplicated,

		SingleTasks:           s.st.singles,
		BatchesTruncated:      s.st.truncated,
		Batches500AfterCreate: s.st.batch500s,
		Items:                 len(s.st.items),
		DuplicateSubmissions:  s.st.duplicates,
		Duplicates:            make(map[string]int, len(s.st.dups)),
	}
	for h, item := range s.st.dups {
		st.Duplicates[item] = int(s.st.items[h])
	}
	if s.st.created > 0 {
		st.LastCompletion = time.Unix(0, s.st.lastDue)
	}
	for k, n := range s.st.requests {
		st.Requests[k.String()] = n
	}
	waits := slices.Clone(s.st.waits)
	s.mu.Unlock()
	st.ResultWaits = summarize64(waits)
	return st
}

func (k countKey) String() string {
	var status string
	switch k.status {
	case statusDrop:
		status = "drop"
	case statusCanceled:
		status = "canceled"
	default:
		status = strconv.Itoa(k.status)
	}
	return k.method + " " + routePatterns[k.route] + " " + status
}

func summarize64(w []int64) WaitSummary {
	if len(w) == 0 {
		return WaitSummary{}
	}
	slices.Sort(w)
	var sum float64
	for _, v := range w {
		sum += float64(v)
	}
	at := func(q float64) time.Duration { return time.Duration(w[int(q*float64(len(w)-1))]) }
	return WaitSummary{
		Count: len(w),
		Mean:  time.Duration(sum / float64(len(w))),
		P50:   at(0.50),
		P95:   at(0.95),
		P99:   at(0.99),
		Max:   time.Duration(w[len(w)-1]),
	}
}

func (s *Server) serveStats(w http.ResponseWriter) {
	body, err := json.Marshal(s.Stats())
	if err != nil {
		s.writeErrorBody(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeBody(w, http.StatusOK, body)
}

type dueEntry struct {
	due     int64
	faulted bool
}

// dueHeap is a min-heap of completion times, so that counting the tasks
// done so far costs only the tasks that completed since the last count.
type dueHeap []dueEntry

func (h *dueHeap) push(e dueEntry) {
	*h = append(*h, e)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if a[p].due <= a[i].due {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *dueHeap) pop() dueEntry {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a = a[:last]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < len(a) && a[l].due < a[small].due {
			small = l
		}
		if r := l + 1; r < len(a) && a[r].due < a[small].due {
			small = r
		}
		if small == i {
			break
		}
		a[i], a[small] = a[small], a[i]
		i = small
	}
	*h = a
	return top
}

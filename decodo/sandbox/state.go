package sandbox

import (
	"bytes"
	"cmp"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo/internal/schema"
	"github.com/decodo-batch/decodo-batch/io/durable"
)

// A sandbox's state outlives its process through [Server.Save] and
// [Server.Load]: its tasks (with their creation and completion times and
// outcomes), the ids it handed out, its counters and its seed. A run with
// --sandbox keeps it in OUT, so that a stopped run and the same command
// again meet the same simulated API, as they would the real one: the
// tasks of the first session are known to the second, and [Stats] counts
// over both (DuplicateSubmissions included).
//
// What is not kept: pending callbacks (polling covers them), the pacing
// of batches (a new process waits its own interval) and the injected
// request faults' stream. The per-item counts behind DuplicateSubmissions
// are rebuilt from the kept tasks, so an item whose task expired (after
// the TTL) before the save is counted anew if it is submitted again.

// stateVersion is the version of the saved state's layout.
const stateVersion = 1

type savedState struct {
	Version  int
	Seed     int64
	SavedAt  int64 // Unix nanoseconds: tasks due by then are counted in Done and Faulted
	LastID   uint64
	Groups   []savedGroup
	Tasks    []savedTask
	Expiry   []savedSpan
	Counters savedCounters
}

type savedGroup struct {
	Created   int64
	Target    string
	Input     uint8
	Params    []byte
	Item      string
	PageCount int
	Headless  string
	Parse     bool
	Markdown  bool
}

type savedTask struct {
	ID      uint64
	Group   int
	Input   string
	Due     int64
	Code    int16
	Faulted bool
	Served  bool
	Pages   uint32
}

type savedSpan struct {
	First   uint64
	N       int
	Created int64
}

type savedCount struct {
	Method string
	Route  uint8
	Status int
	N      int
}

type savedItem struct {
	Item, Input string
	N           uint32
}

type savedCounters struct {
	Requests                                  []savedCount
	Created, Done, Faulted, Batches, Singles  int
	Truncated, Batch500s                      int
	CallbacksSent, CallbacksFailed, CbSkipped int
	CallbacksLost, CallbacksDuplicated        int
	FirstCreated                              time.Time
	LastDue                                   int64
	Waits                                     []int64
	BatchTimes                                []time.Time
	Duplicates                                int
	Dups                                      []savedItem
}

// Save writes the server's state to path durably: a temporary file,
// fsynced, renamed over path, and the directory fsynced ([durable.WriteFile]),
// so that path holds the old state or the new one, whole, whatever
// happens. Requests wait while the state is copied, not while it is
// written.
func (s *Server) Save(path string) error {
	st := s.snapshot()
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(st); err != nil {
		return fmt.Errorf("sandbox state: %w", err)
	}
	if err := durable.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("sandbox state: %w", err)
	}
	return nil
}

func (s *Server) snapshot() *savedState {
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.advance(now) // what is due by now is counted; the rest is pushed again on load
	st := &savedState{Version: stateVersion, Seed: s.cfg.Seed, SavedAt: now, LastID: s.lastID}
	groups := make(map[*group]int)
	st.Tasks = make([]savedTask, 0, len(s.tasks))
	for id, t := range s.tasks {
		gi, ok := groups[t.group]
		if !ok {
			g := t.group
			gi = len(st.Groups)
			groups[g] = gi
			st.Groups = append(st.Groups, savedGroup{Created: g.created, Target: g.target, Input: uint8(g.input),
				Params: g.params, Item: g.item, PageCount: g.pageCount, Headless: g.headless, Parse: g.parse, Markdown: g.markdown})
		}
		st.Tasks = append(st.Tasks, savedTask{ID: id, Group: gi, Input: t.input, Due: t.due, Code: t.code,
			Faulted: t.faulted, Served: t.served, Pages: t.pages})
	}
	for _, sp := range s.expiry {
		st.Expiry = append(st.Expiry, savedSpan{sp.first, sp.n, sp.created})
	}
	c := &s.st
	sc := &st.Counters
	for k, n := range c.requests {
		sc.Requests = append(sc.Requests, savedCount{k.method, uint8(k.route), k.status, n})
	}
	sc.Created, sc.Done, sc.Faulted, sc.Batches, sc.Singles = c.created, c.done, c.faulted, c.batches, c.singles
	sc.Truncated, sc.Batch500s = c.truncated, c.batch500s
	sc.CallbacksSent, sc.CallbacksFailed, sc.CbSkipped = c.callbacksSent, c.callbacksFailed, c.callbacksSkipped
	sc.CallbacksLost, sc.CallbacksDuplicated = c.callbacksLost, c.callbacksDuplicated
	sc.FirstCreated, sc.LastDue = c.firstCreated, c.lastDue
	sc.Waits = slices.Clone(c.waits)
	sc.BatchTimes = slices.Clone(c.batchTimes)
	sc.Duplicates = c.duplicates
	for h, item := range c.dups {
		// The spelled-out item is "TARGET FIELD {PARAMS} INPUT"; its
		// hash is rebuilt from the item and the input apart.
		it, in := splitItem(item)
		sc.Dups = append(sc.Dups, savedItem{it, in, c.items[h]})
	}
	return st
}

// splitItem splits a spelled-out item (see countItem) into the item and
// the input: the item ends at the '}' that closes its parameters.
func splitItem(s string) (item, input string) {
	depth, inStr, esc := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				if i+1 < len(s) {
					return s[:i+1], s[i+2:]
				}
				return s, ""
			}
		}
	}
	return s, ""
}

// Load reads the state at path, written by [Server.Save], into s, which
// must not have served a submission yet. It reports whether there was a
// state: a missing file is a new sandbox, not an error. Tasks whose time
// to live ended while no process kept them are freed at the next
// submission, as they would have been; ids go on growing from the last
// one handed out.
func (s *Server) Load(path string) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sandbox state: %w", err)
	}
	var st savedState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return false, fmt.Errorf("sandbox state %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return false, fmt.Errorf("sandbox state %s: version %d, want %d", path, st.Version, stateVersion)
	}
	groups := make([]*group, len(st.Groups))
	for i, sg := range st.Groups {
		groups[i] = &group{created: sg.Created, createdAt: string(appendTime(nil, sg.Created)), target: sg.Target,
			input: schema.Input(sg.Input), params: sg.Params, item: sg.Item, itemHash: maphash.String(itemSeed, sg.Item),
			pageCount: sg.PageCount, headless: sg.Headless, parse: sg.Parse, markdown: sg.Markdown}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tasks) > 0 || s.st.created > 0 {
		return false, errors.New("sandbox state: load into a sandbox that has tasks")
	}
	c := &s.st
	sc := &st.Counters
	slices.SortFunc(st.Tasks, func(a, b savedTask) int { return cmp.Compare(a.ID, b.ID) })
	for _, t := range st.Tasks {
		if t.Group < 0 || t.Group >= len(groups) {
			return false, fmt.Errorf("sandbox state %s: task %d of no group", path, t.ID)
		}
		g := groups[t.Group]
		s.tasks[t.ID] = task{group: g, input: t.Input, due: t.Due, code: t.Code, faulted: t.Faulted, served: t.Served, pages: t.Pages}
		if t.Due > st.SavedAt {
			c.due.push(dueEntry{t.Due, t.Faulted})
		}
		if c.items == nil {
			c.items = make(map[uint64]uint32)
		}
		c.items[maphash.String(itemSeed, t.Input)^splitmix(g.itemHash)]++
	}
	for _, sp := range st.Expiry {
		s.expiry = append(s.expiry, span{sp.First, sp.N, sp.Created})
	}
	s.lastID = st.LastID
	for _, r := range sc.Requests {
		c.requests[countKey{r.Method, route(r.Route), r.Status}] += r.N
	}
	c.created, c.done, c.faulted, c.batches, c.singles = sc.Created, sc.Done, sc.Faulted, sc.Batches, sc.Singles
	c.truncated, c.batch500s = sc.Truncated, sc.Batch500s
	c.callbacksSent, c.callbacksFailed, c.callbacksSkipped = sc.CallbacksSent, sc.CallbacksFailed, sc.CbSkipped
	c.callbacksLost, c.callbacksDuplicated = sc.CallbacksLost, sc.CallbacksDuplicated
	c.firstCreated, c.lastDue = sc.FirstCreated, sc.LastDue
	c.waits, c.batchTimes = sc.Waits, sc.BatchTimes
	c.duplicates = sc.Duplicates
	for _, d := range sc.Dups {
		h := maphash.String(itemSeed, d.Input) ^ splitmix(maphash.String(itemSeed, d.Item))
		if c.dups == nil {
			c.dups = make(map[uint64]string)
		}
		c.dups[h] = d.Item + " " + d.Input
		if c.items == nil {
			c.items = make(map[uint64]uint32)
		}
		c.items[h] = max(c.items[h], d.N)
	}
	// The seed of the saved state, unless this sandbox was given one; the
	// stream goes on from a point of its own, not from the start again.
	if s.cfg.Seed == 0 {
		s.cfg.Seed = st.Seed
	}
	s.rand = rand.New(rand.NewPCG(uint64(s.cfg.Seed), 0xdec0d0^uint64(c.created)))
	return true, nil
}

// ReadStats returns the [Stats] of the state at path, as a sandbox that
// loaded it reports them.
func ReadStats(path string) (Stats, error) {
	s := New(Config{})
	defer s.Close()
	ok, err := s.Load(path)
	if err == nil && !ok {
		err = fmt.Errorf("sandbox state %s: %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return Stats{}, err
	}
	return s.Stats(), nil
}

package checkpoint

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// MaxRow is the highest row a journal records, far beyond any input; it
// bounds what a damaged record can make replay allocate.
const MaxRow = 1 << 34

// Outcome is how a row ended: each row ends exactly once, in one of them.
type Outcome uint8

// The outcomes. The zero Outcome is invalid.
const (
	OutcomeResult   Outcome = iota + 1 // a line in results.jsonl
	OutcomeFailed                      // a line in failed.jsonl
	OutcomeRejected                    // a line in rejects.jsonl
)

func (o Outcome) valid() bool { return o >= OutcomeResult && o <= OutcomeRejected }

// String returns "result", "failed" or "rejected".
func (o Outcome) String() string {
	switch o {
	case OutcomeResult:
		return "result"
	case OutcomeFailed:
		return "failed"
	case OutcomeRejected:
		return "rejected"
	}
	return fmt.Sprintf("Outcome(%d)", o)
}

// Header identifies the job a journal belongs to. Open refuses to resume a
// journal whose InputSize, InputHash or Shape differ from the run's.
type Header struct {
	InputName string // for messages only; not compared
	InputSize int64
	InputHash string // hex sha256 of the input bytes as on disk
	Shape     string // canonical text of the options that shape rows and batches
}

// Offsets are the sizes of the output files that the journal vouches for:
// on resume, each file is cut back to its size here. Part is the number of
// the results part that Results measures when results are rotated (0 for
// results.jsonl itself); the parts before it are whole, the ones after it
// are not vouched for.
type Offsets struct {
	Results, Failed, Rejects int64
	Part                     int64
}

// Task is one submitted task: the row it is for and the API's task id.
type Task struct {
	Row    int64
	TaskID uint64
}

// Pending is a task submitted for a row that is not done yet.
type Pending struct {
	TaskID      uint64
	SubmittedAt time.Time
	Attempt     int
	Looks       int // how often earlier sessions looked at the task
}

// RowLooks is how often the pending task of a row was looked at.
type RowLooks struct {
	Row   int64
	Looks int
}

// Session is one Open of the journal.
type Session struct {
	Start       time.Time
	DoneAtStart int64 // rows done when it started
}

// State is what a journal says about a job. The exported fields are plain
// values; done rows and pending tasks are behind methods.
type State struct {
	Header  Header
	Offsets Offsets
	// Rows is the total number of input rows, once [Journal.InputEnd] has
	// recorded it, else -1.
	Rows int64
	// Results, Failed and Rejected count the done rows by outcome.
	Results, Failed, Rejected int64
	Submitted                 int64 // tasks ever submitted, all attempts
	Batches                   int64 // Submit calls
	Started                   time.Time
	Sessions                  []Session // one per Open, oldest first
	Updated                   time.Time // time of the latest session, submit or finish record
	// Reopened is the token of the last [Journal.Reopen] replayed, which
	// names the rewritten failed file it vouches for; "" if none since the
	// last compaction.
	Reopened string
	// TornBytes is how much torn or damaged tail the replay found after the
	// last whole record: cut off by Open, ignored by Read.
	TornBytes int64

	version int // of the journal's header
	// Replaying format 2: the part record just read, which counts with the
	// finish record after it or not at all (see the part record); and
	// whether the record before was the snapshot.
	heldPart     int64
	held, snap   bool
	done         bitset
	pending      map[int64]pend
	taskOf       map[int64]uint64 // row -> the task of its result ([Journal.TaskOf]); nil if none
	maxSubmitted int64
}

// pend is a Pending in 24 bytes: there may be many.
type pend struct {
	id      uint64
	at      int64 // Unix ns, 0 for the zero time
	attempt int32
	looks   uint16
}

func newState() *State {
	return &State{Rows: -1, pending: make(map[int64]pend), version: version}
}

// Done reports whether row has ended (in any outcome).
func (s *State) Done(row int64) bool { return row > 0 && s.done.has(row) }

// Pending returns the task in flight for row, if there is one: submitted and
// not done.
func (s *State) Pending(row int64) (Pending, bool) {
	p, ok := s.pending[row]
	if !ok {
		return Pending{}, false
	}
	return Pending{TaskID: p.id, SubmittedAt: timeOf(p.at), Attempt: int(p.attempt), Looks: int(p.looks)}, true
}

// PendingCount returns the number of rows with a task in flight.
func (s *State) PendingCount() int { return len(s.pending) }

// EachPending calls fn for each row with a task in flight, in row order,
// until fn returns false. fn may call the Journal's methods: a row that is
// finished meanwhile is skipped, one submitted meanwhile may not be seen.
func (s *State) EachPending(fn func(row int64, p Pending) bool) {
	for _, r := range s.pendingRows() {
		if p, ok := s.Pending(r); ok && !fn(r, p) {
			return
		}
	}
}

func (s *State) pendingRows() []int64 {
	rows := make([]int64, 0, len(s.pending))
	for r := range s.pending {
		rows = append(rows, r)
	}
	slices.Sort(rows)
	return rows
}

// ResultTask returns the task whose results row got, if the journal kept
// it ([Journal.TaskOf]).
func (s *State) ResultTask(row int64) (uint64, bool) {
	id, ok := s.taskOf[row]
	return id, ok
}

// resultTasks returns the tasks of [State.ResultTask], sorted by row.
func (s *State) resultTasks() []Task {
	ts := make([]Task, 0, len(s.taskOf))
	for r, id := range s.taskOf {
		ts = append(ts, Task{Row: r, TaskID: id})
	}
	slices.SortFunc(ts, func(a, b Task) int { return cmp.Compare(a.Row, b.Row) })
	return ts
}

// looks returns the pending rows with looks recorded, sorted.
func (s *State) looks() []RowLooks {
	var rs []RowLooks
	for _, r := range s.pendingRows() {
		if n := s.pending[r].looks; n > 0 {
			rs = append(rs, RowLooks{Row: r, Looks: int(n)})
		}
	}
	return rs
}

// DoneCount returns the number of rows done.
func (s *State) DoneCount() int64 { return s.Results + s.Failed + s.Rejected }

// MaxSubmittedRow returns the highest row ever submitted or finished, or 0:
// every row above it is neither done nor pending.
func (s *State) MaxSubmittedRow() int64 { return s.maxSubmitted }

// finish marks row done with outcome o, unless it is done already.
func (s *State) finish(o Outcome, row int64) {
	s.maxSubmitted = max(s.maxSubmitted, row)
	if !s.done.set(row) {
		return
	}
	delete(s.pending, row)
	switch o {
	case OutcomeResult:
		s.Results++
	case OutcomeFailed:
		s.Failed++
	case OutcomeRejected:
		s.Rejected++
	}
}

// reopen makes a failed row not done, so that it is submitted again
// (--retry-failed); a row not done is left alone.
// Rows are reopened as a session starts: they count as not done at its
// start.
func (s *State) reopen(row int64) {
	if !s.done.clear(row) {
		return
	}
	delete(s.pending, row)
	s.Failed--
	if n := len(s.Sessions); n > 0 && s.Sessions[n-1].DoneAtStart > 0 {
		s.Sessions[n-1].DoneAtStart--
	}
}

// check verifies the invariants that replay and every write keep; tests and
// the fuzzer call it.
func (s *State) check() error {
	if s.Results < 0 || s.Failed < 0 || s.Rejected < 0 {
		return fmt.Errorf("negative count: %d %d %d", s.Results, s.Failed, s.Rejected)
	}
	if c := s.done.count(); c != s.DoneCount() {
		return fmt.Errorf("done set has %d rows, counters say %d", c, s.DoneCount())
	}
	if m := s.done.max(); m > s.maxSubmitted {
		return fmt.Errorf("row %d done above max submitted row %d", m, s.maxSubmitted)
	}
	if int64(len(s.pending)) > s.Submitted {
		return fmt.Errorf("%d pending of %d submitted", len(s.pending), s.Submitted)
	}
	for r, p := range s.pending {
		if r < 1 || r > s.maxSubmitted {
			return fmt.Errorf("pending row %d outside 1..%d", r, s.maxSubmitted)
		}
		if s.done.has(r) {
			return fmt.Errorf("row %d both done and pending", r)
		}
		if p.attempt < 1 {
			return fmt.Errorf("row %d pending at attempt %d", r, p.attempt)
		}
	}
	if s.Rows < -1 {
		return fmt.Errorf("rows %d", s.Rows)
	}
	for i, p := range s.done.pages {
		if p != nil && p != fullPage && p.n == pageBits {
			return fmt.Errorf("page %d full but not shared", i)
		}
	}
	return nil
}

package job

import (
	"strconv"
	"time"

	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/records"
	"github.com/decodo-batch/decodo-batch/io/results"
	"github.com/decodo-batch/decodo-batch/poller"
)

// dedupe is what a deduplicating run knows of the requests it has read:
// the first row of each request (its leader), and the later rows asking
// the same (followers) that wait for the leader's task to end. A follower
// is never journaled: until it is done, each session reads it again and
// finds its leader again, pending, or done with its task kept by the
// journal (checkpoint.State.ResultTask).
type dedupe struct {
	leaders   map[[16]byte]int64         // request key -> its leader row
	standby   map[[16]byte]int64         // request key -> a row pending with a task of its own from an earlier session
	followers map[int64][]records.Record // leader row -> rows waiting for its task
	// leader row -> the task of its result, since the last commit began
	// (fresh) and in the commit in flight (committing), as for the owner's.
	fresh, committing map[int64]uint64
}

func newDedupe() *dedupe {
	return &dedupe{leaders: make(map[[16]byte]int64), standby: make(map[[16]byte]int64), followers: make(map[int64][]records.Record),
		fresh: make(map[int64]uint64), committing: make(map[int64]uint64)}
}

// leader returns the row that first asked what rec asks, making rec that
// row if none did (or if the one that did cannot serve it: replace).
func (d *dedupe) leader(rec *records.Record, replace bool) int64 {
	k := rec.RequestKey()
	if l, ok := d.leaders[k]; ok && !replace {
		return l
	}
	d.leaders[k] = rec.Row
	return rec.Row
}

// withTask notes rec, pending with a task of its own from an earlier
// session: it leads its request if no row does yet, and stands by to lead
// it should the leader's kept task turn out to be gone (see successor).
func (d *dedupe) withTask(rec *records.Record) {
	k := rec.RequestKey()
	if _, ok := d.leaders[k]; !ok {
		d.leaders[k] = rec.Row
	}
	if _, ok := d.standby[k]; !ok {
		d.standby[k] = rec.Row
	}
}

// successor reports whether a row other than rec can lead rec's request
// now that the kept task of gone, the row rec followed, is gone: one that
// found that out before rec and took the lead, else the standby. Else rec
// gets its own task.
func (d *dedupe) successor(rec *records.Record, gone int64) bool {
	k := rec.RequestKey()
	if l := d.leaders[k]; l != gone && l != rec.Row {
		return true
	}
	if s, ok := d.standby[k]; ok && s != gone && s != rec.Row {
		d.leaders[k] = s
		return true
	}
	return false
}

// preferLeader makes rec, done with a result whose task the journal
// kept, the leader of its request, unless the leader is such a row too.
func (d *dedupe) preferLeader(rec *records.Record, st *checkpoint.State) {
	k := rec.RequestKey()
	if l, ok := d.leaders[k]; ok {
		if _, served := st.ResultTask(l); served {
			return
		}
	}
	d.leaders[k] = rec.Row
}

// dedupe decides what a row that is neither done nor pending needs under
// --dedupe, and reports whether it took care of it: it follows an earlier
// row asking the same. The caller submits it otherwise.
func (o *owner) dedupe(rec records.Record) (bool, error) {
	lead := o.dd.leader(&rec, false)
	if lead == rec.Row {
		return false, nil
	}
	if !o.done(lead) {
		// Its task is on its way or pending: its outcome is this row's.
		o.dd.followers[lead] = append(o.dd.followers[lead], rec)
		return true, nil
	}
	id, ok := o.dd.fresh[lead]
	if !ok {
		id, ok = o.dd.committing[lead]
	}
	if !ok {
		id, ok = o.st.ResultTask(lead)
	}
	if !ok {
		// No task of the earlier row's to read (it failed, was rejected,
		// or got its result in a run without --dedupe): this one asks
		// again, and leads the rows after it.
		o.dd.leader(&rec, true)
		return false, nil
	}
	// Done with a result: read its task's results again for this row (a
	// GET costs nothing). If the API no longer has them, the row is
	// submitted as its own task (see polled).
	t := &poller.Task{ID: strconv.FormatUint(id, 10), Row: rec.Row, Attempt: 1, Submitted: time.Now(), Resumed: true}
	o.polling[rec.Row] = watched{rec: rec, task: t, dupOf: lead}
	o.p.Add(t)
	return true, nil
}

// settle gives the rows that follow lead the outcome it just got, through
// write (which marks and writes one row); a leader without followers
// costs nothing.
func (o *owner) settle(lead int64, write func(f *records.Record) error) error {
	if o.dd == nil {
		return nil
	}
	fs := o.dd.followers[lead]
	delete(o.dd.followers, lead)
	for i := range fs {
		if o.done(fs[i].Row) {
			continue
		}
		if err := write(&fs[i]); err != nil {
			return err
		}
	}
	return nil
}

// journal has the journal keep the tasks of the leaders' results of the
// commit that just ended, for their duplicates in later sessions.
func (d *dedupe) journal(j *checkpoint.Journal) error {
	if len(d.committing) == 0 {
		return nil
	}
	ts := make([]checkpoint.Task, 0, len(d.committing))
	for row, id := range d.committing {
		ts = append(ts, checkpoint.Task{Row: row, TaskID: id})
	}
	clear(d.committing)
	return j.TaskOf(ts)
}

// duplicateRow is the output row of a follower of lead.
func duplicateRow(rec *records.Record, lead int64) results.Row {
	r := rowOf(rec)
	r.DuplicateOf = lead
	return r
}

package batcher

import (
	"time"

	"github.com/decodo-batch/decodo-batch/io/records"
)

// Item is a row on its way to the API: the record and which submission of
// it this is (1 for the first).
type Item struct {
	records.Record
	Attempt int
}

// Key identifies the rows that may share a batch: one target, urls or
// queries, and one set of parameters.
type Key struct {
	Target string
	Query  bool
	Params records.Params
}

// KeyOf returns the key of a record.
func KeyOf(r *records.Record) Key {
	return Key{Target: r.Target, Query: r.URL == "", Params: r.Params}
}

// Batch is a group of items submitted in one request.
type Batch struct {
	Key   Key
	Items []Item
}

type group struct {
	key   Key
	items []Item
	since time.Time // when the first item arrived
	seq   uint64    // creation order
}

// Grouper gathers items into batches of at most Size items of one [Key].
// Its memory is bounded: no more than MaxOpen groups are open and no more
// than MaxItems items wait; past either bound the oldest or the largest
// group is let go as a partial batch. It is not safe for concurrent use.
type Grouper struct {
	Size     int // items per batch
	MaxOpen  int // open groups at most
	MaxItems int // waiting items at most

	groups  map[Key]*group
	waiting int
	seq     uint64
}

// NewGrouper returns a grouper of batches of cfg.Size items within the
// bounds cfg.MaxOpen and cfg.MaxItems (zero fields take the defaults of
// [Config]).
func NewGrouper(cfg Config) *Grouper {
	cfg = cfg.withDefaults()
	return &Grouper{Size: cfg.Size, MaxOpen: cfg.MaxOpen, MaxItems: cfg.MaxItems, groups: make(map[Key]*group)}
}

// Add adds an item at time now. It returns the batches the item made ready:
// its group when full, and a group let go to respect the bounds.
func (g *Grouper) Add(it Item, now time.Time) (full, evicted *Batch) {
	k := KeyOf(&it.Record)
	gr := g.groups[k]
	if gr == nil {
		if len(g.groups) >= g.MaxOpen {
			evicted = g.take(g.oldest())
		}
		g.seq++
		gr = &group{key: k, since: now, seq: g.seq, items: make([]Item, 0, min(g.Size, 64))}
		g.groups[k] = gr
	}
	gr.items = append(gr.items, it)
	g.waiting++
	if len(gr.items) >= g.Size {
		return g.take(gr), evicted
	}
	if evicted == nil && g.waiting > g.MaxItems {
		evicted = g.take(g.largest())
	}
	return nil, evicted
}

// Waiting returns the number of items in open groups.
func (g *Grouper) Waiting() int { return g.waiting }

// Open returns the number of open groups.
func (g *Grouper) Open() int { return len(g.groups) }

// Oldest returns the open group that has waited longest, as a batch, and
// removes it; nil if there is none or it arrived after notBefore.
func (g *Grouper) Oldest(notBefore time.Time) *Batch {
	gr := g.oldest()
	if gr == nil || gr.since.After(notBefore) {
		return nil
	}
	return g.take(gr)
}

func (g *Grouper) oldest() *group {
	var o *group
	for _, gr := range g.groups {
		if o == nil || gr.seq < o.seq {
			o = gr
		}
	}
	return o
}

func (g *Grouper) largest() *group {
	var l *group
	for _, gr := range g.groups {
		if l == nil || len(gr.items) > len(l.items) || (len(gr.items) == len(l.items) && gr.seq < l.seq) {
			l = gr
		}
	}
	return l
}

func (g *Grouper) take(gr *group) *Batch {
	if gr == nil {
		return nil
	}
	delete(g.groups, gr.key)
	g.waiting -= len(gr.items)
	return &Batch{Key: gr.key, Items: gr.items}
}

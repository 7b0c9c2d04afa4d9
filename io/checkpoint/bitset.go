package checkpoint

import "math/bits"

// The done set is a paged bitset of rows. Rows are 1-based and bit i-1 holds
// row i, so that the first page can fill up too; the methods take and return
// rows. A page covers 1<<16 rows (8 KiB). A page that becomes full is replaced by the
// shared, read-only fullPage, so a job whose rows are mostly done costs a
// pointer per 65536 rows, and a page never seen costs a nil pointer. fullPage
// is never written: clearing a bit of it first makes a copy.
const (
	pageShift = 16
	pageBits  = 1 << pageShift
	pageWords = pageBits / 64
	pageMask  = pageBits - 1
)

type page struct {
	n int32 // bits set
	w [pageWords]uint64
}

var fullPage = func() *page {
	p := &page{n: pageBits}
	for i := range p.w {
		p.w[i] = ^uint64(0)
	}
	return p
}()

type bitset struct {
	pages []*page
}

func (b *bitset) has(row int64) bool {
	i := row - 1
	if i < 0 {
		return false
	}
	pi := i >> pageShift
	if pi >= int64(len(b.pages)) {
		return false
	}
	p := b.pages[pi]
	if p == nil {
		return false
	}
	o := i & pageMask
	return p.w[o>>6]&(1<<(o&63)) != 0
}

// grow makes room for bit i (not row i) and returns the index of its page.
func (b *bitset) grow(i int64) int {
	pi := int(i >> pageShift)
	if pi >= len(b.pages) {
		if pi < cap(b.pages) {
			b.pages = b.pages[:pi+1]
		} else {
			b.pages = append(b.pages, make([]*page, pi+1-len(b.pages))...)
		}
	}
	return pi
}

// page returns the writable page holding bit i, or nil if that page is full.
func (b *bitset) page(i int64) *page {
	pi := b.grow(i)
	p := b.pages[pi]
	if p == fullPage {
		return nil
	}
	if p == nil {
		p = new(page)
		b.pages[pi] = p
	}
	return p
}

func (b *bitset) fill(p *page, i int64) {
	if p.n == pageBits {
		b.pages[i>>pageShift] = fullPage
	}
}

// set adds row and reports whether it was not there.
func (b *bitset) set(row int64) bool {
	i := row - 1
	p := b.page(i)
	if p == nil {
		return false
	}
	o := i & pageMask
	m := uint64(1) << (o & 63)
	if p.w[o>>6]&m != 0 {
		return false
	}
	p.w[o>>6] |= m
	p.n++
	b.fill(p, i)
	return true
}

// clear removes row and reports whether it was there.
func (b *bitset) clear(row int64) bool {
	if !b.has(row) {
		return false
	}
	i := row - 1
	pi := i >> pageShift
	p := b.pages[pi]
	if p == fullPage {
		p = new(page)
		*p = *fullPage
		b.pages[pi] = p
	}
	o := i & pageMask
	p.w[o>>6] &^= uint64(1) << (o & 63)
	p.n--
	return true
}

// setRange adds rows [lo, hi) and returns how many were not there.
func (b *bitset) setRange(lo, hi int64) int64 {
	lo, hi = lo-1, hi-1
	var added int64
	for lo < hi {
		pageEnd := (lo | pageMask) + 1
		end := min(hi, pageEnd)
		if lo&pageMask == 0 && end == pageEnd {
			// A whole page: no need to touch its words.
			pi := b.grow(lo)
			if p := b.pages[pi]; p != fullPage {
				if p != nil {
					added += pageBits - int64(p.n)
				} else {
					added += pageBits
				}
				b.pages[pi] = fullPage
			}
			lo = end
			continue
		}
		p := b.page(lo)
		if p == nil {
			lo = end
			continue
		}
		for lo < end {
			o := lo & pageMask
			wEnd := min(end, (lo|63)+1)
			width := wEnd - lo
			var m uint64
			if width == 64 {
				m = ^uint64(0)
			} else {
				m = (uint64(1)<<width - 1) << (o & 63)
			}
			nw := m &^ p.w[o>>6]
			p.w[o>>6] |= m
			c := int32(bits.OnesCount64(nw))
			p.n += c
			added += int64(c)
			lo = wEnd
		}
		b.fill(p, end-1)
	}
	return added
}

// count returns the number of rows.
func (b *bitset) count() int64 {
	var n int64
	for _, p := range b.pages {
		if p != nil {
			n += int64(p.n)
		}
	}
	return n
}

// next returns the first row >= row (>= 1) whose presence equals v, or -1 if
// v is true and there is none. For v false there is always an answer.
func (b *bitset) next(row int64, v bool) int64 {
	if n := b.nextBit(row-1, v); n >= 0 {
		return n + 1
	}
	return -1
}

func (b *bitset) nextBit(i int64, v bool) int64 {
	for {
		pi := i >> pageShift
		if pi >= int64(len(b.pages)) {
			if v {
				return -1
			}
			return i
		}
		p := b.pages[pi]
		switch {
		case p == nil && !v, p == fullPage && v:
			return i
		case p == nil || p == fullPage:
			i = (pi + 1) << pageShift
			continue
		}
		for wi := (i & pageMask) >> 6; wi < pageWords; wi++ {
			w := p.w[wi]
			if !v {
				w = ^w
			}
			if wi == (i&pageMask)>>6 {
				w &= ^uint64(0) << (i & 63)
			}
			if w != 0 {
				return pi<<pageShift + wi<<6 + int64(bits.TrailingZeros64(w))
			}
		}
		i = (pi + 1) << pageShift
	}
}

// max returns the highest row, or 0 if there is none.
func (b *bitset) max() int64 {
	for pi := len(b.pages) - 1; pi >= 0; pi-- {
		p := b.pages[pi]
		if p == nil || p.n == 0 {
			continue
		}
		for wi := pageWords - 1; wi >= 0; wi-- {
			if w := p.w[wi]; w != 0 {
				return int64(pi)<<pageShift + int64(wi)<<6 + int64(63-bits.LeadingZeros64(w)) + 1
			}
		}
	}
	return 0
}

// runs calls fn with the lengths of the alternating runs of absent and
// present rows from row 1 on, starting with a (possibly empty) absent run
// and ending with the present run that holds the highest row.
func (b *bitset) runs(fn func(n int64)) {
	pos := int64(1)
	for {
		s := b.next(pos, true)
		if s < 0 {
			return
		}
		e := b.next(s, false)
		fn(s - pos)
		fn(e - s)
		pos = e
	}
}

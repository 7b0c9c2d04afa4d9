package checkpoint

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBitset proves set, setRange, has, count, max, next and runs against a
// plain map, across page boundaries, on pages that fill up and on shared
// full pages.
func TestBitset(t *testing.T) {
	t.Parallel()
	const span = 4*pageBits + 100
	tests := []struct {
		name string
		ops  func(set func(int64), setRange func(lo, hi int64), rng *rand.Rand)
	}{
		{"scattered bits", func(set func(int64), _ func(lo, hi int64), rng *rand.Rand) {
			for range 5000 {
				set(1 + rng.Int64N(span))
			}
		}},
		{"a page filled bit by bit", func(set func(int64), _ func(lo, hi int64), _ *rand.Rand) {
			for i := int64(pageBits + 1); i <= 2*pageBits; i++ {
				set(i) // rows pageBits+1.. are the second page
			}
			set(pageBits + 5) // again, on the shared full page
		}},
		{"ranges", func(set func(int64), setRange func(lo, hi int64), rng *rand.Rand) {
			setRange(1, 1)
			setRange(pageBits-3, 2*pageBits+3)
			setRange(3*pageBits, 4*pageBits)
			setRange(3*pageBits+10, 3*pageBits+20) // inside a full page
			for range 200 {
				lo := 1 + rng.Int64N(span)
				setRange(lo, lo+rng.Int64N(200))
			}
			set(5)
		}},
		{"everything", func(_ func(int64), setRange func(lo, hi int64), _ *rand.Rand) {
			setRange(1, span)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bitset
			ref := map[int64]bool{}
			set := func(i int64) {
				if got := b.set(i); got == ref[i] {
					t.Fatalf("set(%d) = %v, but the bit was %v", i, got, ref[i])
				}
				ref[i] = true
			}
			setRange := func(lo, hi int64) {
				var want int64
				for i := lo; i < hi; i++ {
					if !ref[i] {
						want++
					}
					ref[i] = true
				}
				if got := b.setRange(lo, hi); got != want {
					t.Fatalf("setRange(%d, %d) = %d newly set, want %d", lo, hi, got, want)
				}
			}
			tt.ops(set, setRange, rand.New(rand.NewPCG(5, 6)))

			var want []int64
			for i := range ref {
				want = append(want, i)
			}
			slices.Sort(want)
			if b.count() != int64(len(want)) {
				t.Errorf("count = %d, want %d", b.count(), len(want))
			}
			if m := b.max(); len(want) > 0 && m != want[len(want)-1] {
				t.Errorf("max = %d, want %d", m, want[len(want)-1])
			}
			for i := int64(-1); i < span+pageBits; i++ {
				if b.has(i) != ref[i] {
					t.Fatalf("has(%d) = %v, want %v", i, b.has(i), ref[i])
				}
			}
			// Runs, decoded, give back the same bits.
			var got []int64
			pos, odd := int64(1), false
			b.runs(func(n int64) {
				if odd {
					for i := pos; i < pos+n; i++ {
						got = append(got, i)
					}
				}
				pos += n
				odd = !odd
			})
			if !slices.Equal(got, want) {
				t.Errorf("runs decode to %d bits, want %d", len(got), len(want))
			}
			if tt.name == "a page filled bit by bit" && b.pages[1] != fullPage {
				t.Error("a page filled bit by bit is not the shared full page")
			}
			for i, p := range b.pages {
				if p != nil && p != fullPage && p.n == pageBits {
					t.Errorf("page %d is full but not the shared full page", i)
				}
			}
			if fullPage.n != pageBits || slices.ContainsFunc(fullPage.w[:], func(w uint64) bool { return w != ^uint64(0) }) {
				t.Fatal("the shared full page was written to")
			}
		})
	}
}

// TestBitsetSparseIsCheap proves that a far row and a long run cost pointers,
// not pages: what bounds memory when a damaged journal names huge rows.
func TestBitsetSparseIsCheap(t *testing.T) {
	t.Parallel()
	var b bitset
	b.setRange(1, MaxRow+1)
	if b.set(MaxRow) {
		t.Fatal("set(MaxRow) after setRange over it reports a new row")
	}
	allocated := 0
	for _, p := range b.pages {
		if p != fullPage {
			allocated++
		}
	}
	if allocated != 0 || b.count() != MaxRow || b.max() != MaxRow || len(b.pages) != MaxRow/pageBits {
		t.Fatalf("all of 1..MaxRow: %d pages allocated, count %d, max %d", allocated, b.count(), b.max())
	}
}

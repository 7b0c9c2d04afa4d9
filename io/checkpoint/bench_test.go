//go:build unix

package checkpoint

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
)

const benchBatch = 3000

// benchOrder is the order in which the rows of a batch finish: shuffled, as
// results arrive, and in groups of 250, one Finish per group commit.
var benchOrder = func() [][]int64 {
	rng := rand.New(rand.NewPCG(7, 8))
	perm := rng.Perm(benchBatch)
	var groups [][]int64
	for len(perm) > 0 {
		k := min(250, len(perm))
		g := make([]int64, k)
		for i := range g {
			g[i] = int64(perm[i])
		}
		groups = append(groups, g)
		perm = perm[k:]
	}
	return groups
}()

// writeBatch submits rows lo..lo+len(ts)-1 and, unless noFinish, finishes
// them all.
func writeBatch(tb testing.TB, j *Journal, lo int64, id uint64, off *Offsets, rows []int64, ts []Task, syncEach, noFinish bool) {
	for i := range ts {
		ts[i] = Task{Row: lo + int64(i), TaskID: id + uint64(i)}
	}
	must(tb, j.Submit(t0, 1, ts))
	if syncEach {
		must(tb, j.Sync())
	}
	if noFinish {
		return
	}
	for _, g := range benchOrder {
		rows = rows[:0]
		for _, r := range g {
			if r < int64(len(ts)) {
				rows = append(rows, lo+r)
			}
		}
		if len(rows) == 0 {
			continue
		}
		off.Results += int64(len(rows)) * 2000
		must(tb, j.Finish(t0, OutcomeResult, rows, *off))
		if syncEach {
			must(tb, j.Sync())
		}
	}
}

// buildBench writes a journal of n rows, all submitted in 3000-row batches
// and, unless noFinish, finished; and compacts it if asked.
func buildBench(tb testing.TB, n int64, compact, noFinish bool) string {
	path := journalPath(tb)
	j := mustOpen(tb, path, testHeader, false)
	var off Offsets
	rows := make([]int64, 0, 250)
	ts := make([]Task, benchBatch)
	id := uint64(7434928397127555073)
	for lo := int64(1); lo <= n; lo += benchBatch {
		writeBatch(tb, j, lo, id, &off, rows, ts[:min(benchBatch, n-lo+1)], false, noFinish)
		id += benchBatch + 17
		if len(j.buf) > 1<<20 {
			must(tb, j.Sync())
		}
	}
	must(tb, j.InputEnd(n))
	if compact {
		must(tb, j.Compact())
	}
	must(tb, j.Close())
	return path
}

// BenchmarkReplay measures Read (the replay that Open does too) of a journal
// whose rows were all submitted in 3000-row batches and finished, as written
// and after Compact. It reports the journal's bytes per row, the heap the
// replayed state keeps, and the CPU time per replay (all threads, GC too).
func BenchmarkReplay(b *testing.B) {
	cases := []struct {
		rows              int64
		compact, noFinish bool
	}{
		{1_000_000, false, false},
		{1_000_000, true, false},
		{10_000_000, false, false},
		{10_000_000, true, false},
		{1_000_000, false, true}, // all in flight: the pending map's cost
	}
	for _, c := range cases {
		name := fmt.Sprintf("rows=%d/compacted=%v/finished=%v", c.rows, c.compact, !c.noFinish)
		b.Run(name, func(b *testing.B) {
			path := buildBench(b, c.rows, c.compact, c.noFinish)
			size := fileSize(b, path)
			b.SetBytes(size)
			var s *State
			cpu := cpuTime()
			for b.Loop() {
				var err error
				if s, err = Read(path); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			if done := s.DoneCount() + int64(s.PendingCount()); done != c.rows {
				b.Fatalf("replayed %d done, %d pending; want %d in all", s.DoneCount(), s.PendingCount(), c.rows)
			}
			b.ReportMetric(float64(size)/float64(c.rows), "file-B/row")
			b.ReportMetric(float64(stateHeap(b, path)), "state-B")
		})
	}
}

// cpuTime returns the CPU time the process has used, in ns: on a busy
// machine a steadier measure than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// stateHeap returns the live heap a replayed state of path holds.
func stateHeap(tb testing.TB, path string) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := Read(path)
	if err != nil {
		tb.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// BenchmarkAppend measures recording one 3000-row batch: a Submit and its
// rows finished in 12 Finish calls of 250. "buffered" leaves the file out
// (encoding and applying only); "sync-per-group" syncs after the Submit and
// after each Finish, a group commit each, as the owner would.
func BenchmarkAppend(b *testing.B) {
	for _, syncEach := range []bool{false, true} {
		name := "buffered"
		if syncEach {
			name = "sync-per-group"
		}
		b.Run(name, func(b *testing.B) {
			j := mustOpen(b, journalPath(b), testHeader, false)
			defer j.Close()
			var off Offsets
			rows := make([]int64, 0, 250)
			ts := make([]Task, benchBatch)
			lo, id := int64(1), uint64(7434928397127555073)
			start := j.Size()
			for b.Loop() {
				writeBatch(b, j, lo, id, &off, rows, ts, syncEach, false)
				if !syncEach {
					j.size += int64(len(j.buf))
					j.buf = j.buf[:0]
				}
				lo += benchBatch
				id += benchBatch + 17
			}
			batches := float64((lo - 1) / benchBatch)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/batches/benchBatch, "ns/row")
			b.ReportMetric(float64(j.Size()-start)/batches/benchBatch, "file-B/row")
		})
	}
}

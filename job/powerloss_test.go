package job

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/batcher"
	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
	"github.com/decodo-batch/decodo-batch/io/durable"
	"github.com/decodo-batch/decodo-batch/poller"
)

var powerLossStates = flag.Int("powerloss.states", 6, "crash states built at each fsync of the power-loss test")

// fewerStates is how many crash states the power-loss tests of the
// features built on the same write path (content files, grown inputs)
// build at each fsync: a third as many, so that the suite stays short;
// -powerloss.states raises them too.
func fewerStates() int { return max(1, *powerLossStates/3) }

// A power cut keeps of each file only what its last fsync made durable,
// plus any part of what was written since (the page cache may have been
// written back, whole or in part, sector by sector); and of each directory
// only the names its last fsync made durable, plus any of the names created
// or removed since. The power-loss test records, through the fsync seam,
// what is durable at each fsync of a run; stops the run at the k-th fsync
// (the cut); builds the states the disk can be in after it; and resumes
// each against the same sandbox.

var errCut = errors.New("power cut")

// recorder follows the fsyncs of the files under root.
type recorder struct {
	root  string
	cutAt int // the fsync that does not happen

	mu      sync.Mutex
	n       int
	cut     bool
	created int // tasks the API had created at the cut
	sb      *sandbox.Server
	durable disk
	current disk // at the cut
}

// disk is the names of each directory (relative to root; "." for root)
// and the bytes of each file, by inode.
type disk struct {
	dirs  map[string]map[string]uint64
	files map[uint64][]byte
}

func newDisk() disk {
	return disk{dirs: map[string]map[string]uint64{".": {}}, files: map[uint64][]byte{}}
}

var (
	watchersMu sync.Mutex
	watchers   = map[string]durable.Hook{}
	hookOnce   sync.Once
)

// watchPath routes the fsyncs under root to hook. One hook serves every
// test of the process; others' paths pass through.
func watchPath(t *testing.T, root string, hook durable.Hook) {
	hookOnce.Do(func() {
		durable.SetHook(func(path string, dir bool) error {
			watchersMu.Lock()
			var h durable.Hook
			for r, w := range watchers {
				if path == r || strings.HasPrefix(path, r+string(filepath.Separator)) {
					h = w
				}
			}
			watchersMu.Unlock()
			if h == nil {
				return nil
			}
			return h(path, dir)
		})
	})
	watchersMu.Lock()
	watchers[root] = hook
	watchersMu.Unlock()
	t.Cleanup(func() {
		watchersMu.Lock()
		delete(watchers, root)
		watchersMu.Unlock()
	})
}

func (r *recorder) fsync(path string, dir bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cut {
		return errCut
	}
	r.n++
	if r.n == r.cutAt {
		r.cut = true
		r.current = r.read()
		r.created = r.sb.Stats().TasksCreated
		return errCut
	}
	rel, _ := filepath.Rel(r.root, path)
	if dir {
		r.durable.dirs[rel] = r.list(path)
		return nil
	}
	if ino, ok := inode(path); ok {
		data, _ := os.ReadFile(path)
		r.durable.files[ino] = data
	}
	return nil
}

func inode(path string) (uint64, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	return fi.Sys().(*syscall.Stat_t).Ino, true
}

func (r *recorder) list(dir string) map[string]uint64 {
	names := map[string]uint64{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".lock") {
			continue // a lock is taken anew by every run
		}
		if ino, ok := inode(filepath.Join(dir, e.Name())); ok {
			names[e.Name()] = ino
		}
	}
	return names
}

// read takes what the page cache holds now.
func (r *recorder) read() disk {
	d := disk{dirs: map[string]map[string]uint64{}, files: map[uint64][]byte{}}
	filepath.WalkDir(r.root, func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(r.root, path)
		if e.IsDir() {
			d.dirs[rel] = r.list(path)
		} else if ino, ok := inode(path); ok {
			d.files[ino], _ = os.ReadFile(path)
		}
		return nil
	})
	return d
}

// build writes into dst one state the disk can be in after the cut: with
// synced, only what was fsynced; else names and unsynced bytes survive at
// random, the bytes whole, as a prefix, or sector by sector (a torn write
// of the page cache).
func (r *recorder) build(dst string, rng *rand.Rand, synced bool) error {
	var walk func(rel string) error
	walk = func(rel string) error {
		dur, cur := r.durable.dirs[rel], r.current.dirs[rel]
		names := map[string]uint64{}
		for name, ino := range dur {
			names[name] = ino
		}
		if !synced {
			for name, ino := range cur {
				if d, ok := dur[name]; !ok || d != ino {
					if rng.IntN(2) == 0 {
						names[name] = ino // the new name made it
					}
				}
			}
			for name := range dur {
				if _, ok := cur[name]; !ok && rng.IntN(2) == 0 {
					delete(names, name) // the removal made it
				}
			}
		}
		for name, ino := range names {
			p := filepath.Join(rel, name)
			if _, isDir := r.current.dirs[p]; isDir {
				if err := os.MkdirAll(filepath.Join(dst, p), 0o755); err != nil {
					return err
				}
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			if err := os.WriteFile(filepath.Join(dst, p), r.bytes(ino, rng, synced), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	return walk(".")
}

func (r *recorder) bytes(ino uint64, rng *rand.Rand, synced bool) []byte {
	dur := r.durable.files[ino]
	cur, ok := r.current.files[ino]
	if synced || !ok {
		return bytes.Clone(dur)
	}
	if !bytes.HasPrefix(cur, dur) {
		// Cut back or replaced since its last fsync: either version.
		if rng.IntN(2) == 0 {
			return bytes.Clone(dur)
		}
		return bytes.Clone(cur)
	}
	tail := cur[len(dur):]
	if rng.IntN(2) == 0 {
		return append(bytes.Clone(dur), tail[:rng.IntN(len(tail)+1)]...)
	}
	// Torn: the file has its new length, and each 512-byte sector of the
	// tail was written or still holds zeros.
	out := bytes.Clone(cur)
	for s := len(dur) / 512 * 512; s < len(out); s += 512 {
		if rng.IntN(2) == 0 {
			for i := max(s, len(dur)); i < min(s+512, len(out)); i++ {
				out[i] = 0
			}
		}
	}
	return out
}

// TestPowerLoss proves the write order survives a power cut at every fsync
// of a run: resumed from any state the disk can be left in, the run ends
// with every row in exactly one output file once, every line valid, and
// no task paid twice beyond the batches in flight at the cut. Plain and
// gzip outputs, with and without journal compaction.
func TestPowerLoss(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("hundreds of resumed runs; skipped with -short")
	}
	const rows, batchSize = 40, 10
	var in strings.Builder
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&in, "https://example.com/p/%d\n", i)
	}
	input := writeFile(t, "in.txt", in.String())
	var total sync.Map
	for _, tt := range []struct {
		name              string
		compress, compact bool
	}{
		{"plain", false, false},
		{"gzip", true, false},
		{"plain-compact", false, true},
		{"gzip-compact", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb, api := fastSandbox(t, sandbox.Config{BatchInterval: time.Millisecond,
				Delay: sandbox.Delay{Kind: sandbox.Uniform, Min: time.Millisecond, Max: 15 * time.Millisecond}})
			config := func(out string) Config {
				return Config{
					Input: input, Out: out, Compress: tt.compress, forceCompact: tt.compact,
					Batch: batcher.Config{Size: batchSize, Interval: 2 * time.Millisecond, FillWait: time.Millisecond, InFlight: inFlight,
						Backoff: decodo.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}},
					Poll: poller.Config{Workers: 4, MaxGap: 5 * time.Millisecond, StatusAfter: time.Second,
						Backoff: decodo.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}},
					API: api,
				}
			}
			rng := rand.New(rand.NewPCG(uint64(len(tt.name)), 7))
			states := 0
			for k := 1; ; k++ {
				root := t.TempDir()
				rec := &recorder{root: root, cutAt: k, sb: sb, durable: newDisk()}
				watchPath(t, root, rec.fsync)
				base := sb.Stats().TasksCreated
				_, err := Run(context.Background(), config(filepath.Join(root, "out")))
				rec.mu.Lock()
				cut := rec.cut
				rec.mu.Unlock()
				if !cut {
					if err != nil {
						t.Fatalf("run without a cut: %v", err)
					}
					if k < 10 {
						t.Fatalf("a whole run made only %d fsyncs", k-1)
					}
					break // k passed the run's last fsync
				}
				for v := range *powerLossStates {
					dst := t.TempDir()
					if err := rec.build(dst, rng, v == 0); err != nil {
						t.Fatal(err)
					}
					before := sb.Stats().TasksCreated
					out := filepath.Join(dst, "out")
					if _, err := Run(context.Background(), config(out)); err != nil {
						t.Fatalf("cut at fsync %d, state %d: resume: %v", k, v, err)
					}
					checkOutputs(t, out, tt.compress, rows, fmt.Sprintf("cut at fsync %d, state %d", k, v))
					paid := rec.created - base + sb.Stats().TasksCreated - before
					if twice := paid - rows; twice < 0 || twice > (inFlight+1)*batchSize {
						t.Errorf("cut at fsync %d, state %d: %d tasks paid for %d rows", k, v, paid, rows)
					}
					states++
				}
			}
			total.Store(tt.name, states)
			t.Logf("%d crash states resumed", states)
		})
	}
}

// inFlight is how many batch POSTs the power-loss test's runs have in
// flight: a cut can lose the answers of those, and of the one whose
// journal sync it is, and no more.
const inFlight = 1

// checkOutputs checks every line of the three output files is one JSON
// object and every row of 1..rows is in exactly one of them, once.
func checkOutputs(t *testing.T, out string, gz bool, rows int, what string) {
	t.Helper()
	seen := map[int64]string{}
	for _, name := range []string{"results.jsonl", "failed.jsonl", "rejects.jsonl"} {
		if gz {
			name += ".gz"
		}
		f, err := os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var rd io.Reader = f
		if gz {
			zr, err := gzip.NewReader(f)
			if err == io.EOF {
				f.Close()
				continue // an empty file
			}
			if err != nil {
				t.Fatalf("%s: %s: %v", what, name, err)
			}
			rd = zr
		}
		sc := bufio.NewScanner(rd)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m struct {
				Row *int64 `json:"row"`
			}
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Row == nil {
				t.Fatalf("%s: %s: bad line %q", what, name, sc.Text())
			}
			if prev, dup := seen[*m.Row]; dup {
				t.Fatalf("%s: row %d in %s and %s", what, *m.Row, prev, name)
			}
			seen[*m.Row] = name
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %s: %v", what, name, err)
		}
		f.Close()
	}
	for r := int64(1); r <= int64(rows); r++ {
		if seen[r] != "results.jsonl" && seen[r] != "results.jsonl.gz" {
			t.Fatalf("%s: row %d is in %q, want results", what, r, seen[r])
		}
	}
}

// TestFsyncFailureStops proves a failed fsync of an output file ends the
// run with an error naming the file, and is never followed by a journal
// that vouches for the bytes it lost: the fault drops what the failed fsync
// was to write, as a disk does, and the same command afterwards finishes
// every row exactly once, every line valid.
func TestFsyncFailureStops(t *testing.T) {
	t.Parallel()
	_, api := fastSandbox(t, sandbox.Config{})
	var b strings.Builder
	const rows = 600
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&b, "https://example.com/e/%d\n", i)
	}
	cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
	cfg.Batch.Size = 50
	results := filepath.Join(cfg.Out, "results.jsonl")
	rec := &faultyDisk{path: results, failAt: 2}
	watchPath(t, filepath.Dir(results), rec.fsync)
	_, err := Run(context.Background(), cfg)
	if !rec.failed() {
		t.Fatal("the run made fewer than 2 fsyncs of results.jsonl")
	}
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "results.jsonl") {
		t.Fatalf("run with a failed fsync: err = %v, want one naming results.jsonl and the error", err)
	}
	rec.stop()
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("the same command afterwards: %v", err)
	}
	checkOutputs(t, cfg.Out, false, rows, "after the failed fsync")
}

// faultyDisk fails the failAt-th fsync of path with EIO and drops what was
// written to it since its last good fsync.
type faultyDisk struct {
	path   string
	failAt int

	mu     sync.Mutex
	n      int
	synced int64
	done   bool
}

func (d *faultyDisk) fsync(path string, dir bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dir || path != d.path || d.done {
		return nil
	}
	d.n++
	if d.n < d.failAt {
		if fi, err := os.Stat(path); err == nil {
			d.synced = fi.Size()
		}
		return nil
	}
	if d.n == d.failAt {
		// The pages are marked clean and lost: a later read sees what the
		// disk has.
		os.Truncate(path, d.synced)
		return syscall.EIO
	}
	return nil // later fsyncs succeed, as on Linux
}

func (d *faultyDisk) failed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n >= d.failAt
}

func (d *faultyDisk) stop() {
	d.mu.Lock()
	d.done = true
	d.mu.Unlock()
}

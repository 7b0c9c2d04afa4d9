package job

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/decodo-batch/decodo-batch/batcher"
	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
	"github.com/decodo-batch/decodo-batch/poller"
)

// TestPowerLossContentDir proves the write order of content files and
// rotated zstd parts survives a power cut at every fsync of a run: resumed
// from any state the disk can be left in, every row is once in the
// results parts (each a whole zstd stream), every content file a line
// names is there with the size and sha256 the line says, and no other
// content file is.
func TestPowerLossContentDir(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("hundreds of resumed runs; skipped with -short")
	}
	const rows, batchSize = 30, 10
	var in strings.Builder
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&in, "https://example.com/p/%d\n", i)
	}
	input := writeFile(t, "in.txt", in.String())
	sb, api := fastSandbox(t, sandbox.Config{BatchInterval: time.Millisecond, ContentSize: 700, ContentKind: sandbox.ContentHTML,
		Delay: sandbox.Delay{Kind: sandbox.Uniform, Min: time.Millisecond, Max: 15 * time.Millisecond}})
	config := func(out string) Config {
		return Config{
			Input: input, Out: out, Compress: true, Codec: "zstd", ContentDir: true, RotateSize: 1500,
			Batch: batcher.Config{Size: batchSize, Interval: 2 * time.Millisecond, FillWait: time.Millisecond, InFlight: inFlight,
				Backoff: decodo.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}},
			Poll: poller.Config{Workers: 4, MaxGap: 5 * time.Millisecond, StatusAfter: time.Second,
				Backoff: decodo.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}},
			API: api,
		}
	}
	rng := rand.New(rand.NewPCG(11, 7))
	states := 0
	for k := 1; ; k++ {
		root := t.TempDir()
		rec := &recorder{root: root, cutAt: k, sb: sb, durable: newDisk()}
		watchPath(t, root, rec.fsync)
		_, err := Run(context.Background(), config(filepath.Join(root, "out")))
		rec.mu.Lock()
		cut := rec.cut
		rec.mu.Unlock()
		if !cut {
			if err != nil {
				t.Fatalf("run without a cut: %v", err)
			}
			if k < 20 {
				t.Fatalf("a whole run made only %d fsyncs", k-1)
			}
			break
		}
		for v := range fewerStates() {
			dst := t.TempDir()
			if err := rec.build(dst, rng, v == 0); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dst, "out")
			if _, err := Run(context.Background(), config(out)); err != nil {
				t.Fatalf("cut at fsync %d, state %d: resume: %v", k, v, err)
			}
			checkContentOutputs(t, out, rows, fmt.Sprintf("cut at fsync %d, state %d", k, v))
			states++
		}
	}
	t.Logf("%d crash states resumed", states)
}

func checkContentOutputs(t *testing.T, out string, rows int, what string) {
	t.Helper()
	parts, _ := filepath.Glob(filepath.Join(out, "results-*.jsonl.zst"))
	seen := map[int64]bool{}
	named := map[string]bool{}
	for _, p := range parts {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, _ := zstd.NewReader(f)
		data, err := io.ReadAll(zr)
		zr.Close()
		f.Close()
		if err != nil {
			t.Fatalf("%s: %s does not decompress: %v", what, filepath.Base(p), err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var l struct {
				Row    int64  `json:"row"`
				File   string `json:"content_file"`
				Bytes  int64  `json:"content_bytes"`
				SHA256 string `json:"content_sha256"`
			}
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.File == "" {
				t.Fatalf("%s: %s: bad line %q", what, filepath.Base(p), sc.Text())
			}
			if seen[l.Row] {
				t.Fatalf("%s: row %d twice", what, l.Row)
			}
			seen[l.Row] = true
			named[l.File] = true
			data, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(l.File)))
			sum := sha256.Sum256(data)
			if err != nil || int64(len(data)) != l.Bytes || hex.EncodeToString(sum[:]) != l.SHA256 {
				t.Fatalf("%s: row %d: %s is %d bytes, sha256 %x (%v); the line says %d, %s", what, l.Row, l.File, len(data), sum, err, l.Bytes, l.SHA256)
			}
		}
	}
	if len(seen) != rows {
		t.Fatalf("%s: %d rows in %d results parts, want %d", what, len(seen), len(parts), rows)
	}
	filepath.WalkDir(filepath.Join(out, "content"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(out, path)
			if !named[filepath.ToSlash(rel)] {
				t.Fatalf("%s: content file %s is named by no line", what, rel)
			}
		}
		return err
	})
}

package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// TestKill9ContentDir proves the crash guarantee of content files and
// rotated, compressed parts: a --content-dir --compress=zstd --rotate-size
// run killed with SIGKILL at random moments, then run again until it
// finishes, leaves every row once in the results parts (each part a whole
// zstd stream), every content file a line names complete (its size and
// sha256 as the line says), and no content file that no line names.
func TestKill9ContentDir(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary; skipped with -short")
	}
	t.Parallel()
	bin := buildBinary(t)
	const rows = 1500
	sb := sandbox.New(sandbox.Config{
		Tokens:        []string{"Y3Jhc2g6dGVzdA=="},
		BatchInterval: 15 * time.Millisecond,
		Delay:         sandbox.Delay{Kind: sandbox.Uniform, Min: 20 * time.Millisecond, Max: 400 * time.Millisecond},
		ContentSize:   6000, ContentKind: sandbox.ContentHTML,
		Seed: 5,
	})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	t.Cleanup(sb.Close)

	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	var b strings.Builder
	// html, markdown, parsed JSON, png, and two pages of html, by row % 5.
	kinds := []string{`"url":"https://example.com/k/%d"`, `"url":"https://example.com/k/%d","markdown":true`,
		`"target":"google_search","query":"q %d","parse":true`, `"url":"https://example.com/k/%d","headless":"png"`,
		`"target":"google_search","query":"q %d","page_count":2`}
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&b, `{"id":"r%d",`+kinds[i%len(kinds)]+"}\n", i, i)
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	args := []string{"run", "--endpoint", srv.URL, "--batch-size", "50", "--batch-interval", "20ms",
		"--content-dir", "--compress=zstd", "--rotate-size", "16KB", "--progress", "none", "-q", in, "-o", out}
	rng := rand.New(rand.NewPCG(5, 7))
	kills, code := 0, -1
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		var kill time.Duration
		if kills < 6 {
			kill = time.Duration(100+rng.IntN(600)) * time.Millisecond
		}
		var stderr string
		code, stderr = runBin(t, bin, "Y3Jhc2g6dGVzdA==", []string{"DECODO_BATCH_STATUS_AFTER=1s"}, kill, args...)
		if code == killed {
			kills++
			// A file the journal does not vouch for, of a row that never
			// ends: a killed run's file of a row whose next result is named
			// otherwise (another kind of content) would be left like it.
			// (A row's own stale file is rewritten in place by its result.)
			stray := filepath.Join(out, "content", "000", "099", fmt.Sprintf("%d.html", 99000+kills))
			if err := os.MkdirAll(filepath.Dir(stray), 0o755); err == nil {
				os.WriteFile(stray, []byte("<p>half"), 0o644)
			}
			continue
		}
		if code != exitStopped {
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			break
		}
	}
	if code != 0 {
		t.Fatalf("no run finished within the time bound (last exit %d, %d kills)", code, kills)
	}

	parts, _ := filepath.Glob(filepath.Join(out, "results-*.jsonl.zst"))
	if len(parts) < 2 {
		t.Fatalf("%d results parts, want several", len(parts))
	}
	seen := map[int64]bool{}
	named := map[string]bool{}
	for _, p := range parts {
		for _, line := range zstdLines(t, p) {
			var l struct {
				Row int64 `json:"row"`
				contentRef
				Pages []contentRef `json:"pages"`
			}
			if err := json.Unmarshal(line, &l); err != nil {
				t.Fatalf("%s: bad line %q: %v", p, line, err)
			}
			if seen[l.Row] {
				t.Fatalf("row %d written twice", l.Row)
			}
			seen[l.Row] = true
			refs := append([]contentRef{l.contentRef}, l.Pages...)
			for _, ref := range refs {
				if ref.File == "" {
					continue
				}
				data, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(ref.File)))
				if err != nil {
					t.Fatalf("row %d: %v", l.Row, err)
				}
				sum := sha256.Sum256(data)
				if int64(len(data)) != ref.Bytes || hex.EncodeToString(sum[:]) != ref.SHA256 {
					t.Fatalf("row %d: %s is %d bytes (sha256 %x); the line says %d, %s", l.Row, ref.File, len(data), sum, ref.Bytes, ref.SHA256)
				}
				named[ref.File] = true
			}
			ext := []string{".html", ".md", ".json", ".png", ".p2.html"}[l.Row%5]
			if last := refs[len(refs)-1].File; !strings.HasSuffix(last, fmt.Sprintf("/%d-r%d%s", l.Row, l.Row, ext)) {
				t.Errorf("row %d: content file %s, want a %s file named by row and id", l.Row, last, ext)
			}
		}
	}
	if len(seen) != rows {
		t.Errorf("%d rows in the results, want %d", len(seen), rows)
	}
	files := 0
	filepath.WalkDir(filepath.Join(out, "content"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		rel, _ := filepath.Rel(out, path)
		if !named[filepath.ToSlash(rel)] {
			t.Errorf("content file %s is named by no results line", rel)
		}
		return nil
	})
	if files != len(named) {
		t.Errorf("%d content files, %d named", files, len(named))
	}
	t.Logf("%d SIGKILLs, %d parts, %d content files", kills, len(parts), files)
}

type contentRef struct {
	File   string `json:"content_file"`
	Bytes  int64  `json:"content_bytes"`
	SHA256 string `json:"content_sha256"`
}

// zstdLines returns the lines of a zstd file, failing unless it is whole.
func zstdLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s does not decompress: %v", path, err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	return lines
}

package results

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/durable"
)

func readJSONL(t *testing.T, path string, gz bool) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r interface{ Read([]byte) (int, error) } = f
	if gz {
		zr, err := gzip.NewReader(f) // multistream: one member per commit
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	var out []map[string]any
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: invalid line %q: %v", path, sc.Text(), err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLinesRoundTrip proves every line is valid JSON carrying the fields of
// its file (row, line, id, target, input, task id, ...), whatever the strings hold (quotes, control bytes, invalid
// UTF-8, U+2028), and raw content is kept as sent.
func TestLinesRoundTrip(t *testing.T) {
	t.Parallel()
	for _, compress := range []bool{false, true} {
		dir := t.TempDir()
		w, err := Open(dir, gzOpt(compress), checkpoint.Offsets{})
		if err != nil {
			t.Fatal(err)
		}
		odd := "a\"b\\c\n\t\x01\xff\u2028é<>&"
		at := time.Date(2026, 3, 4, 11, 51, 9, 0, time.UTC)
		must(t, w.Result(&Result{Row: Row{Row: 1, Line: 2, ID: odd, Target: "universal", Field: "url", Input: "https://x/" + odd, Params: `{"geo":"de"}`},
			TaskID: "7434928397127555073", Attempts: 2, FetchedAt: at,
			Pages: []Page{{StatusCode: 404, Headers: json.RawMessage(`{"content-type":"text/html"}`), Content: json.RawMessage(`"<html>"`)}}}))
		must(t, w.Result(&Result{Row: Row{Row: 2, Line: 3, Target: "google_search", Field: "query", Input: "q"},
			TaskID: "1", Attempts: 1, FetchedAt: at,
			Pages: []Page{{StatusCode: 200, Content: json.RawMessage(`{"a":1}`)}, {StatusCode: 500, Cookies: json.RawMessage(`[{"k":"v"}]`), Content: json.RawMessage(`"p2"`)}}}))
		must(t, w.Failed(&Failure{Row: Row{Row: 3, Line: 4, Target: "chatgpt", Field: "prompt", Input: "hi"}, TaskID: "9", Class: "faulted", Error: odd, Attempts: 3}))
		must(t, w.Reject(&Reject{Row: 4, Line: 5, Error: "bad", Input: odd}))
		if _, err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		must(t, w.Close())
		ext := ""
		if compress {
			ext = ".gz"
		}
		res := readJSONL(t, filepath.Join(dir, ResultsFile+ext), compress)
		if len(res) != 2 || res[0]["id"] != strings.ToValidUTF8(odd, "\ufffd") || res[0]["status_code"] != 404.0 ||
			res[0]["content"] != "<html>" || res[0]["task_id"] != "7434928397127555073" || res[0]["fetched_at"] != "2026-03-04T11:51:09Z" ||
			res[0]["headers"].(map[string]any)["content-type"] != "text/html" || res[0]["params"].(map[string]any)["geo"] != "de" {
			t.Fatalf("results: %v", res)
		}
		pages, ok := res[1]["pages"].([]any)
		if !ok || len(pages) != 2 || res[1]["query"] != "q" || res[1]["url"] != nil || res[1]["content"] != nil ||
			res[1]["status_code"] != 500.0 || pages[1].(map[string]any)["status_code"] != 500.0 || pages[1].(map[string]any)["content"] != "p2" {
			t.Errorf("multi-page result: the highest status and every page with its own: %v", res[1])
		}
		if f := readJSONL(t, filepath.Join(dir, FailedFile+ext), compress); len(f) != 1 || f[0]["attempts"] != 3.0 ||
			f[0]["prompt"] != "hi" || f[0]["error_class"] != "faulted" {
			t.Errorf("failed: %v", f)
		}
		if r := readJSONL(t, filepath.Join(dir, RejectsFile+ext), compress); len(r) != 1 || r[0]["line"] != 5.0 || r[0]["input"] == "" {
			t.Errorf("rejects: %v", r)
		}
	}
}

// TestOpenCutsBack proves a resume cuts each file back to the offsets the
// checkpoint vouches for (lines written after the last commit go), and
// refuses a file shorter than them; a compressed file stays readable.
func TestOpenCutsBack(t *testing.T) {
	t.Parallel()
	for _, compress := range []bool{false, true} {
		dir := t.TempDir()
		w, _ := Open(dir, gzOpt(compress), checkpoint.Offsets{})
		must(t, w.Reject(&Reject{Row: 1, Line: 1, Error: "kept"}))
		off, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		must(t, w.Reject(&Reject{Row: 2, Line: 2, Error: "not vouched for"}))
		if _, err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		w.Close()

		w, err = Open(dir, gzOpt(compress), off)
		if err != nil {
			t.Fatal(err)
		}
		must(t, w.Reject(&Reject{Row: 2, Line: 2, Error: "again"}))
		if _, err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		name := RejectsFile
		if compress {
			name += ".gz"
		}
		lines := readJSONL(t, filepath.Join(dir, name), compress)
		if len(lines) != 2 || lines[0]["error"] != "kept" || lines[1]["error"] != "again" {
			t.Fatalf("compress %v: %v", compress, lines)
		}
		if _, err := Open(dir, gzOpt(compress), checkpoint.Offsets{Rejects: 1 << 20}); err == nil || !strings.Contains(err.Error(), "shorter") {
			t.Errorf("a file shorter than the checkpoint says: %v", err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCommitErrorsStick proves a failed fsync is never followed by a Commit
// that vouches for the lines it may have lost: on Linux a second fsync
// after a failed one succeeds, though the pages are gone.
func TestCommitErrorsStick(t *testing.T) {
	dir := t.TempDir()
	failing := true
	restore := durable.SetHook(func(path string, isDir bool) error {
		if !isDir && failing && strings.HasPrefix(path, dir) {
			return errors.New("injected EIO")
		}
		return nil
	})
	defer restore()
	w, err := Open(dir, Options{}, checkpoint.Offsets{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Result(&Result{Row: Row{Row: 1, Line: 2, Target: "universal", Field: "url", Input: "https://a"}, Pages: []Page{{Content: []byte(`"x"`)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err == nil || !strings.Contains(err.Error(), ResultsFile) {
		t.Fatalf("Commit with a failing fsync = %v, want an error naming %s", err, ResultsFile)
	}
	failing = false
	if _, err := w.Commit(); err == nil {
		t.Fatal("a second Commit succeeded after a failed fsync")
	}
	if err := w.Failed(&Failure{Row: Row{Row: 2}}); err == nil {
		t.Fatal("a write succeeded after a failed fsync")
	}
}

func gzOpt(compress bool) Options {
	if compress {
		return Options{Compress: Gzip}
	}
	return Options{}
}

// TestCommitInFlight proves the group commit vouches for what was written
// before CommitStart and nothing written while it is in flight, in every
// codec; and that the bytes queued for the files' goroutines are counted
// back to zero (else the owner, which holds results back while the writer
// is backlogged, would wait forever).
func TestCommitInFlight(t *testing.T) {
	t.Parallel()
	page := []Page{{Content: []byte(`"` + strings.Repeat("<p>lorem ipsum</p>", 3000) + `"`)}} // 54 KB
	for _, codec := range []string{"", Gzip, Zstd} {
		dir := t.TempDir()
		w, err := Open(dir, Options{Compress: codec}, checkpoint.Offsets{})
		if err != nil {
			t.Fatal(err)
		}
		for row := range int64(100) { // several chunks
			must(t, w.Result(&Result{Row: Row{Row: row, Line: row + 1}, Pages: page}))
		}
		must(t, w.CommitStart())
		must(t, w.Result(&Result{Row: Row{Row: 100, Line: 101}, Pages: page}))
		off, err := w.CommitEnd(<-w.Committed())
		if err != nil {
			t.Fatal(err)
		}
		all, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range w.files {
			if n := s.queued.Load(); n != 0 {
				t.Errorf("codec %q: %s: %d bytes still counted as queued", codec, s.base, n)
			}
		}
		if w.Backlogged() != nil {
			t.Errorf("codec %q: backlogged after every commit", codec)
		}
		must(t, w.Close())

		path := filepath.Join(dir, ResultsFile+Ext(codec))
		if got := len(linesOf(t, decompress(t, path))); got != 101 {
			t.Fatalf("codec %q: %d lines, want 101", codec, got)
		}
		// Cut back to the first commit: the line written during it goes.
		w, err = Open(dir, Options{Compress: codec}, off)
		if err != nil {
			t.Fatal(err)
		}
		must(t, w.Close())
		if got := len(linesOf(t, decompress(t, path))); got != 100 || off.Results >= all.Results {
			t.Fatalf("codec %q: %d lines at the first commit's size %d (all: %d), want 100", codec, got, off.Results, all.Results)
		}
	}
}

// TestWritesGoOnDuringFsync proves a commit's fsync does not hold up the
// lines written after it: they reach the file while the fsync is held,
// and the commit vouches for the size before them; with rotation, the
// next part waits for the fsync of the part it closes. Not parallel: it
// holds the fsync of the results file through the hook.
func TestWritesGoOnDuringFsync(t *testing.T) {
	for _, rotate := range []int64{0, 300_000} {
		dir := t.TempDir()
		name := ResultsFile
		if rotate > 0 {
			name = "results-00001.jsonl"
		}
		path := filepath.Join(dir, name)
		held, release := make(chan struct{}), make(chan struct{})
		var first sync.Once // the first commit's fsync only
		restore := durable.SetHook(func(p string, isDir bool) error {
			if p == path && !isDir {
				first.Do(func() {
					held <- struct{}{}
					<-release
				})
			}
			return nil
		})
		w, err := Open(dir, Options{RotateSize: rotate}, checkpoint.Offsets{})
		if err != nil {
			t.Fatal(err)
		}
		page := []Page{{Content: []byte(`"` + strings.Repeat("x", 100_000) + `"`)}}
		must(t, w.Result(&Result{Row: Row{Row: 0, Line: 1}, Pages: page}))
		must(t, w.CommitStart())
		<-held
		st, _ := os.Stat(path)
		at := st.Size()
		for row := int64(1); row <= 40; row++ { // 4 MB: several chunks
			must(t, w.Result(&Result{Row: Row{Row: row, Line: row + 1}, Pages: page}))
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if st, _ := os.Stat(path); st.Size() > at {
				break
			}
			if time.Now().After(deadline) {
				close(release)
				t.Fatalf("rotate %d: the lines after the commit waited for its fsync: %s stayed at %d bytes", rotate, path, at)
			}
		}
		if rotate > 0 {
			// The part past its size waits for its fsync to end before
			// it is closed and the next one starts.
			next := filepath.Join(dir, "results-00002.jsonl")
			for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if _, err := os.Stat(next); err == nil {
					t.Errorf("%s was started while the fsync of the part before it was in flight", next)
					break
				}
			}
		}
		close(release)
		off, err := w.CommitEnd(<-w.Committed())
		if err != nil {
			t.Fatal(err)
		}
		if want := (checkpoint.Offsets{Results: at, Part: off.Part}); off != want || rotate > 0 && off.Part != 1 {
			t.Errorf("rotate %d: the commit vouches for %+v, want %d bytes of part %d (at its start)", rotate, off, at, map[bool]int{true: 1}[rotate > 0])
		}
		_, err = w.Commit()
		must(t, err)
		must(t, w.Close())
		restore()
		parts, _ := filepath.Glob(filepath.Join(dir, "results*.jsonl"))
		lines := 0
		for _, p := range parts {
			lines += len(linesOf(t, decompress(t, p)))
		}
		if lines != 41 || rotate > 0 && len(parts) < 3 {
			t.Errorf("rotate %d: %d lines in %d parts, want 41 lines (in several parts with rotation)", rotate, lines, len(parts))
		}
	}
}

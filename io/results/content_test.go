package results

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/durable"
)

// decompress returns the whole content of an output file, failing the
// test if its stream is not complete.
func decompress(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(path, ".gz"):
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = zr
	case strings.HasSuffix(path, ".zst"):
		zr, err := zstd.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer zr.Close()
		r = zr
	default:
		return data
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s does not decompress cleanly: %v", path, err)
	}
	return out
}

func linesOf(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("invalid line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR fake but signed")

// TestContentFiles proves each kind of content lands in a file of its
// kind whose bytes and sha256 are what the results line says: HTML (with
// escapes decoded), JSON from parse=true (as it came), markdown, a PNG
// decoded from base64, plain text, and one file per page of a multi-page
// task; null content has no file; the user's id is in the name only when
// it is a safe file name.
func TestContentFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := Open(dir, Options{ContentDir: true, Compress: Zstd}, checkpoint.Offsets{})
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	html := "<!doctype html><p class=\"x\">caf\u00e9 \U0001F600 </p>\n<script>a<b&&c</script>"
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	rows := []struct {
		row        int64
		id, params string
		pages      []json.RawMessage
		want       []string // extensions, "" for no file
		wantData   [][]byte
		idInName   bool
	}{
		{1, "sku-1", "", []json.RawMessage{str(html)}, []string{".html"}, [][]byte{[]byte(html)}, true},
		{2, "", `{"parse":true}`, []json.RawMessage{json.RawMessage(`{"results":{"title":"t","n":[1,2]}}`)}, []string{".json"}, [][]byte{[]byte(`{"results":{"title":"t","n":[1,2]}}`)}, false},
		{3, "a/b", `{"markdown":true}`, []json.RawMessage{str("# Title\n\n*x*")}, []string{".md"}, [][]byte{[]byte("# Title\n\n*x*")}, false},
		{4, "", `{"headless":"png"}`, []json.RawMessage{str(base64.StdEncoding.EncodeToString(pngBytes))}, []string{".png"}, [][]byte{pngBytes}, false},
		{5, "", "", []json.RawMessage{str("just text")}, []string{".txt"}, [][]byte{[]byte("just text")}, false},
		{6, "", "", []json.RawMessage{json.RawMessage(`null`)}, []string{""}, [][]byte{nil}, false},
		{1234567, "x", `{"page_count":2}`, []json.RawMessage{str("<p>one</p>"), str("<p>two</p>")}, []string{".html", ".html"}, [][]byte{[]byte("<p>one</p>"), []byte("<p>two</p>")}, true},
	}
	for _, r := range rows {
		res := Result{Row: Row{Row: r.row, Line: r.row + 1, ID: r.id, Target: "universal", Field: "url", Input: "https://x", Params: r.params}, TaskID: "7", Attempts: 1, FetchedAt: at}
		for _, p := range r.pages {
			res.Pages = append(res.Pages, Page{StatusCode: 200, Headers: json.RawMessage(`{"a":"b"}`), Content: p})
		}
		must(t, w.Result(&res))
	}
	must(t, w.Close())
	lines := linesOf(t, decompress(t, filepath.Join(dir, "results.jsonl.zst")))
	if len(lines) != len(rows) {
		t.Fatalf("%d lines, want %d", len(lines), len(rows))
	}
	files := 0
	for i, r := range rows {
		l := lines[i]
		if l["row"] != float64(r.row) {
			t.Fatalf("line %d is row %v, want %d (lines in the order written)", i, l["row"], r.row)
		}
		pages := []any{l}
		if len(r.pages) > 1 {
			pages = l["pages"].([]any)
		}
		for k, p := range pages {
			p := p.(map[string]any)
			if r.want[k] == "" {
				if _, ok := p["content"]; !ok || p["content"] != nil || p["content_file"] != nil {
					t.Errorf("row %d: null content: %v", r.row, p)
				}
				continue
			}
			name, _ := p["content_file"].(string)
			if _, ok := p["content"]; ok || !strings.HasSuffix(name, r.want[k]) || !strings.HasPrefix(name, "content/") {
				t.Fatalf("row %d page %d: %v, want a %s content_file and no content", r.row, k, p, r.want[k])
			}
			if strings.Contains(name, "-"+r.id+".") != r.idInName {
				t.Errorf("row %d: file %s, id %q in the name: %v", r.row, name, r.id, r.idInName)
			}
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			files++
			sum := sha256.Sum256(data)
			if !bytes.Equal(data, r.wantData[k]) || p["content_sha256"] != hex.EncodeToString(sum[:]) || p["content_bytes"] != float64(len(data)) {
				t.Errorf("row %d page %d: file %q (sha256 %x), line says %v", r.row, k, data, sum, p)
			}
		}
	}
	if got := countFiles(t, filepath.Join(dir, ContentDirName)); got != files {
		t.Errorf("%d files under content/, want %d", got, files)
	}
}

func countFiles(t *testing.T, root string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestContentSweep proves a resume removes the content files of rows the
// checkpoint does not say are done (written after the last commit of a
// killed run), and keeps the others, even in directories of other rows.
func TestContentSweep(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := Open(dir, Options{ContentDir: true}, checkpoint.Offsets{})
	if err != nil {
		t.Fatal(err)
	}
	res := func(row int64) *Result {
		return &Result{Row: Row{Row: row, Target: "universal"}, Pages: []Page{{StatusCode: 200, Content: json.RawMessage(`"<p>x</p>"`)}}}
	}
	for _, row := range []int64{1, 2, 999, 1000, 2500} {
		must(t, w.Result(res(row)))
	}
	off, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []int64{3, 1001, 2501, 7000} {
		must(t, w.Result(res(row)))
	}
	must(t, w.Close()) // commits: the files are there, but the journal would not vouch for them
	// A stray file, as a kill during a write could leave.
	os.WriteFile(filepath.Join(dir, ContentDirName, "000", "000", "4.html"), []byte("<p>half"), 0o644)
	done := map[int64]bool{1: true, 2: true, 999: true, 1000: true, 2500: true}
	w, err = Open(dir, Options{ContentDir: true, Done: func(r int64) bool { return done[r] }}, off)
	if err != nil {
		t.Fatal(err)
	}
	must(t, w.Close())
	var got []string
	filepath.WalkDir(filepath.Join(dir, ContentDirName), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got = append(got, d.Name())
		}
		return err
	})
	slices.Sort(got)
	if want := []string{"1.html", "1000.html", "2.html", "2500.html", "999.html"}; !slices.Equal(got, want) {
		t.Errorf("files after the sweep: %v, want %v", got, want)
	}
	lines := linesOf(t, decompress(t, filepath.Join(dir, ResultsFile)))
	if len(lines) != 5 {
		t.Errorf("%d results lines after the cut, want 5", len(lines))
	}
}

// TestRotation proves a small --rotate-size gives several parts, each a
// whole stream that decompresses on its own, whose lines together are
// every row once; and that a resume cuts back the vouched part and removes
// the parts after it.
func TestRotation(t *testing.T) {
	t.Parallel()
	for _, codec := range []string{"", Gzip, Zstd} {
		t.Run("codec="+codec, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			opt := Options{Compress: codec, RotateSize: 8 << 10}
			w, err := Open(dir, opt, checkpoint.Offsets{})
			if err != nil {
				t.Fatal(err)
			}
			write := func(from, to int64) {
				for row := from; row <= to; row++ {
					content := json.RawMessage(fmt.Sprintf(`"<p>%d %s</p>"`, row, strings.Repeat("z", int(row%97)*20)))
					must(t, w.Result(&Result{Row: Row{Row: row, Target: "universal"}, Pages: []Page{{StatusCode: 200, Content: content}}}))
					if row%50 == 0 {
						if _, err := w.Commit(); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			write(1, 1000)
			off, err := w.Commit()
			if err != nil {
				t.Fatal(err)
			}
			write(1001, 1400) // not vouched for: the resume cuts it off
			must(t, w.Close())
			w, err = Open(dir, opt, off)
			if err != nil {
				t.Fatal(err)
			}
			write(1001, 2000)
			must(t, w.Close())

			ext := ".jsonl" + Ext(codec)
			parts, _ := filepath.Glob(filepath.Join(dir, "results-*"+ext))
			if len(parts) < 3 {
				t.Fatalf("%d parts, want several", len(parts))
			}
			if _, err := os.Stat(filepath.Join(dir, ResultsFile+Ext(codec))); err == nil {
				t.Error("results.jsonl exists beside the parts")
			}
			seen := map[float64]int{}
			for i, p := range parts {
				if want := filepath.Join(dir, fmt.Sprintf("results-%05d%s", i+1, ext)); p != want {
					t.Fatalf("part %s, want %s", p, want)
				}
				for _, l := range linesOf(t, decompress(t, p)) {
					seen[l["row"].(float64)]++
				}
			}
			for row := 1; row <= 2000; row++ {
				if seen[float64(row)] != 1 {
					t.Fatalf("row %d in %d lines", row, seen[float64(row)])
				}
			}
			if len(seen) != 2000 {
				t.Errorf("%d rows, want 2000", len(seen))
			}
		})
	}
}

// TestEmptyCompressedOutputs proves an output file with no line is still
// a valid compressed file (zcat and zstdcat reject 0 bytes), also after a
// resume that cut it back to nothing.
func TestEmptyCompressedOutputs(t *testing.T) {
	t.Parallel()
	for _, codec := range []string{Gzip, Zstd} {
		dir := t.TempDir()
		for range 2 {
			w, err := Open(dir, Options{Compress: codec}, checkpoint.Offsets{})
			if err != nil {
				t.Fatal(err)
			}
			must(t, w.Close())
		}
		for _, name := range []string{ResultsFile, FailedFile, RejectsFile} {
			path := filepath.Join(dir, name+Ext(codec))
			if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
				t.Fatalf("%s: %v, %v", path, fi, err)
			}
			if data := decompress(t, path); len(data) != 0 {
				t.Errorf("%s holds %q", path, data)
			}
		}
	}
}

// TestUnquote proves content strings decode as encoding/json decodes them.
func TestUnquote(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", `a"b\c/d`, "\n\t\r\b\f\x01", "caf\u00e9 \U0001F600 \u2028", "\xff\xfe", `\ud800`, "<>&"} {
		raw, _ := json.Marshal(s)
		checkUnquote(t, raw)
	}
	for _, raw := range []string{`"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ude00\ud83d"`, `"\u00e9\/"`, "\"\xff\""} {
		checkUnquote(t, []byte(raw))
	}
}

func checkUnquote(t *testing.T, raw []byte) {
	t.Helper()
	var want string
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	got, _, err := unquote(nil, raw)
	if err != nil || string(got) != want {
		t.Errorf("unquote(%s) = %q, %v; want %q", raw, got, err, want)
	}
}

func FuzzUnquote(f *testing.F) {
	f.Add(`a"b\u00e9\ud83d\ude00`)
	f.Fuzz(func(t *testing.T, s string) {
		raw, _ := json.Marshal(s)
		checkUnquote(t, raw)
	})
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want int64
	}{{"512MB", 512e6}, {"64KB", 64e3}, {"64kb", 64e3}, {"1GiB", 1 << 30}, {"2M", 2 << 20}, {"1000", 1000}, {"7B", 7}, {"0", -1}, {"-5MB", -1}, {"MB", -1}, {"1.5GB", -1}, {"9999999999TB", -1}} {
		got, err := ParseSize(tt.in)
		if tt.want < 0 {
			if err == nil {
				t.Errorf("ParseSize(%q) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
		if back, err := ParseSize(FormatSize(got)); err != nil || back != got {
			t.Errorf("FormatSize(%d) = %q does not read back", got, FormatSize(got))
		}
	}
}

// TestContentBacklogged proves the writer says it is backlogged once its
// queue of content files is full, before a Result would wait, and that it
// is ready again, through the channel it returned, once files are written.
// Not parallel: it holds every content file's fsync through the hook.
func TestContentBacklogged(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	restore := durable.SetHook(func(path string, isDir bool) error {
		if !isDir && strings.Contains(path, ContentDirName) {
			<-release
		}
		return nil
	})
	defer restore()
	w, err := Open(dir, Options{ContentDir: true}, checkpoint.Offsets{})
	if err != nil {
		t.Fatal(err)
	}
	var row int64
	for ; w.Backlogged() == nil; row++ {
		if row > 200 {
			t.Fatal("never backlogged with every fsync held")
		}
		wrote := make(chan error, 1)
		go func() {
			wrote <- w.Result(&Result{Row: Row{Row: row, Line: row + 1}, Pages: []Page{{Content: []byte(`"<p>x</p>"`)}}})
		}()
		select {
		case err := <-wrote:
			must(t, err)
		case <-time.After(10 * time.Second):
			close(release)
			t.Fatalf("Result %d waited for the content files: the writer did not say it was backlogged", row)
		}
	}
	if row < 64 {
		t.Errorf("backlogged after %d files, before its queue of 64 was full", row)
	}
	ready := w.Backlogged()
	close(release)
	<-ready
	for w.Backlogged() != nil {
		<-w.Backlogged()
	}
	off, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	must(t, w.Close())
	if lines := linesOf(t, decompress(t, filepath.Join(dir, ResultsFile))); int64(len(lines)) != row || off.Results == 0 {
		t.Fatalf("%d lines for %d results", len(lines), row)
	}
}

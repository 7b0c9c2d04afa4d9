package records

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDetect proves the format is told from the first line that is not
// blank or a comment.
func TestDetect(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ head, want string }{
		{"", ""},
		{"\n  \n# comment\n", ""},
		{"\xef\xbb\xbf{\"url\":\"https://a.com\"}\n", "jsonl"},
		{"\n  {\"query\":\"x\"}", "jsonl"},
		{"url,target\nhttps://a.com,universal\n", "csv"},
		{"Query\nshoes\n", "csv"},
		{"id,geo,url\n", "csv"},
		{"# urls\nhttps://a.com\n", "txt"},
		{"https://a.com,https://b.com\n", "txt"},
	} {
		if got := Detect([]byte(tt.head)); got != tt.want {
			t.Errorf("Detect(%q) = %q, want %q", tt.head, got, tt.want)
		}
	}
}

// TestSniff proves an empty input and a CSV without a header each get
// their own error naming the file, and that an unknown name is told by
// its content.
func TestSniff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		path, want string
		err        error
	}{
		{write("empty.csv", ""), "", ErrEmpty},
		{write("blank.txt", "\n\n# only comments\n"), "", ErrEmpty},
		{write("header.csv", "url\n\n"), "", ErrEmpty},
		{write("noheader.csv", "https://a.com/1\nhttps://a.com/2\n"), "", ErrNoHeader},
		{write("data", "{\"url\":\"https://a.com\"}\n"), "jsonl", nil},
		{write("list", "https://a.com\n"), "txt", nil},
		{write("table.dat", "query,target\nshoes,google_search\n"), "csv", nil},
		{write("misspelt.csv", "urll\nhttps://a.com\n"), "csv", nil}, // the reader names the column
	} {
		got, err := Sniff(tt.path, "")
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("Sniff(%s) = %q, %v; want %q, %v", filepath.Base(tt.path), got, err, tt.want, tt.err)
		}
		if err != nil && !strings.Contains(err.Error(), tt.path) {
			t.Errorf("error %q does not name the file", err)
		}
	}
}

// TestCountRows proves the fast count agrees with the rows the reader
// numbers: blank and comment lines, a CSV header, quoted newlines, bad
// rows and gzip included.
func TestCountRows(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := map[string]string{
		"a.txt":   "# urls\nhttps://a.com/1\n\n   \nhttps://a.com/2\nnot a url\r\nhttps://a.com/3",
		"b.jsonl": "{\"url\":\"https://a.com\"}\n\n{bad json\n  \t\n{\"query\":\"x\",\"target\":\"google_search\"}\n",
		"c.csv":   "\xef\xbb\xbfurl,geo\r\nhttps://a.com/1,\"United\nStates\"\r\n\r\nhttps://a.com/2,\"a \"\"b\"\"\"\nhttps://a.com/3,x,extra\n\"unterminated\n",
		"d.csv":   "url\n",
	}
	for name, text := range cases {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		gzp := p + ".gz"
		os.WriteFile(gzp, gz(t, text), 0o644)
		for _, path := range []string{p, gzp} {
			format, _ := FormatFromName(path)
			want := readerRows(t, path)
			got, err := CountRows(path, format)
			if err != nil || got != want {
				t.Errorf("CountRows(%s) = %d, %v; the reader numbers %d rows", filepath.Base(path), got, err, want)
			}
		}
	}
	for _, ex := range []string{"../../examples/urls.csv", "../../examples/urls.txt", "../../examples/queries.jsonl", "../../testdata/mixed-100.jsonl"} {
		format, _ := FormatFromName(ex)
		got, err := CountRows(ex, format)
		if want := readerRows(t, ex); err != nil || got != want {
			t.Errorf("CountRows(%s) = %d, %v; the reader numbers %d rows", ex, got, err, want)
		}
	}
}

func readerRows(t *testing.T, path string) int64 {
	t.Helper()
	r, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rows int64
	for {
		rec, err := r.Next()
		var bad *RowError
		switch {
		case err == io.EOF:
			return rows
		case errors.As(err, &bad):
			rows = bad.Row
		case err != nil:
			t.Fatalf("%s: %v", path, err)
		default:
			rows = rec.Row
		}
	}
}

// BenchmarkCountRows measures the first pass over an input of a million
// rows (URLs of about 50 bytes), for the progress display's total.
func BenchmarkCountRows(b *testing.B) {
	for _, format := range []string{"txt", "csv"} {
		b.Run(format, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "in."+format)
			f, _ := os.Create(path)
			w := bufio.NewWriterSize(f, 1<<20)
			if format == "csv" {
				w.WriteString("id,url\n")
			}
			for i := range 1_000_000 {
				if format == "csv" {
					fmt.Fprintf(w, "r%d,https://shop.example.com/item/%d?ref=abc\n", i, i)
				} else {
					fmt.Fprintf(w, "https://shop.example.com/item/%d?ref=abc\n", i)
				}
			}
			w.Flush()
			f.Close()
			fi, _ := os.Stat(path)
			b.SetBytes(fi.Size())
			b.ResetTimer()
			for b.Loop() {
				n, err := CountRows(path, format)
				if err != nil || n != 1_000_000 {
					b.Fatalf("%d rows, %v", n, err)
				}
			}
		})
	}
}

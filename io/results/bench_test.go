package results

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/io/checkpoint"
)

// pages returns n JSON strings of about size bytes of HTML-like text that
// compresses about as real pages do.
func pages(n, size int) []json.RawMessage {
	r := rand.New(rand.NewPCG(1, 2))
	words := make([]string, 3000)
	for i := range words {
		words[i] = fmt.Sprintf("%x", r.Uint32()>>uint(8+r.IntN(16)))
	}
	out := make([]json.RawMessage, n)
	for i := range out {
		var b strings.Builder
		for b.Len() < size {
			fmt.Fprintf(&b, `<div class="card card--product"><a href="/p/%d">`, r.IntN(1e5))
			for range 8 {
				x := r.Float64()
				b.WriteString(words[int(x*x*x*x*float64(len(words)))])
				b.WriteByte(' ')
			}
			b.WriteString("</a></div>\n")
		}
		out[i], _ = json.Marshal(b.String())
	}
	return out
}

// BenchmarkResults measures the owner's cost and the throughput of writing
// results lines of 100 KB pages, committed every 30 MB as at 300 MB/s.
func BenchmarkResults(b *testing.B) {
	content := pages(64, 100_000)
	for _, tt := range []struct {
		name        string
		opt         Options
		compressors int // 0: one per core
	}{
		{"plain", Options{}, 0},
		{"gzip", Options{Compress: Gzip}, 0},
		{"zstd", Options{Compress: Zstd}, 0},
		{"zstd-one-compressor", Options{Compress: Zstd}, 1},
		{"content-dir", Options{ContentDir: true}, 0},
	} {
		b.Run(tt.name, func(b *testing.B) {
			if tt.compressors > 0 {
				defer func(n int) { compressors = n }(compressors)
				compressors = tt.compressors
			}
			dir := b.TempDir()
			w, err := Open(dir, tt.opt, checkpoint.Offsets{})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			b.SetBytes(100_000)
			at := time.Now()
			for i := range b.N {
				r := Result{Row: Row{Row: int64(i + 1), Line: int64(i + 2), Target: "universal", Field: "url", Input: "https://example.com/"},
					TaskID: "7434928397127555073", Attempts: 1, FetchedAt: at,
					Pages: []Page{{StatusCode: 200, Headers: json.RawMessage(`{"content-type":"text/html"}`), Content: content[i%len(content)]}}}
				if err := w.Result(&r); err != nil {
					b.Fatal(err)
				}
				if i%300 == 299 {
					if _, err := w.Commit(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if _, err := w.Commit(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

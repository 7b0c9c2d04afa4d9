package sandbox

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"strings"
	"testing"
)

// TestHTMLContentLooksReal proves the html content kind makes pages of the
// size asked for, each a valid JSON string that decodes to HTML naming its
// task, that compress about as real pages do (4-9x with gzip over a run of
// them, not the 100x of repeated filler), the same for the same seed and
// different for another.
func TestHTMLContentLooksReal(t *testing.T) {
	t.Parallel()
	const size = 100 << 10
	pool := newHTMLPool(7, size)
	var all bytes.Buffer
	for id := uint64(1); id <= 40; id++ {
		b := []byte{'"'}
		b = pool.appendPage(b, size-2, id, 1, "https://example.com/?q=\"x\"", 200)
		b = append(b, '"')
		if len(b) < size-8 || len(b) > size {
			t.Fatalf("page of %d bytes, want about %d", len(b), size)
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("page %d is not a JSON string: %v", id, err)
		}
		if !strings.HasPrefix(s, "<!doctype html>") || !strings.Contains(s, `<title>https://example.com/?q="x"</title>`) || !strings.HasSuffix(s, "</html>\n") {
			t.Fatalf("page %d: %.200q ... %q", id, s, s[len(s)-40:])
		}
		all.WriteString(s)
	}
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	zw.Write(all.Bytes())
	zw.Close()
	ratio := float64(all.Len()) / float64(z.Len())
	t.Logf("gzip -1 ratio %.1f", ratio)
	if ratio < 4 || ratio > 9 {
		t.Errorf("html content compresses %.1fx, want 4-9x like real pages", ratio)
	}
	again := newHTMLPool(7, size)
	other := newHTMLPool(8, size)
	if !bytes.Equal(again.pages[3], pool.pages[3]) || bytes.Equal(other.pages[3], pool.pages[3]) {
		t.Error("pages are not a function of the seed")
	}
}

// TestPNGContent proves headless=png answers a base64 PNG that decodes.
func TestPNGContent(t *testing.T) {
	t.Parallel()
	data, err := base64.StdEncoding.DecodeString(pngBase64(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

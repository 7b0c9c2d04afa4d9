package jsonstr

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzAppend proves Append writes a JSON string that decodes back to s
// (invalid UTF-8 as U+FFFD).
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\n\r\t", "é\u2028", "\xff\xfe", "<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := Append([]byte("x"), s)
		var got string
		if err := json.Unmarshal(b[1:], &got); err != nil {
			t.Fatalf("%q: invalid JSON %q: %v", s, b[1:], err)
		}
		// each invalid byte becomes one U+FFFD, as ranging over s gives
		var want strings.Builder
		for _, r := range s {
			want.WriteRune(r)
		}
		if got != want.String() {
			t.Fatalf("%q: decoded %q, want %q", s, got, want.String())
		}
	})
}

package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

// marshal is what encoding/json writes for s with HTML escaping off.
func marshal(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

var seeds = []string{
	"", "plain", "a\"b\\c", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "é 東京 🍵",
	"line\u2028sep\u2029para", "\u2028", "x\u2029", "\u202a\u2027", // the neighbours stay raw
	"\xff\xfe", "a\xe2\x80", "\xe2\x80\xa8\xe2\x80", "<>&",
}

// TestAppendIsEncodingJSON proves Append writes the bytes encoding/json
// writes (with SetEscapeHTML(false)), U+2028 and U+2029 escaped included,
// after whatever dst already holds.
func TestAppendIsEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range seeds {
		got := Append([]byte("x"), s)
		if want := marshal(t, s); string(got[0]) != "x" || !bytes.Equal(got[1:], want) {
			t.Errorf("Append(%q) = %s, encoding/json writes %s", s, got[1:], want)
		}
	}
	if got := string(Append(nil, "a\u2028b\u2029c")); got != `"a\u2028b\u2029c"` {
		t.Errorf("line and paragraph separators written %s, want them escaped", got)
	}
}

// FuzzAppend proves Append writes, for any s, the bytes encoding/json
// writes with HTML escaping off.
func FuzzAppend(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Append([]byte("x"), s)
		if want := marshal(t, s); !bytes.Equal(got[1:], want) {
			t.Fatalf("Append(%q) = %s, encoding/json writes %s", s, got[1:], want)
		}
	})
}

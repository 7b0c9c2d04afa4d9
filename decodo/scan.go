package decodo

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// A one-pass reader of results answers, which come by the thousand a second
// with up to ~100 KB of content each. encoding/json scans them twice
// (validation, then decoding) and takes about five times as long
// (BenchmarkScan). It accepts only valid JSON; anything it cannot read it
// reports, and the caller falls back to encoding/json, which then gives the
// error.

var errScan = errors.New("decodo: answer not read by the fast path")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the end of the string starting at b[i] == '"', and
// whether it holds escapes. It checks escapes and refuses control bytes.
//
// It reads eight bytes at a time and goes through the special ones among
// them (quotes, backslashes, control bytes) without reading the word
// again: escaped HTML has one every dozen bytes or so, and a results page
// is mostly one such string (BenchmarkScanHTML).
func skipString(b []byte, i int) (end int, escaped bool, err error) {
	for j := i + 1; j < len(b); {
		m := special8(load8(b, j))
		next := j + 8 // where the next word starts: past any escape in this one
		for m != 0 {
			k := j + bits.TrailingZeros64(m)/8
			if c := b[k]; c != '\\' {
				if c == '"' {
					return k + 1, escaped, nil
				}
				return 0, false, errScan // a control byte
			}
			if k+1 >= len(b) {
				return 0, false, errScan
			}
			n := int(escapeLen[b[k+1]])
			if n == 0 || n == 6 && !hex4(b, k+2) {
				return 0, false, errScan
			}
			escaped = true
			next = k + n
			m &= ^uint64(0) << (8 * (next - j)) // the specials after the escape (none past 64 bits)
		}
		j = max(j+8, next)
	}
	return 0, false, errScan
}

// escapeLen is the length of an escape by the byte after its backslash:
// 0 for none valid, 6 for \uXXXX. A table rather than a switch: the letters
// come in no order a branch predictor could learn.
var escapeLen = [256]uint8{'"': 2, '\\': 2, '/': 2, 'b': 2, 'f': 2, 'n': 2, 'r': 2, 't': 2, 'u': 6}

// hex4 reports whether b holds four hex digits from k.
func hex4(b []byte, k int) bool {
	if k+4 > len(b) {
		return false
	}
	for _, h := range b[k : k+4] {
		if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
			return false
		}
	}
	return true
}

const (
	ones  = 0x0101010101010101
	lows  = 0x7f7f7f7f7f7f7f7f
	quote = '"' * ones
	bslsh = '\\' * ones
)

// load8 returns the eight bytes of b from j, little-endian; past the end of
// b it reads letters, which are never special.
func load8(b []byte, j int) uint64 {
	if j+8 <= len(b) {
		return binary.LittleEndian.Uint64(b[j:])
	}
	w := [8]byte{'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'}
	copy(w[:], b[j:])
	return binary.LittleEndian.Uint64(w[:])
}

// special8 returns the high bit of each byte of x that is a quote, a
// backslash or a control byte, and no other bit. Exact, so that the bits
// above the lowest can be used too: a byte's low seven bits plus a constant
// below 0x80 never carry into the next byte.
func special8(x uint64) uint64 {
	q, s := x^quote, x^bslsh // a zero byte where x has a quote, a backslash
	return ^((q&lows + lows) | q | lows) | ^((s&lows + lows) | s | lows) |
		^((x&lows + (0x80-0x20)*ones) | x | lows) // below 0x20
}

// skipValue returns the end of the JSON value starting at b[i].
func skipValue(b []byte, i int, depth int) (int, error) {
	if i >= len(b) || depth > 64 {
		return 0, errScan
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := skipString(b, i)
		return end, err
	case c == '{':
		return eachField(b, i, depth, func(_ []byte, s int) (int, error) { return skipValue(b, s, depth+1) })
	case c == '[':
		return eachElem(b, i, depth, func(s int) (int, error) { return skipValue(b, s, depth+1) })
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	case c == '-' || ('0' <= c && c <= '9'):
		j := i + 1
		for j < len(b) && (('0' <= b[j] && b[j] <= '9') || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-') {
			j++
		}
		if !validNumber(b[i:j]) {
			return 0, errScan
		}
		return j, nil
	}
	return 0, errScan
}

// validNumber reports whether b is a JSON number:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() bool {
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > start
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(b)
}

func literal(b []byte, i int, lit string) (int, error) {
	if bytes.HasPrefix(b[i:], []byte(lit)) {
		return i + len(lit), nil
	}
	return 0, errScan
}

// eachField calls fn with each key (raw, without quotes) and the start of
// its value in the object at b[i], and returns the object's end. fn reads
// the value (skipValue at depth+1 at least) and returns its end: each byte
// of an answer is read once, not once more at every level.
func eachField(b []byte, i, depth int, fn func(key []byte, start int) (end int, err error)) (int, error) {
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, errScan
		}
		kend, escaped, err := skipString(b, i)
		if err != nil || escaped {
			return 0, errScan // escaped keys: let encoding/json decide
		}
		key := b[i+1 : kend-1]
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return 0, errScan
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return 0, errScan // fn may read b[i]
		}
		end, err := fn(key, i)
		if err != nil {
			return 0, err
		}
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		return 0, errScan
	}
}

// eachElem calls fn with the start of each element of the array at b[i],
// and returns the array's end; fn reads the element and returns its end,
// as for eachField.
func eachElem(b []byte, i, depth int, fn func(start int) (end int, err error)) (int, error) {
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		if i >= len(b) {
			return 0, errScan // fn may read b[i]
		}
		end, err := fn(i)
		if err != nil {
			return 0, err
		}
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		return 0, errScan
	}
}

// str decodes the JSON string v (null gives "").
func str(v []byte) (string, error) {
	switch {
	case len(v) == 0 || string(v) == "null":
		return "", nil
	case v[0] != '"':
		return "", errScan
	}
	if bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) {
		return string(v[1 : len(v)-1]), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", errScan
	}
	return s, nil
}

var resultKeys = []string{"content", "status_code", "headers", "cookies", "url", "query", "task_id", "updated_at"}

// folded refuses a key that encoding/json would match to one of keys by
// its case-insensitive rule: such answers take the slow path.
func folded(key []byte, keys []string) error {
	// Folding maps ASCII letters to one case and a few other runes (K, ſ)
	// to ASCII letters. A key of ASCII without capitals folds onto one of
	// these lowercase keys only by being equal to it, which the caller's
	// switch has already ruled out.
	plain := true
	for _, c := range key {
		if c >= 0x80 || ('A' <= c && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return nil
	}
	for _, k := range keys {
		if bytes.EqualFold(key, []byte(k)) {
			return errScan
		}
	}
	return nil
}

// compact reports whether the valid JSON value v has no space or line
// break between its tokens.
func compact(v []byte) bool {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			end, _, err := skipString(v, i)
			if err != nil {
				return false
			}
			i = end - 1
		case isSpace(c):
			return false
		}
	}
	return true
}

// scanResults reads a results answer: {"results": [...]}.
func scanResults(b []byte) ([]Result, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errScan
	}
	var out []Result
	end, err := eachField(b, i, 0, func(key []byte, s int) (int, error) {
		if string(key) != "results" {
			if err := folded(key, []string{"results"}); err != nil {
				return 0, err
			}
			return skipValue(b, s, 1)
		}
		out = out[:0] // a repeated key: the last one counts, as for encoding/json
		if b[s] == 'n' {
			return literal(b, s, "null")
		}
		if b[s] != '[' {
			return 0, errScan
		}
		return eachElem(b, s, 1, func(s int) (int, error) {
			if b[s] != '{' {
				return 0, errScan
			}
			var r Result
			end, err := eachField(b, s, 2, func(key []byte, s int) (int, error) {
				e, err := skipValue(b, s, 3)
				if err != nil {
					return 0, err
				}
				switch string(key) {
				case "content":
					r.Content = compactContent(b[s:e])
				case "status_code":
					if b[s] != 'n' {
						var n int64
						n, err = strconv.ParseInt(string(b[s:e]), 10, 64)
						r.StatusCode = int(n)
					}
				case "headers":
					r.Headers = compactOrNil(b[s:e])
				case "cookies":
					r.Cookies = compactOrNil(b[s:e])
				case "url":
					r.URL, err = str(b[s:e])
				case "query":
					r.Query, err = str(b[s:e])
				case "task_id":
					r.TaskID, err = idText(b[s:e])
				case "updated_at":
					r.UpdatedAt, err = str(b[s:e])
				default:
					err = folded(key, resultKeys)
				}
				return e, err
			})
			out = append(out, r)
			return end, err
		})
	})
	if err != nil || skipSpace(b, end) != len(b) {
		return nil, errScan
	}
	return out, nil
}

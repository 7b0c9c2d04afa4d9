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
func skipString(b []byte, i int) (end int, escaped bool, err error) {
	// Most strings hold no escape: find the closing quote (IndexByte is
	// vectorised) and check what comes before it.
	if q := bytes.IndexByte(b[i+1:], '"'); q >= 0 {
		if span := b[i+1 : i+1+q]; bytes.IndexByte(span, '\\') < 0 && noControl(span) {
			return i + 2 + q, false, nil
		}
	}
	for i++; i < len(b); i++ {
		if i = nextSpecial(b, i); i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(b) {
				return 0, false, errScan
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return 0, false, errScan
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return 0, false, errScan
					}
				}
				i += 4
			default:
				return 0, false, errScan
			}
		default: // a control byte
			return 0, false, errScan
		}
	}
	return 0, false, errScan
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// noControl reports whether b holds no byte below 0x20.
func noControl(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if (x-0x20*ones)&^x&highs != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 {
			return false
		}
	}
	return true
}

// nextSpecial returns the index of the first quote, backslash or control
// byte in b at or after i, or len(b): eight bytes at a time, jumping to the
// first special one (escaped HTML has one every few dozen bytes).
func nextSpecial(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if m := special8(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(b) && b[i] >= 0x20 && b[i] != '"' && b[i] != '\\' {
		i++
	}
	return i
}

// special8 returns the high bits of the bytes of x that are a control
// byte, a quote or a backslash (bit tricks: a byte below n sets its high
// bit in x - n·ones where x's own high bit is clear). Only the lowest bit
// set is exact (a borrow may mark bytes above it), which is the one
// nextSpecial uses.
func special8(x uint64) uint64 {
	control := (x - 0x20*ones) & ^x & highs
	q := x ^ ('"' * ones)
	quote := (q - ones) & ^q & highs
	bs := x ^ ('\\' * ones)
	backslash := (bs - ones) & ^bs & highs
	return control | quote | backslash
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
		return eachField(b, i, depth, func([]byte, int, int) error { return nil })
	case c == '[':
		return eachElem(b, i, depth, func(int, int) error { return nil })
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

// eachField calls fn with each key (raw, without quotes) and the span of
// its value in the object at b[i], and returns the object's end.
func eachField(b []byte, i, depth int, fn func(key []byte, start, end int) error) (int, error) {
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
		end, err := skipValue(b, i, depth+1)
		if err != nil {
			return 0, err
		}
		if err := fn(key, i, end); err != nil {
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

// eachElem calls fn with the span of each element of the array at b[i].
func eachElem(b []byte, i, depth int, fn func(start, end int) error) (int, error) {
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		end, err := skipValue(b, i, depth+1)
		if err != nil {
			return 0, err
		}
		if err := fn(i, end); err != nil {
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
	end, err := eachField(b, i, 0, func(key []byte, s, e int) error {
		if string(key) != "results" {
			return folded(key, []string{"results"})
		}
		if b[s] == 'n' {
			return nil
		}
		if b[s] != '[' {
			return errScan
		}
		_, err := eachElem(b, s, 1, func(s, e int) error {
			if b[s] != '{' {
				return errScan
			}
			var r Result
			_, err := eachField(b[:e], s, 2, func(key []byte, s, e int) error {
				var err error
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
				return err
			})
			out = append(out, r)
			return err
		})
		return err
	})
	if err != nil || skipSpace(b, end) != len(b) {
		return nil, errScan
	}
	return out, nil
}

package records

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Keys of a JSONL object that are not task parameters; a parameter's key
// maps to its index in specs.
const (
	keyURL = -1 - iota
	keyQuery
	keyTarget
	keyID
)

// jsonKey returns what the key of a JSONL object names. A switch beats a
// map lookup here by a fifth of the cost of a row: the common keys are
// found after comparing a length and a few bytes.
func jsonKey(key string) (int, bool) {
	switch key {
	case "url":
		return keyURL, true
	case "query":
		return keyQuery, true
	case "target":
		return keyTarget, true
	case "id":
		return keyID, true
	}
	i, ok := specIndex[key]
	return i, ok
}

// nextJSONL reads one JSON object per line; blank lines are skipped.
func (r *Reader) nextJSONL() (Record, error) {
	for {
		line, tooLong, err := r.readLine()
		if err != nil {
			return Record{}, err
		}
		if tooLong {
			r.row++
			return Record{}, r.rowError(r.line, line, tooLongReason("line"))
		}
		if len(trimJSONSpace(line)) == 0 {
			continue
		}
		// Leading space stays, so that a column in a reason counts from
		// the start of the line.
		t := trimJSONSpaceRight(line)
		r.row++
		if !utf8.Valid(t) {
			return Record{}, r.rowError(r.line, line, notUTF8)
		}
		v := &r.v
		v.reset()
		// One string per row: the record's fields are slices of it.
		if reason := parseObject(string(t), v); reason != "" {
			return Record{}, r.rowError(r.line, line, reason)
		}
		rec := Record{Row: r.row, Line: r.line}
		if reason := r.finish(v, &rec); reason != "" {
			return Record{}, r.rowError(r.line, line, reason)
		}
		return rec, nil
	}
}

// trimJSONSpace trims the four whitespace bytes of JSON, and no others:
// a line JSON would refuse is not made valid by trimming.
func trimJSONSpace(b []byte) []byte {
	for len(b) > 0 && isJSONSpace(b[0]) {
		b = b[1:]
	}
	return trimJSONSpaceRight(b)
}

func trimJSONSpaceRight(b []byte) []byte {
	for len(b) > 0 && isJSONSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// parseObject reads the JSON object s into v and returns why it cannot, or
// "". It scans the object by hand: decoding each line into a map with
// encoding/json costs about ten times as much (see BenchmarkJSONLStdlibMap).
func parseObject(s string, v *row) string {
	p := jscan{s: s}
	p.ws()
	if p.i >= len(s) || s[p.i] != '{' {
		return "not a JSON object"
	}
	p.i++
	p.ws()
	if p.eat('}') {
		return p.end()
	}
	var seen uint64
	for {
		p.ws()
		if p.i >= len(s) || s[p.i] != '"' {
			return p.malformed("want a key")
		}
		key, ok := p.str()
		if !ok {
			return p.malformed("bad key string")
		}
		p.ws()
		if !p.eat(':') {
			return p.malformed("want ':' after a key")
		}
		p.ws()
		if p.i >= len(s) {
			return p.malformed("want a value")
		}
		k, known := jsonKey(key)
		if !known {
			return "unknown key " + quoteCap(key)
		}
		bit := uint64(1) << (k + 4) // keys are -4..len(specs)-1
		if seen&bit != 0 {
			return "duplicate key " + quoteCap(key)
		}
		seen |= bit
		if reason := p.value(k, key, v); reason != "" {
			return reason
		}
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			return p.end()
		}
		return p.malformed("want ',' or '}'")
	}
}

// value reads the value of key k into v.
func (p *jscan) value(k int, key string, v *row) string {
	c := p.s[p.i]
	if jsonTypeName(c) == badValue {
		return p.malformed("want a value")
	}
	if c == 'n' {
		if p.lit("null") {
			return "" // null: not set
		}
		return p.malformed("bad literal")
	}
	if k < 0 {
		if k == keyID && (c == '-' || isDigit(c)) {
			start := p.i
			if !p.num() {
				return p.malformed("bad number")
			}
			v.id = p.s[start:p.i]
			return ""
		}
		if c != '"' {
			return p.wrongType(key, "a string")
		}
		s, ok := p.str()
		if !ok {
			return p.malformed("bad string")
		}
		switch k {
		case keyURL:
			v.url, v.hasURL = s, s != ""
		case keyQuery:
			v.query, v.hasQuery = s, s != ""
		case keyTarget:
			v.target = s
		case keyID:
			v.id = s
		}
		return ""
	}
	sp := &specs[k]
	switch sp.kind {
	case vBool:
		switch {
		case p.lit("true"):
			v.params.put(k, slot{s: "true", raw: true})
		case p.lit("false"):
			v.params.put(k, slot{s: "false", raw: true})
		case c == 't' || c == 'f':
			return p.malformed("bad literal")
		default:
			return p.wrongType(key, "true or false")
		}
		return ""
	case vInt:
		if c != '-' && !isDigit(c) {
			return p.wrongType(key, "an integer")
		}
		start := p.i
		if !p.num() {
			return p.malformed("bad number")
		}
		s, reason := parseJSONValue(sp, p.s[start:p.i])
		if reason != "" {
			return reason
		}
		v.params.put(k, s)
		return ""
	case vCodes, vJSON:
		if c != '[' && (c != '{' || sp.kind == vCodes) {
			return p.wrongType(key, kindName(sp.kind))
		}
		start := p.i
		if !p.skip(0) {
			return p.malformed("bad " + jsonTypeName(c))
		}
		s, reason := parseJSONValue(sp, p.s[start:p.i])
		if reason != "" {
			return reason
		}
		v.params.put(k, s)
		return ""
	}
	if c != '"' {
		return p.wrongType(key, "a string")
	}
	str, ok := p.str()
	if !ok {
		return p.malformed("bad string")
	}
	if str == "" {
		return ""
	}
	s, reason := stringSlot(sp, str)
	if reason != "" {
		return reason
	}
	v.params.put(k, s)
	return ""
}

// jscan is a position in a line of JSON.
type jscan struct {
	s string
	i int
}

func (p *jscan) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *jscan) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jscan) lit(l string) bool {
	if len(p.s)-p.i >= len(l) && p.s[p.i:p.i+len(l)] == l {
		p.i += len(l)
		return true
	}
	return false
}

func (p *jscan) end() string {
	p.ws()
	if p.i != len(p.s) {
		return p.malformed("data after the object")
	}
	return ""
}

func (p *jscan) malformed(what string) string {
	return "malformed JSON at column " + strconv.Itoa(p.i+1) + ": " + what
}

func (p *jscan) wrongType(key, want string) string {
	return key + ": want " + want + ", got " + jsonTypeName(p.s[p.i])
}

func jsonTypeName(c byte) string {
	switch {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || isDigit(c):
		return "a number"
	}
	return badValue
}

const badValue = "an invalid value"

// str reads the string at p.i (a '"'). Without escapes the result is a
// slice of the line; with them it is decoded into a new string.
func (p *jscan) str() (string, bool) {
	s := p.s
	i := p.i + 1
	for i < len(s) {
		c := s[i]
		if c == '"' {
			out := s[p.i+1 : i]
			p.i = i + 1
			return out, true
		}
		if c == '\\' {
			return p.strSlow(i)
		}
		if c < ' ' {
			return "", false
		}
		i++
	}
	return "", false
}

// strSlow decodes a string with escapes; i is the first backslash.
func (p *jscan) strSlow(i int) (string, bool) {
	s := p.s
	buf := make([]byte, 0, i-p.i+16)
	buf = append(buf, s[p.i+1:i]...)
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			p.i = i + 1
			return string(buf), true
		case c < ' ':
			return "", false
		case c != '\\':
			buf = append(buf, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return "", false
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return "", false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok := rune(-1), false
				if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2, ok = hex4(s, i+2)
				}
				if d := utf16.DecodeRune(r, r2); ok && d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
			continue
		default:
			return "", false
		}
		i += 2
	}
	return "", false
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case isDigit(c):
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// num moves past the JSON number at p.i.
func (p *jscan) num() bool {
	j := p.i
	for j < len(p.s) {
		c := p.s[j]
		if !(isDigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			break
		}
		j++
	}
	if !isJSONNumber(p.s[p.i:j]) {
		return false
	}
	p.i = j
	return true
}

// maxDepth bounds the nesting skip follows, so that a line of a million
// '[' is a bad row rather than a deep recursion.
const maxDepth = 128

// skip moves past the JSON value at p.i, checking its syntax.
func (p *jscan) skip(depth int) bool {
	if p.i >= len(p.s) || depth > maxDepth {
		return false
	}
	switch c := p.s[p.i]; {
	case c == '"':
		_, ok := p.str()
		return ok
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	case c == '-' || isDigit(c):
		return p.num()
	case c == '[':
		p.i++
		p.ws()
		if p.eat(']') {
			return true
		}
		for {
			p.ws()
			if !p.skip(depth + 1) {
				return false
			}
			p.ws()
			if p.eat(']') {
				return true
			}
			if !p.eat(',') {
				return false
			}
		}
	case c == '{':
		p.i++
		p.ws()
		if p.eat('}') {
			return true
		}
		for {
			p.ws()
			if p.i >= len(p.s) || p.s[p.i] != '"' {
				return false
			}
			if _, ok := p.str(); !ok {
				return false
			}
			p.ws()
			if !p.eat(':') {
				return false
			}
			p.ws()
			if !p.skip(depth + 1) {
				return false
			}
			p.ws()
			if p.eat('}') {
				return true
			}
			if !p.eat(',') {
				return false
			}
		}
	}
	return false
}

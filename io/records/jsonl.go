package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Keys of a JSONL object that are not task parameters; a parameter's key
// is its index in specs.
const (
	keyURL = -1 - iota
	keyQuery
	keyTarget
	keyID
)

// keyNames are the names of keyURL..keyID, indexed by -1-key.
var keyNames = [...]string{"url", "query", "target", "id"}

func keyName(k int) string {
	if k < 0 {
		return keyNames[-1-k]
	}
	return specs[k].name
}

// jsonKeyOf returns what a key of a JSONL object names: keyURL..keyID, or
// an index in specs.
func jsonKeyOf(key string) (int, bool) {
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

const jsonSpace = " \t\r\n"

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
		// Only JSON's whitespace is trimmed, so that a line JSON would
		// refuse is not made valid; the leading space stays, so that a
		// column counts from the start of the line.
		t := bytes.TrimRight(line, jsonSpace)
		if len(bytes.TrimLeft(t, jsonSpace)) == 0 {
			continue
		}
		r.row++
		if reason := r.decodeJSONL(t); reason != "" {
			return Record{}, r.rowError(r.line, line, reason)
		}
		rec := Record{Row: r.row, Line: r.line}
		if reason := r.finish(&r.v, &rec); reason != "" {
			return Record{}, r.rowError(r.line, line, reason)
		}
		return rec, nil
	}
}

// decodeJSONL decodes the line t into r.v and returns why it cannot, or "".
func (r *Reader) decodeJSONL(t []byte) string {
	if !utf8.Valid(t) {
		return notUTF8
	}
	if bytes.TrimLeft(t, jsonSpace)[0] != '{' {
		return "not a JSON object"
	}
	clear(r.jmap)
	if err := json.Unmarshal(t, &r.jmap); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return "malformed JSON at column " + strconv.FormatInt(se.Offset, 10) + ": " + se.Error()
		}
		return "malformed JSON: " + err.Error()
	}
	// In key order, so that a line with two faults always gets the same
	// reason. A repeated key counts once, its last value, as encoding/json
	// decodes it.
	r.jkeys = r.jkeys[:0]
	for key := range r.jmap {
		r.jkeys = append(r.jkeys, key)
	}
	slices.Sort(r.jkeys)
	v := &r.v
	v.reset()
	for _, key := range r.jkeys {
		k, ok := jsonKeyOf(key)
		if !ok {
			return "unknown key " + quoteCap(key)
		}
		if reason := v.setJSON(k, string(r.jmap[key])); reason != "" {
			return reason
		}
	}
	return ""
}

// setJSON sets the value of key k, the JSON text raw, in v. Null and the
// empty string mean "not set".
func (v *row) setJSON(k int, raw string) string {
	if raw == "null" {
		return ""
	}
	if k >= 0 {
		s, reason := parseJSONValue(&specs[k], raw)
		if reason != "" {
			return reason
		}
		if s.raw || s.s != "" {
			v.params.put(k, s)
		}
		return ""
	}
	typ := jsonTypeName(raw)
	if k == keyID && typ == "a number" {
		v.id = raw
		return ""
	}
	if typ != "a string" {
		return keyName(k) + ": want a string, got " + typ
	}
	s, ok := jsonString(raw)
	if !ok {
		return keyName(k) + ": malformed JSON string"
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

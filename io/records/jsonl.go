package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/decodo-batch/decodo-batch/decodo"
)

// What a key of a JSONL object names, besides a parameter (an index in
// the reader's space, >= 0): an input field (keyInput - its decodo.Input),
// the target or the id.
const (
	keyIsTarget = -1 - iota
	keyIsID
	keyInput // keyInput - decodo.InputURL is url, and so on
)

// jsonKeyOf returns what a key of a JSONL object names.
func (r *Reader) jsonKeyOf(key string) (int, bool) {
	switch key {
	case keyTarget:
		return keyIsTarget, true
	case keyID:
		return keyIsID, true
	case "url":
		return keyInput - int(decodo.InputURL), true
	case "query":
		return keyInput - int(decodo.InputQuery), true
	case "prompt":
		return keyInput - int(decodo.InputPrompt), true
	case "product_id":
		return keyInput - int(decodo.InputProductID), true
	}
	i, ok := r.space.index[key]
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
			return Record{}, r.rowError(r.line, "", line, tooLongReason("line"))
		}
		// Only JSON's whitespace is trimmed, so that a line JSON would
		// refuse is not made valid; the leading space stays, so that a
		// column counts from the start of the line.
		t := bytes.TrimRight(line, jsonSpace)
		if len(bytes.TrimLeft(t, jsonSpace)) == 0 {
			continue
		}
		r.row++
		r.v.reset()
		if reason := r.decodeJSONL(t); reason != "" {
			return Record{}, r.rowError(r.line, r.v.id, line, reason)
		}
		rec := Record{Row: r.row, Line: r.line}
		if reason := r.finish(&r.v, &rec); reason != "" {
			return Record{}, r.rowError(r.line, r.v.id, line, reason)
		}
		return rec, nil
	}
}

// decodeJSONL decodes the line t into r.v and returns why it cannot, or "".
func (r *Reader) decodeJSONL(t []byte) string { return r.decodeLine(t, 0) }

// decodeLine decodes the JSON object t into r.v; depth counts the rejects
// lines t is nested in (see decodeOutput).
func (r *Reader) decodeLine(t []byte, depth int) string {
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
	v := &r.v
	// The id first, so that a bad row carries it whatever its fault.
	if raw, ok := r.jmap[keyID]; ok {
		if reason := v.setJSON(keyIsID, string(raw)); reason != "" {
			return reason
		}
	}
	// In key order, so that a line with two faults always gets the same
	// reason. A repeated key counts once, its last value, as encoding/json
	// decodes it.
	r.jkeys = r.jkeys[:0]
	output := false
	for key := range r.jmap {
		if key != keyID {
			r.jkeys = append(r.jkeys, key)
			output = output || outputKey(key) == outMarker
		}
	}
	slices.Sort(r.jkeys)
	if output {
		return r.decodeOutput(depth)
	}
	for _, key := range r.jkeys {
		k, ok := r.jsonKeyOf(key)
		if !ok {
			return "unknown key " + quoteCap(key) + didYouMean(decodo.Nearest(key, r.space.names))
		}
		if k >= 0 && v.params.set.has(k) {
			return "row has both " + passthrough + " and " + passtrough + ", which are one parameter"
		}
		if reason := v.setJSON(k, string(r.jmap[key])); reason != "" {
			return reason
		}
	}
	return ""
}

// setJSON sets the value of key k, the JSON text raw, in v. Null and the
// empty string mean "not set". A parameter's value is checked later, by
// finish, against the row's target.
func (v *row) setJSON(k int, raw string) string {
	if raw == "null" || raw == `""` {
		return ""
	}
	if k >= 0 {
		v.params.put(k, slot{s: raw, form: formJSON})
		return ""
	}
	name := keyTarget
	switch {
	case k == keyIsID:
		name = keyID
	case k <= keyInput:
		name = decodo.Input(keyInput - k).String()
	}
	typ := jsonTypeName(raw)
	if k == keyIsID && typ == "a number" {
		v.id = raw
		return ""
	}
	if typ != "a string" {
		return name + ": want a string, got " + typ
	}
	s, ok := jsonString(raw)
	if !ok {
		return name + ": malformed JSON string"
	}
	switch {
	case k == keyIsTarget:
		v.target = s
	case k == keyIsID:
		v.id = s
	default:
		v.setInput(decodo.Input(keyInput-k), s)
	}
	return ""
}

package records

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/jsonstr"
)

// A line of decodo-batch's own output (results.jsonl, failed.jsonl,
// rejects.jsonl) is a valid JSONL input line, so that
// `run OUT/failed.jsonl -o other` does the failed rows again:
//
//   - A results or failed line is read as its id, target, input field and
//     the parameters of its "params" object. Its other keys are the
//     output's own (row, line, task_id, status_code, headers, cookies,
//     content, pages, content_file, content_bytes, content_sha256,
//     attempts, fetched_at, error_class, error, duplicate_of) and are
//     ignored; "headers" and "cookies" there are what the scraped site
//     answered, not the universal target's parameters of those names. A
//     parameter outside "params" is a bad row: it would be ambiguous.
//   - A rejects line ({row, line, id, error, input}) is read as the line it
//     was: an input that is a JSON object is read as that JSONL line; one
//     that is a URL alone (no space, no comma) as a TXT line. Anything else
//     (a record of a CSV input, whose header the line does not hold) is a
//     bad row saying so.
//
// A line is an output line when it has a key only the output has (row,
// line, task_id, error_class, fetched_at, params, input and the others
// above, except headers and cookies); none of them is an input key, so no
// valid input line changes meaning.

// outKind says what a key of an output line is.
type outKind uint8

const (
	outNone   outKind = iota // not an output key
	outMarker                // only the output has it: the line is an output line
	outShared                // the output has it, and it is a parameter too (headers, cookies)
)

// Keys of output lines with a meaning on input.
const (
	keyParams = "params"
	keyRaw    = "input"
)

// outputKey tells what key is in an output line.
func outputKey(key string) outKind {
	switch key {
	case "row", "line", "task_id", "status_code", "content", "pages",
		"content_file", "content_bytes", "content_sha256", "attempts",
		"fetched_at", "error_class", "error", "duplicate_of", keyParams, keyRaw:
		return outMarker
	case "headers", "cookies":
		return outShared
	}
	return outNone
}

// maxNesting bounds how deep a rejects line's input may hold another
// rejects line.
const maxNesting = 2

// decodeOutput decodes a line of decodo-batch's output, whose keys are in
// r.jmap and, sorted and without id, in r.jkeys, into r.v (whose id is
// set). It returns why the line cannot be an input row, or "".
func (r *Reader) decodeOutput(depth int) string {
	v := &r.v
	var input string
	hasInput := false
	for _, key := range r.jkeys {
		raw := r.jmap[key]
		switch kind := outputKey(key); {
		case key == keyParams:
			if reason := r.setOutputParams(raw); reason != "" {
				return reason
			}
		case key == keyRaw:
			input, hasInput = string(raw), true
		case kind != outNone:
			// The output's own, ignored.
		default:
			k, ok := r.jsonKeyOf(key)
			if !ok || k >= 0 {
				return "key " + quoteCap(key) + " in a line of decodo-batch's output: its parameters go in \"params\""
			}
			if reason := v.setJSON(k, string(raw)); reason != "" {
				return reason
			}
		}
	}
	if hasInput && v.target == "" && v.filled == 0 && v.params.set == (bitset{}) {
		return r.rereadInput(input, depth)
	}
	return ""
}

// setOutputParams sets the parameters of an output line's "params" object.
func (r *Reader) setOutputParams(raw json.RawMessage) string {
	s := string(raw)
	if s == "null" {
		return ""
	}
	if t := jsonTypeName(s); t != "an object" {
		return "params: want a JSON object, got " + t
	}
	if r.pmap == nil {
		r.pmap = make(map[string]json.RawMessage)
	}
	clear(r.pmap)
	if err := json.Unmarshal(raw, &r.pmap); err != nil {
		return "params: malformed JSON: " + err.Error()
	}
	r.pkeys = r.pkeys[:0]
	for key := range r.pmap {
		r.pkeys = append(r.pkeys, key)
	}
	slices.Sort(r.pkeys)
	v := &r.v
	for _, key := range r.pkeys {
		k, ok := r.space.index[key]
		if !ok {
			if jk, isKey := r.jsonKeyOf(key); isKey && jk < 0 {
				return "params: " + key + " is not a parameter: it belongs beside params"
			}
			return "params: unknown parameter " + quoteCap(key) + didYouMean(decodo.Nearest(key, r.space.names))
		}
		if v.params.set.has(k) {
			return "params: row has both " + passthrough + " and " + passtrough + ", which are one parameter"
		}
		if reason := v.setJSON(k, string(r.pmap[key])); reason != "" {
			return "params: " + reason
		}
	}
	return ""
}

// rereadInput reads the "input" of a rejects line (the JSON text raw) as
// the line it was, into r.v.
func (r *Reader) rereadInput(raw string, depth int) string {
	if jsonTypeName(raw) != "a string" {
		return "input: want a string, got " + jsonTypeName(raw)
	}
	s, ok := jsonString(raw)
	if !ok {
		return "input: malformed JSON string"
	}
	t := strings.TrimSpace(s)
	v := &r.v
	id := v.id
	switch {
	case strings.HasPrefix(t, "{") && depth < maxNesting:
		v.reset()
		if reason := r.decodeLine([]byte(t), depth+1); reason != "" {
			return "the input of this rejects line: " + reason
		}
		if v.id == "" {
			v.id = id
		}
		return ""
	case isURLLine(t):
		v.setInput(decodo.InputURL, t)
		return ""
	}
	return "a rejects line whose input is neither a JSON object nor a URL (a CSV record, without its header?) cannot be read back: correct the row in the original input"
}

// isURLLine reports whether s reads as the URL of a TXT line: an http(s)
// scheme, no space, and no comma (which would rather be a CSV record).
func isURLLine(s string) bool {
	if len(s) < 8 || !(strings.EqualFold(s[:7], "http://") || strings.EqualFold(s[:8], "https://")) {
		return false
	}
	return !strings.ContainsAny(s, " \t,")
}

// JSONL returns the record as a JSONL input line (without its line end):
// its id, target, input field and parameters, which read back as the same
// record. The run writes it as the "input" of a row the API refused, whose
// raw text it no longer has.
func (r *Record) JSONL() string {
	b := []byte{'{'}
	if r.ID != "" {
		b = append(b, `"id":`...)
		b = jsonstr.Append(b, r.ID)
		b = append(b, ',')
	}
	b = append(b, `"target":`...)
	b = jsonstr.Append(b, r.Target)
	if in, val := r.Input(); in != decodo.InputNone {
		b = append(b, ',')
		b = jsonstr.Append(b, in.String())
		b = append(b, ':')
		b = jsonstr.Append(b, val)
	}
	if p := string(r.Params); len(p) > 2 {
		b = append(b, ',')
		b = append(b, p[1:len(p)-1]...)
	}
	return string(append(b, '}'))
}

package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/jsonstr"
)

// Params is a canonical JSON object of task parameters: keys sorted, values
// compact, nested object keys sorted too, "" when there are none. Two rows
// with equal Params can share one batch. It never holds target, id or an
// input field (url, query, prompt, product_id).
type Params string

// ParseParam parses one --param KEY=VALUE. A KEY in allow (the names of
// --allow-param) passes unchecked: VALUE is taken as JSON when it parses
// as JSON, else as a string. Any other KEY must be a parameter some target
// of the table takes (passtrough is read as passthrough), and VALUE is
// checked as an input cell of that parameter would be: parse=maybe is an
// error, page_count=11 too; a JSON string literal is unquoted for a string
// parameter. Whether the target of a row takes KEY is the reader's
// question. The error names the key, and the nearest known name for an
// unknown one; target, id and the input fields are not parameters.
func ParseParam(kv string, allow []string) (Params, error) {
	key, val, ok := strings.Cut(kv, "=")
	key = strings.TrimSpace(key)
	if !ok {
		return "", fmt.Errorf("param %q: want KEY=VALUE", kv)
	}
	if key == passtrough {
		key = passthrough
	}
	if isAllowed(key, allow) {
		if val == "" {
			return "", fmt.Errorf("param %s: empty value", key)
		}
		s := allowedCell(val)
		return Params(string(append(jsonstr.Append([]byte{'{'}, key), ':')) + s.json() + "}"), nil
	}
	i, err := lookupParam(key)
	if err != nil {
		return "", err
	}
	d := &known.defs[i]
	if val == "" {
		return "", fmt.Errorf("param %s: empty value", key)
	}
	cell := val
	if d.param.Type == decodo.ParamString && val[0] == '"' {
		var s string
		if json.Unmarshal([]byte(val), &s) == nil {
			cell = s
		}
	}
	s, reason := checkCell(d, d.param, cell)
	if reason != "" {
		return "", fmt.Errorf("param %s", reason)
	}
	return Params("{" + d.prefix + s.json() + "}"), nil
}

// isAllowed reports whether key is one of the allowed names.
func isAllowed(key string, allow []string) bool {
	for _, a := range allow {
		if name, err := allowedName(a); err == nil && name == key {
			return true
		}
	}
	return false
}

// lookupParam returns the index in the known space of a parameter's name,
// or an error naming it and the nearest known name.
func lookupParam(key string) (int, error) {
	if i, ok := known.index[key]; ok {
		return i, nil
	}
	switch {
	case key == keyTarget:
		return 0, fmt.Errorf("param target: %w (the target of every row is an option of its own)", ErrUnknownParam)
	case key == keyID || inputFields[key] != decodo.InputNone:
		return 0, fmt.Errorf("param %s: belongs in the input rows, not in a parameter", key)
	}
	return 0, fmt.Errorf("param %q: %w%s: no target takes it", key, ErrUnknownParam, didYouMean(decodo.Nearest(key, known.names)))
}

// Merge returns p with the keys of over added, replacing those p has.
// Both are read as JSON objects; one that is not (Params not made by this
// package) counts as empty. The result is canonical.
func (p Params) Merge(over Params) Params {
	a, _ := splitObject(string(p))
	b, _ := splitObject(string(over))
	m := make(map[string]string, len(a)+len(b))
	for _, kv := range a {
		m[kv[0]] = kv[1]
	}
	for _, kv := range b {
		m[kv[0]] = kv[1]
	}
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var buf []byte
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = jsonstr.Append(buf, k)
		buf = append(buf, ':')
		buf = append(buf, m[k]...)
	}
	buf = append(buf, '}')
	return Params(buf)
}

// splitObject returns the keys and canonical values of the JSON object s
// ("" is an empty object).
func splitObject(s string) ([][2]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]json.RawMessage
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	out := make([][2]string, 0, len(m))
	for k, raw := range m {
		c, err := canonicalJSON(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, [2]string{k, c})
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out, nil
}

// jsonTypeName names the type of the JSON value v by its first byte, or
// returns "" if no JSON value starts with it.
func jsonTypeName(v string) string {
	if v == "" {
		return ""
	}
	switch c := v[0]; {
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
	return ""
}

// jsonString decodes the JSON string literal v, which encoding/json has
// checked. One without a backslash is its own text between the quotes:
// only escapes take a decode.
func jsonString(v string) (string, bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && strings.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], true
	}
	var s string
	if json.Unmarshal([]byte(v), &s) != nil {
		return "", false
	}
	return s, true
}

// showJSON cuts the JSON text v for a reason. A CSV cell that is not JSON
// may hold a line break, which a one-line reason must not: it is quoted.
func showJSON(v string) string {
	s := capString(v, 64)
	if hasControl(s) {
		return strconv.Quote(s)
	}
	return s
}

// canonicalJSON returns the JSON text b compacted, with object keys sorted
// and strings written as jsonstr.Append writes them, so that equal values
// give equal text. Numbers keep their text.
func canonicalJSON(b []byte) (string, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "", err
	}
	if _, err := d.Token(); err != io.EOF {
		return "", errors.New("data after the value")
	}
	return string(appendCanonical(nil, v)), nil
}

func appendCanonical(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, v)
	case json.Number:
		return append(dst, v...)
	case string:
		return jsonstr.Append(dst, v)
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCanonical(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonstr.Append(dst, k)
			dst = append(dst, ':')
			dst = appendCanonical(dst, v[k])
		}
		return append(dst, '}')
	}
	panic(fmt.Sprintf("records: unexpected JSON value %T", v))
}

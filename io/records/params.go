package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/decodo-batch/decodo-batch/io/jsonstr"
)

// Params is a canonical JSON object of task parameters: keys sorted, values
// compact, nested object keys sorted too, "" when there are none. Two rows
// with equal Params can share one batch. It never holds target, url, query
// or id.
type Params string

// valueKind is how a task parameter's value is checked and written.
type valueKind uint8

const (
	vString valueKind = iota // any string without control characters
	vEnum                    // one of paramSpec.enum
	vURL                     // an http(s) URL
	vBase64                  // standard base64
	vBool                    // true/false (CSV and --param also 1/0)
	vInt                     // an integer in [min, max]
	vCodes                   // a list of HTTP status codes
	vJSON                    // a JSON object or array (headers, cookies)
)

func (k valueKind) isString() bool { return k == vString || k == vEnum || k == vURL || k == vBase64 }

// paramSpec describes one task parameter the API takes.
type paramSpec struct {
	name     string
	kind     valueKind
	min, max int
	enum     []string
	prefix   string // `"name":`, written before the value in a Params
}

// specs is sorted by name, so walking it in index order writes a Params'
// keys in canonical order without sorting anything per row.
var specs = sortSpecs([]paramSpec{
	{name: "geo"},
	{name: "locale"},
	{name: "device_type"},
	{name: "domain"},
	{name: "headless", kind: vEnum, enum: []string{"html", "png"}},
	{name: "parse", kind: vBool},
	{name: "markdown", kind: vBool},
	{name: "page_from", kind: vInt, min: 0, max: 100},
	{name: "page_count", kind: vInt, min: 1, max: 10},
	{name: "limit", kind: vInt, min: 0, max: 100},
	{name: "session_id"},
	{name: "callback_url", kind: vURL},
	{name: "passthrough"},
	{name: "http_method"},
	{name: "payload", kind: vBase64},
	{name: "headers", kind: vJSON},
	{name: "cookies", kind: vJSON},
	{name: "force_headers", kind: vBool},
	{name: "force_cookies", kind: vBool},
	{name: "successful_status_codes", kind: vCodes},
	{name: "proxy_pool", kind: vEnum, enum: []string{"standard", "premium"}},
})

func sortSpecs(s []paramSpec) []paramSpec {
	if len(s) > 32 {
		panic("records: more parameters than a paramSet holds")
	}
	slices.SortFunc(s, func(a, b paramSpec) int { return strings.Compare(a.name, b.name) })
	for i := range s {
		s[i].prefix = strconv.Quote(s[i].name) + ":"
	}
	return s
}

// specIndex maps a parameter name to its index in specs.
var specIndex = func() map[string]int {
	m := make(map[string]int, len(specs))
	for i := range specs {
		m[specs[i].name] = i
	}
	return m
}()

// smallInts holds the decimal text of 0..100, so that writing an integer
// parameter allocates nothing.
var smallInts = func() (a [101]string) {
	for i := range a {
		a[i] = strconv.Itoa(i)
	}
	return a
}()

// slot is one parameter's value in a row: JSON text when raw, else a string
// still to be quoted. Keeping the string unquoted lets a row point into its
// input line instead of allocating the quoted form.
type slot struct {
	s   string
	raw bool
}

// paramSet is the parameters of one row, indexed like specs.
type paramSet struct {
	set   uint32 // bit i: slots[i] holds a value
	slots [32]slot
}

func (ps *paramSet) put(i int, s slot) {
	ps.set |= 1 << i
	ps.slots[i] = s
}

// appendParams writes the canonical object of row over defaults into dst.
func appendParams(dst []byte, row, def *paramSet) []byte {
	mask := row.set | def.set
	if mask == 0 {
		return dst
	}
	dst = append(dst, '{')
	first := true
	for m := mask; m != 0; m &= m - 1 {
		i := bits.TrailingZeros32(m)
		bit := uint32(1) << i
		s := &def.slots[i]
		if row.set&bit != 0 {
			s = &row.slots[i]
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, specs[i].prefix...)
		if s.raw {
			dst = append(dst, s.s...)
		} else {
			dst = jsonstr.Append(dst, s.s)
		}
	}
	return append(dst, '}')
}

// ParseParam parses one --param KEY=VALUE. VALUE is taken as JSON when it
// parses as JSON, else as a string; it is then checked as an input cell of
// that parameter would be (parse=maybe is an error, page_count=11 too).
// The error names the key; target, url, query and id are not parameters.
func ParseParam(kv string) (Params, error) {
	key, val, ok := strings.Cut(kv, "=")
	key = strings.TrimSpace(key)
	if !ok {
		return "", fmt.Errorf("param %q: want KEY=VALUE", kv)
	}
	i, err := lookupParam(key)
	if err != nil {
		return "", err
	}
	sp := &specs[i]
	if val == "" {
		return "", fmt.Errorf("param %s: empty value", key)
	}
	cell := val
	if sp.kind.isString() && val[0] == '"' {
		// A JSON string literal is unquoted for string parameters.
		var s string
		if json.Unmarshal([]byte(val), &s) == nil {
			cell = s
		}
	}
	s, reason := parseCell(sp, cell)
	if reason != "" {
		return "", fmt.Errorf("param %s", reason)
	}
	if !s.raw {
		s = slot{s: string(jsonstr.Append(nil, s.s)), raw: true}
	}
	return Params("{" + sp.prefix + s.s + "}"), nil
}

// lookupParam returns the index in specs of a task parameter's name.
func lookupParam(key string) (int, error) {
	if i, ok := specIndex[key]; ok {
		return i, nil
	}
	switch key {
	case "target":
		return 0, errors.New("param target: use --target")
	case "url", "query", "id":
		return 0, fmt.Errorf("param %s: belongs in the input rows, not in a parameter", key)
	}
	return 0, fmt.Errorf("param %q: unknown parameter (known: %s)", key, paramNames())
}

func paramNames() string {
	names := make([]string, len(specs))
	for i := range specs {
		names[i] = specs[i].name
	}
	return strings.Join(names, ", ")
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

// defaultsSet checks p as a set of task parameters and returns it in the
// form rows are merged with.
func defaultsSet(p Params) (paramSet, error) {
	var ps paramSet
	kvs, err := splitObject(string(p))
	if err != nil {
		return ps, fmt.Errorf("default parameters %q: %w", p, err)
	}
	for _, kv := range kvs {
		i, err := lookupParam(kv[0])
		if err != nil {
			return ps, fmt.Errorf("default parameters: %w", err)
		}
		s, reason := parseJSONValue(&specs[i], kv[1])
		if reason != "" {
			return ps, fmt.Errorf("default parameters: %s", reason)
		}
		if s.raw || s.s != "" {
			if !s.raw {
				s = slot{s: string(jsonstr.Append(nil, s.s)), raw: true}
			}
			ps.put(i, s)
		}
	}
	return ps, nil
}

// parseCell checks a CSV cell (or a --param value) for parameter sp. The
// cell is not empty. The reason, when there is one, starts with the name.
func parseCell(sp *paramSpec, v string) (slot, string) {
	switch sp.kind {
	case vBool:
		switch {
		case v == "1" || strings.EqualFold(v, "true"):
			return slot{s: "true", raw: true}, ""
		case v == "0" || strings.EqualFold(v, "false"):
			return slot{s: "false", raw: true}, ""
		}
		return slot{}, sp.name + ": want true/false/1/0, got " + quoteCap(v)
	case vInt:
		n, err := strconv.Atoi(v)
		if err != nil {
			return slot{}, sp.name + ": want an integer, got " + quoteCap(v)
		}
		return intSlot(sp, int64(n))
	case vCodes:
		if strings.HasPrefix(v, "[") {
			return parseJSONValue(sp, v)
		}
		return codesSlot(sp, strings.Split(v, ","))
	case vJSON:
		return parseJSONValue(sp, v)
	}
	return stringSlot(sp, v)
}

// parseJSONValue checks the JSON text v for parameter sp: a value
// encoding/json has already read (a JSONL value, a default), or a CSV cell
// of a kind that is JSON (codes as an array, headers, cookies), which is
// checked here. A JSON null means "not set": the slot is then an empty
// string. A value of the wrong JSON type gets a reason naming the type; one
// of the right type but a bad value, its text.
func parseJSONValue(sp *paramSpec, v string) (slot, string) {
	v = strings.TrimSpace(v)
	if v == "null" {
		return slot{}, ""
	}
	got := jsonTypeName(v)
	want := kindName(sp.kind)
	switch sp.kind {
	case vBool:
		if got == "a boolean" {
			return slot{s: v, raw: true}, ""
		}
	case vInt:
		if got == "a number" {
			// Valid JSON, so ParseInt takes exactly the integers: JSON
			// has no '+' sign or leading zeros.
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return intSlot(sp, n)
			}
			got = showJSON(v)
		}
	case vCodes:
		if got == "an array" {
			var nums []json.Number
			d := json.NewDecoder(strings.NewReader(v))
			d.UseNumber()
			if d.Decode(&nums) == nil && !d.More() {
				parts := make([]string, len(nums))
				for i, n := range nums {
					parts[i] = n.String()
				}
				return codesSlot(sp, parts)
			}
			got = showJSON(v)
		}
	case vJSON:
		if got == "an object" || got == "an array" {
			if c, err := canonicalJSON([]byte(v)); err == nil {
				return slot{s: c, raw: true}, ""
			}
			got = showJSON(v)
		}
	default:
		if got == "a string" {
			s, ok := jsonString(v)
			if !ok {
				return slot{}, sp.name + ": malformed JSON string"
			}
			if s == "" {
				return slot{}, ""
			}
			return stringSlot(sp, s)
		}
	}
	if got == "" {
		got = showJSON(v) // not JSON: a CSV cell
	}
	return slot{}, fmt.Sprintf("%s: want %s, got %s", sp.name, want, got)
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

func intSlot(sp *paramSpec, n int64) (slot, string) {
	if n < int64(sp.min) || n > int64(sp.max) {
		return slot{}, fmt.Sprintf("%s: %d is out of range %d-%d", sp.name, n, sp.min, sp.max)
	}
	return slot{s: smallInts[n], raw: true}, ""
}

// codesSlot checks a list of HTTP status codes given as decimal texts.
func codesSlot(sp *paramSpec, parts []string) (slot, string) {
	buf := []byte{'['}
	for i, p := range parts {
		p = strings.TrimSpace(p)
		n, err := strconv.Atoi(p)
		if err != nil || n < 100 || n > 599 {
			return slot{}, sp.name + ": want HTTP status codes (100-599), got " + quoteCap(p)
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, int64(n), 10)
	}
	return slot{s: string(append(buf, ']')), raw: true}, ""
}

// stringSlot checks a non-empty string value for parameter sp.
func stringSlot(sp *paramSpec, v string) (slot, string) {
	if hasControl(v) {
		return slot{}, sp.name + ": contains a control character: " + quoteCap(v)
	}
	switch sp.kind {
	case vEnum:
		for _, e := range sp.enum {
			if strings.EqualFold(v, e) {
				return slot{s: e}, ""
			}
		}
		return slot{}, fmt.Sprintf("%s: want one of %s, got %s", sp.name, strings.Join(sp.enum, ", "), quoteCap(v))
	case vURL:
		if reason := checkURL(v); reason != "" {
			return slot{}, sp.name + ": " + reason
		}
	case vBase64:
		if !isBase64(v) {
			return slot{}, sp.name + ": not standard base64: " + quoteCap(v)
		}
	case vString:
	default:
		return slot{}, sp.name + ": want " + kindName(sp.kind) + ", got a string"
	}
	return slot{s: v}, ""
}

func kindName(k valueKind) string {
	switch k {
	case vBool:
		return "true or false"
	case vInt:
		return "an integer"
	case vCodes:
		return "an array of status codes"
	case vJSON:
		return "a JSON object or array"
	}
	return "a string"
}

func isBase64(s string) bool {
	if len(s)%4 != 0 {
		return false
	}
	pad := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '=':
			pad++
			if pad > 2 {
				return false
			}
		case pad > 0:
			return false
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
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

package records

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/jsonstr"
)

// form says what the text of a slot is.
type form uint8

const (
	formString form = iota // a checked string, quoted when written
	formRaw                // checked JSON text, written as it is
	formCell               // a CSV cell, not yet checked
	formJSON               // JSON text of a JSONL line, not yet checked
)

// slot is one parameter's value in a row. A row's values are kept as they
// came until its target is known, then checked against the target's
// definition. Keeping a string unquoted lets a row point into its input
// line instead of allocating the quoted form.
type slot struct {
	s    string
	form form
}

// json returns the checked value as JSON text.
func (s slot) json() string {
	if s.form == formString {
		return string(jsonstr.Append(nil, s.s))
	}
	return s.s
}

// paramSet is the parameters of one row, indexed like the reader's space.
type paramSet struct {
	set   bitset
	slots []slot // as many as the space has names
}

func newParamSet(sp *space) paramSet { return paramSet{slots: make([]slot, len(sp.defs))} }

func (ps *paramSet) put(i int, s slot) {
	ps.set.add(i)
	ps.slots[i] = s
}

// appendParams writes the canonical object of row over defaults into dst;
// defs names the indexes. Every slot in either set is checked.
func appendParams(dst []byte, defs []paramDef, row, def *paramSet) []byte {
	mask := row.set.or(&def.set)
	first := true
	for w := range mask {
		for m := mask[w]; m != 0; m &= m - 1 {
			i := w<<6 + bits.TrailingZeros64(m)
			var s *slot
			if row.set.has(i) {
				s = &row.slots[i]
			} else {
				s = &def.slots[i]
			}
			if first {
				dst = append(dst, '{')
				first = false
			} else {
				dst = append(dst, ',')
			}
			dst = append(dst, defs[i].prefix...)
			if s.form == formString {
				dst = jsonstr.Append(dst, s.s)
			} else {
				dst = append(dst, s.s...)
			}
		}
	}
	if first {
		return dst
	}
	return append(dst, '}')
}

// defaultsSet checks p as the default parameters of rows read in space sp
// and returns it in the form rows are merged with. A name only allowed is
// taken as it is; any other must be one some target takes, with a value
// of its type. Whether a row's target takes it is checked by row.
func defaultsSet(p Params, sp *space) (paramSet, error) {
	ps := newParamSet(sp)
	kvs, err := splitObject(string(p))
	if err != nil {
		return ps, fmt.Errorf("default parameters %q: %w", p, err)
	}
	for _, kv := range kvs {
		i, ok := sp.index[kv[0]]
		if !ok {
			if _, err := lookupParam(kv[0]); err != nil {
				return ps, fmt.Errorf("default parameters: %w", err)
			}
			return ps, fmt.Errorf("default parameters: %q is not a parameter", kv[0])
		}
		if kv[1] == "null" || kv[1] == `""` {
			continue // not set, as in a JSONL row
		}
		d := &sp.defs[i]
		if ps.set.has(i) {
			return ps, fmt.Errorf("default parameters: %s is given twice (as %s and %s)", d.name, passthrough, passtrough)
		}
		s, reason := checkValue(d, d.param, slot{s: kv[1], form: formJSON})
		if reason != "" {
			return ps, fmt.Errorf("default parameters: %s", reason)
		}
		ps.put(i, s)
	}
	return ps, nil
}

// checkValue checks the unchecked slot s (a CSV cell or JSONL text) as the
// value of d, which p defines for the row's target, and returns it
// checked, or the reason it is bad. An allowed name takes any value.
func checkValue(d *paramDef, p *decodo.Param, s slot) (slot, string) {
	switch {
	case d.allowed && s.form == formCell:
		return allowedCell(s.s), ""
	case d.allowed:
		c, err := canonicalJSON([]byte(s.s))
		if err != nil {
			return slot{}, d.name + ": malformed JSON"
		}
		return slot{s: c, form: formRaw}, ""
	case s.form == formCell:
		return checkCell(d, p, s.s)
	}
	return checkJSON(d, p, s.s)
}

// allowedCell is a CSV cell or --param value of an allowed name: its JSON
// when it is JSON, else a string.
func allowedCell(v string) slot {
	if jsonTypeName(v) != "" {
		if c, err := canonicalJSON([]byte(v)); err == nil {
			return slot{s: c, form: formRaw}
		}
	}
	return slot{s: v}
}

// checkCell checks a CSV cell (or a --param value) for d as p defines it.
// The cell is not empty. The reason, when there is one, starts with the
// name.
func checkCell(d *paramDef, p *decodo.Param, v string) (slot, string) {
	switch p.Type {
	case decodo.ParamBool:
		switch {
		case v == "1" || strings.EqualFold(v, "true"):
			return slot{s: "true", form: formRaw}, ""
		case v == "0" || strings.EqualFold(v, "false"):
			return slot{s: "false", form: formRaw}, ""
		}
		return slot{}, d.name + ": want true/false/1/0, got " + quoteCap(v)
	case decodo.ParamNumber:
		return numberSlot(d, p, v, quoteCap(v))
	case decodo.ParamArray:
		if strings.HasPrefix(v, "[") {
			return checkJSON(d, p, v)
		}
		return numbersSlot(d, p, strings.Split(v, ","))
	case decodo.ParamObject:
		return checkJSON(d, p, v)
	}
	return stringSlot(d, p, v)
}

// checkJSON checks the JSON text v for d as p defines it: a value
// encoding/json has already read (a JSONL value, a default), or a CSV cell
// of a type that is JSON (an object, an array), which is checked here. v
// is neither null nor "", which mean "not set". A value of the wrong JSON
// type gets a reason naming the type; one of the right type but a bad
// value, its text.
func checkJSON(d *paramDef, p *decodo.Param, v string) (slot, string) {
	v = strings.TrimSpace(v)
	got := jsonTypeName(v)
	switch p.Type {
	case decodo.ParamBool:
		if got == "a boolean" {
			return slot{s: v, form: formRaw}, ""
		}
	case decodo.ParamNumber:
		if got == "a number" {
			return numberSlot(d, p, v, showJSON(v))
		}
	case decodo.ParamArray:
		if got == "an array" {
			var nums []json.Number
			dec := json.NewDecoder(strings.NewReader(v))
			dec.UseNumber()
			if dec.Decode(&nums) == nil && !dec.More() {
				parts := make([]string, len(nums))
				for i, n := range nums {
					parts[i] = n.String()
				}
				return numbersSlot(d, p, parts)
			}
			got = showJSON(v)
		}
	case decodo.ParamObject:
		if got == "an object" {
			if c, err := canonicalJSON([]byte(v)); err == nil {
				return slot{s: c, form: formRaw}, ""
			}
			got = showJSON(v)
		}
	default:
		if got == "a string" {
			s, ok := jsonString(v)
			if !ok {
				return slot{}, d.name + ": malformed JSON string"
			}
			return stringSlot(d, p, s)
		}
	}
	if got == "" {
		got = showJSON(v) // not JSON: a CSV cell
	}
	return slot{}, d.name + ": want " + typeName(d, p) + ", got " + got
}

// typeName says what type of value d takes, for a reason.
func typeName(d *paramDef, p *decodo.Param) string {
	switch p.Type {
	case decodo.ParamBool:
		return "true or false"
	case decodo.ParamNumber:
		if p.Integer {
			return "an integer"
		}
		return "a number"
	case decodo.ParamArray:
		if d.extra == extraCodes {
			return "an array of status codes"
		}
		return "an array of numbers"
	case decodo.ParamObject:
		return "a JSON object"
	}
	return "a string"
}

// smallInts holds the decimal text of 0..100, so that writing a small
// integer parameter allocates nothing.
var smallInts = func() (a [101]string) {
	for i := range a {
		a[i] = strconv.Itoa(i)
	}
	return a
}()

// numberSlot checks the number text v (a CSV cell, or a JSON number) for
// d as p defines it; shown is v as a reason shows it. The value written is
// the number's canonical text, whatever its source.
func numberSlot(d *paramDef, p *decodo.Param, v, shown string) (slot, string) {
	var f float64
	var text string
	if p.Integer {
		// A JSON number has no '+' sign or leading zeros, so ParseInt
		// takes exactly its integers; 2.0 and 1e2 are not.
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return slot{}, d.name + ": want an integer, got " + shown
		}
		f = float64(n)
		if 0 <= n && n < int64(len(smallInts)) {
			text = smallInts[n]
		} else {
			text = strconv.FormatInt(n, 10)
		}
	} else {
		var err error
		f, err = strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return slot{}, d.name + ": want a number, got " + shown
		}
		text = strconv.FormatFloat(f, 'g', -1, 64)
	}
	if reason := outOfRange(p, f); reason != "" {
		return slot{}, d.name + ": " + text + reason
	}
	return slot{s: text, form: formRaw}, ""
}

// outOfRange returns why f is outside p's range (" is out of range 1-10"),
// or "".
func outOfRange(p *decodo.Param, f float64) string {
	lo, hi := p.Min != nil && f < *p.Min, p.Max != nil && f > *p.Max
	switch {
	case !lo && !hi:
		return ""
	case p.Min != nil && p.Max != nil:
		return " is out of range " + fmtNum(*p.Min) + "-" + fmtNum(*p.Max)
	case lo:
		return " is less than " + fmtNum(*p.Min)
	}
	return " is more than " + fmtNum(*p.Max)
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// numbersSlot checks an array of numbers given as their texts: HTTP status
// codes for successful_status_codes, any numbers otherwise.
func numbersSlot(d *paramDef, p *decodo.Param, parts []string) (slot, string) {
	buf := []byte{'['}
	for i, s := range parts {
		s = strings.TrimSpace(s)
		if i > 0 {
			buf = append(buf, ',')
		}
		if d.extra == extraCodes {
			n, err := strconv.Atoi(s)
			if err != nil || n < 100 || n > 599 {
				return slot{}, d.name + ": want HTTP status codes (100-599), got " + quoteCap(s)
			}
			buf = strconv.AppendInt(buf, int64(n), 10)
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return slot{}, d.name + ": want " + typeName(d, p) + ", got " + quoteCap(s)
		}
		buf = strconv.AppendFloat(buf, f, 'g', -1, 64)
	}
	return slot{s: string(append(buf, ']')), form: formRaw}, ""
}

// stringSlot checks a non-empty string value for d as p defines it.
func stringSlot(d *paramDef, p *decodo.Param, v string) (slot, string) {
	if hasControl(v) {
		return slot{}, d.name + ": contains a control character: " + quoteCap(v)
	}
	if len(p.Enum) > 0 {
		for _, e := range p.Enum {
			if strings.EqualFold(v, e) {
				return slot{s: e}, ""
			}
		}
		return slot{}, fmt.Sprintf("%s: want one of %s, got %s", d.name, strings.Join(p.Enum, ", "), quoteCap(v))
	}
	switch d.extra {
	case extraURL:
		if reason := checkURL(v); reason != "" {
			return slot{}, d.name + ": " + reason
		}
	case extraBase64:
		if !isBase64(v) {
			return slot{}, d.name + ": not standard base64: " + quoteCap(v)
		}
	}
	return slot{s: v}, ""
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

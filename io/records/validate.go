package records

import (
	"math/bits"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/decodo-batch/decodo-batch/decodo"
)

// row is the fields of one input row before validation. The strings point
// into the row's text.
type row struct {
	in         [5]string // the input fields, by decodo.Input; in[InputNone] is unused
	filled     uint8     // bit i: in[i] is set
	target, id string
	params     paramSet // values as they came (formCell, formJSON) until finish checks them
}

func (v *row) reset() {
	v.in = [5]string{}
	v.filled = 0
	v.target, v.id = "", ""
	v.params.set = bitset{}
}

// setInput sets the input field in to s; "" is not set.
func (v *row) setInput(in decodo.Input, s string) {
	if s != "" {
		v.in[in] = s
		v.filled |= 1 << in
	}
}

// finish applies the rules every row follows, whatever its format, to v
// and fills rec: at most one input field, a target the table knows that
// takes that field, parameters the target takes with values it takes. It
// returns the reason the row is bad, or "".
func (r *Reader) finish(v *row, rec *Record) string {
	in := decodo.InputNone
	switch bits.OnesCount8(v.filled) {
	case 0:
	case 1:
		in = decodo.Input(bits.TrailingZeros8(v.filled))
	default:
		return manyInputs(v.filled)
	}
	target := v.target
	if target == "" {
		target = r.opt.DefaultTarget
	}
	if target == "" {
		switch in {
		case decodo.InputURL:
			target = "universal"
		case decodo.InputNone:
			return "row has no url, query, prompt or product_id"
		default:
			return in.String() + " row has no target (none in the row and no default target)"
		}
	}
	if target != r.lastTarget || r.lastInfo == nil {
		// Rows mostly repeat one target: skip the table lookup.
		ti, reason := r.space.target(target)
		if reason != "" {
			return reason
		}
		r.lastTarget, r.lastInfo = target, ti
	}
	ti := r.lastInfo
	if want := ti.t.Input; in != want {
		if in == decodo.InputNone {
			return "row has no " + want.String() + ", which target " + target + " takes"
		}
		return "target " + target + " takes " + article(want) + ", not " + article(in)
	}
	val := v.in[in]
	switch in {
	case decodo.InputURL:
		if reason := checkURL(val); reason != "" {
			return "url " + reason
		}
		rec.URL = val
	case decodo.InputQuery:
		if reason := checkQuery(val); reason != "" {
			return "query " + reason
		}
		rec.Query = val
	case decodo.InputPrompt:
		if reason := checkPrompt(val); reason != "" {
			return "prompt " + reason
		}
		rec.Prompt = val
	case decodo.InputProductID:
		if reason := checkProductID(val); reason != "" {
			return "product_id " + reason
		}
		rec.ProductID = val
	}
	if i, ok := v.params.set.firstNotIn(&ti.takes); ok {
		return ti.notTaken(r.space.defs[i].name, "")
	}
	if i, ok := r.defaults.set.firstNotIn(&ti.takes); ok {
		return ti.notTaken(r.space.defs[i].name, "; "+r.space.defs[i].name+" is a default parameter")
	}
	ps := &v.params
	for w := range ps.set {
		for m := ps.set[w]; m != 0; m &= m - 1 {
			i := w<<6 + bits.TrailingZeros64(m)
			s, reason := checkValue(&r.space.defs[i], ti.params[i], ps.slots[i])
			if reason != "" {
				return reason
			}
			ps.slots[i] = s
		}
	}
	rec.Target = target
	rec.ID = v.id
	rec.Params = r.params(ps)
	return ""
}

// manyInputs is the reason a row that fills more than one input field is
// bad.
func manyInputs(filled uint8) string {
	var names []string
	for in := decodo.InputURL; in <= decodo.InputProductID; in++ {
		if filled&(1<<in) != 0 {
			names = append(names, in.String())
		}
	}
	if len(names) == 2 {
		return "row has both " + names[0] + " and " + names[1]
	}
	return "row has " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1] + ": a row fills one"
}

// params returns the canonical Params of a row's checked parameters over
// the defaults. Equal texts are interned: rows repeat the same few
// parameter sets, and sharing one string saves an allocation per row and
// memory in every batch that holds them.
func (r *Reader) params(ps *paramSet) Params {
	if ps.set == (bitset{}) {
		return r.defParams
	}
	r.pbuf = appendParams(r.pbuf[:0], r.space.defs, ps, &r.defaults)
	if p, ok := r.intern[string(r.pbuf)]; ok {
		return p
	}
	p := Params(r.pbuf)
	if len(p) <= maxInternLen {
		if len(r.intern) >= maxInterned {
			clear(r.intern) // bounds memory on inputs where every row differs
		}
		r.intern[string(p)] = p
	}
	return p
}

const (
	maxInterned  = 4096
	maxInternLen = 1024
)

// checkURL returns why u is not an http(s) URL with a host that the API can
// take, or "". u is not empty.
func checkURL(u string) string {
	if len(u) > decodo.MaxURLLen {
		if n := utf8.RuneCountInString(u); n > decodo.MaxURLLen {
			return "is longer than " + strconv.Itoa(decodo.MaxURLLen) + " characters (" + strconv.Itoa(n) + ")"
		}
	}
	var i int
	switch {
	case len(u) >= 8 && (u[:8] == "https://" || strings.EqualFold(u[:8], "https://")):
		i = 8
	case len(u) >= 7 && (u[:7] == "http://" || strings.EqualFold(u[:7], "http://")):
		i = 7
	default:
		return "is not http(s): " + quoteCap(u)
	}
	// One pass over the rest: no space or control character, and the end
	// of the authority.
	hostStart, hostEnd := i, len(u)
	for ; i < len(u); i++ {
		c := u[i]
		switch {
		case c <= ' ' || c == 0x7f:
			return "contains a space or control character: " + quoteCap(u)
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(u[i:])
			if r == utf8.RuneError && size == 1 || unicode.IsSpace(r) || unicode.IsControl(r) {
				return "contains a space or control character: " + quoteCap(u)
			}
			i += size - 1
		case (c == '/' || c == '?' || c == '#') && hostEnd == len(u):
			hostEnd = i
		}
	}
	host := u[hostStart:hostEnd]
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	port := ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "has a bad IPv6 host: " + quoteCap(u)
		}
		port = host[end+1:]
		host = host[1:end]
		if port != "" && port[0] != ':' {
			return "has a bad host: " + quoteCap(u)
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host, port = host[:i], host[i:]
	}
	if host == "" {
		return "has no host: " + quoteCap(u)
	}
	for j := 1; j < len(port); j++ {
		if !isDigit(port[j]) {
			return "has a bad port: " + quoteCap(u)
		}
	}
	return ""
}

// checkQuery returns why q is not a query the API can take, or "".
func checkQuery(q string) string {
	if strings.TrimSpace(q) == "" {
		return "is blank"
	}
	if len(q) > decodo.MaxQueryLen {
		if n := utf8.RuneCountInString(q); n > decodo.MaxQueryLen {
			return "is longer than " + strconv.Itoa(decodo.MaxQueryLen) + " characters (" + strconv.Itoa(n) + ")"
		}
	}
	if hasControl(q) {
		return "contains a control character: " + quoteCap(q)
	}
	return ""
}

// checkPrompt returns why p is not a prompt the API can take, or "".
// Line breaks are part of a prompt.
func checkPrompt(p string) string {
	if strings.TrimSpace(p) == "" {
		return "is blank"
	}
	if len(p) > decodo.MaxPromptLen {
		if n := utf8.RuneCountInString(p); n > decodo.MaxPromptLen {
			return "is longer than " + strconv.Itoa(decodo.MaxPromptLen) + " characters (" + strconv.Itoa(n) + ")"
		}
	}
	return ""
}

// checkProductID returns why id is not a product id the API can take, or
// "".
func checkProductID(id string) string {
	if strings.TrimSpace(id) == "" {
		return "is blank"
	}
	if hasControl(id) {
		return "contains a control character: " + quoteCap(id)
	}
	return ""
}

// checkTarget returns why t cannot be a target name, or "", before the
// table is asked: a name of other characters is quoted in the reason.
func checkTarget(t string) string {
	if len(t) > 100 {
		return "target name is too long: " + quoteCap(t)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '_' || c == '-' || c == '.') {
			return "target is not a target name: " + quoteCap(t)
		}
	}
	return ""
}

// hasControl reports whether s holds an ASCII control character.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// quoteCap quotes s for a one-line reason, cut to a readable length.
func quoteCap(s string) string { return strconv.Quote(capString(s, 120)) }

// capString cuts s to at most n bytes on a rune boundary, marking the cut.
func capString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// capInput returns the raw row text for a RowError: at most maxInput bytes,
// cut on a rune boundary, without its line end.
func capInput(b []byte) string {
	if len(b) > maxInput {
		n := maxInput
		for n > maxInput-utf8.UTFMax && !utf8.RuneStart(b[n]) {
			n--
		}
		b = b[:n]
	}
	b = trimEOL(b)
	return string(b)
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

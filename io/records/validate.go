package records

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/decodo-batch/decodo-batch/decodo"
)

// row is the fields of one input row before validation. The strings point
// into the row's text.
type row struct {
	url, query, target, id string
	hasURL, hasQuery       bool
	params                 paramSet
}

func (v *row) reset() {
	v.url, v.query, v.target, v.id = "", "", "", ""
	v.hasURL, v.hasQuery = false, false
	v.params.set = 0
}

// finish applies the rules every row follows, whatever its format (exactly
// one of url and query, a target that takes it), to v and fills rec. It
// returns the reason the row is bad, or "".
func (r *Reader) finish(v *row, rec *Record) string {
	switch {
	case v.hasURL && v.hasQuery:
		return "row has both url and query"
	case !v.hasURL && !v.hasQuery:
		return "row has neither url nor query"
	}
	target := v.target
	if target == "" {
		target = r.opt.DefaultTarget
	} else if reason := checkTarget(target); reason != "" {
		return reason
	}
	if target != r.lastTarget {
		// Rows mostly repeat one target: skip the table lookup.
		r.lastTarget, r.lastKind = target, decodo.TargetKind(target)
	}
	kind := r.lastKind
	if v.hasURL {
		if reason := checkURL(v.url); reason != "" {
			return "url " + reason
		}
		if target == "" {
			target = "universal"
		} else if kind == decodo.KindQuery {
			return "target " + target + " takes a query, not a url"
		}
		rec.URL = v.url
	} else {
		if reason := checkQuery(v.query); reason != "" {
			return "query " + reason
		}
		if target == "" {
			return "query row has no target (none in the row and no --target)"
		}
		if kind == decodo.KindURL {
			return "target " + target + " takes a url, not a query"
		}
		rec.Query = v.query
	}
	rec.Target = target
	rec.ID = v.id
	rec.Params = r.params(&v.params)
	return ""
}

// params returns the canonical Params of a row's parameters over the
// defaults. Equal texts are interned: rows repeat the same few parameter
// sets, and sharing one string saves an allocation per row and memory in
// every batch that holds them.
func (r *Reader) params(ps *paramSet) Params {
	if ps.set == 0 {
		return r.defParams
	}
	r.pbuf = appendParams(r.pbuf[:0], ps, &r.defaults)
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

// checkTarget returns why t cannot be a target name, or "". A name the
// target table does not know passes: the API decides.
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

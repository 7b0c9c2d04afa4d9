package records

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/jsonstr"
)

// A reader knows a set of parameter names, its space: every parameter some
// target of decodo's table takes, and the names Options.AllowParams adds.
// The names are sorted and numbered, so that a row's parameters are a
// bitset and a slice of values, and walking the set bits in order writes
// a Params' keys in canonical order without sorting anything per row.

// maxParams bounds the names of a space: the table's and the allowed ones.
const maxParams = 256

// bitset is a set of indexes in a space.
type bitset [maxParams / 64]uint64

func (b *bitset) add(i int)      { b[i>>6] |= 1 << (i & 63) }
func (b *bitset) has(i int) bool { return b[i>>6]&(1<<(i&63)) != 0 }
func (b *bitset) or(c *bitset) (u bitset) {
	for w := range b {
		u[w] = b[w] | c[w]
	}
	return u
}

// firstNotIn returns the lowest index in b and not in c, if there is one.
func (b *bitset) firstNotIn(c *bitset) (int, bool) {
	for w := range b {
		if m := b[w] &^ c[w]; m != 0 {
			return w<<6 + bits.TrailingZeros64(m), true
		}
	}
	return 0, false
}

// paramDef is one parameter name a space knows.
type paramDef struct {
	name   string
	prefix string // the name as a JSON string and a colon, written before the value in a Params
	// param is the parameter as the targets that take it define it (they
	// agree: the table defines each name once); nil for a name only
	// allowed.
	param   *decodo.Param
	allowed bool // passes unchecked for every target (Options.AllowParams)
	extra   extraCheck
}

// extraCheck is a check some parameters get beyond their type in the
// table, for values the API cannot use whatever the schema says.
type extraCheck uint8

const (
	extraNone   extraCheck = iota
	extraURL               // an http(s) URL the API can call back
	extraBase64            // standard base64 (the body of a request)
	extraCodes             // HTTP status codes, 100-599
)

var extraChecks = map[string]extraCheck{
	"callback_url":            extraURL,
	"payload":                 extraBase64,
	"successful_status_codes": extraCodes,
}

// targetInfo is a target as a space sees it.
type targetInfo struct {
	t     *decodo.Target
	takes bitset // the target's parameters, and the allowed names
	// params holds the target's definition of each parameter it takes,
	// by index in the space; nil where it takes none.
	params []*decodo.Param
}

// space is the parameter names a reader knows, and the targets.
type space struct {
	defs    []paramDef
	index   map[string]int // a name (or the alias passtrough) to its index in defs
	targets map[string]*targetInfo
	// names is every name a CSV column or JSONL key may have, sorted, for
	// "did you mean".
	names []string
}

// The keys of a row that are neither a parameter nor an input field.
const (
	keyTarget = "target"
	keyID     = "id"
)

// inputFields maps the name of each input field to it.
var inputFields = map[string]decodo.Input{
	"url":        decodo.InputURL,
	"query":      decodo.InputQuery,
	"prompt":     decodo.InputPrompt,
	"product_id": decodo.InputProductID,
}

// The API's documentation spells passthrough "passtrough" in places;
// rows and flags that copy it mean passthrough.
const (
	passthrough = "passthrough"
	passtrough  = "passtrough"
)

// targetNames are the names of every target, sorted.
var targetNames = func() []string {
	var names []string
	for _, t := range decodo.Targets() {
		names = append(names, t.Name)
	}
	return names
}()

// known is the space of a reader without allowed names.
var known = func() *space {
	sp, err := newSpace(nil)
	if err != nil {
		panic("records: " + err.Error())
	}
	return sp
}()

// newSpace returns the space of decodo's table and the allowed names. It
// returns an error naming an allowed name that cannot be a parameter.
func newSpace(allow []string) (*space, error) {
	byName := make(map[string]*paramDef)
	for _, t := range decodo.Targets() {
		for i := range t.Params {
			p := &t.Params[i]
			if _, ok := byName[p.Name]; !ok {
				byName[p.Name] = &paramDef{name: p.Name, param: p, extra: extraChecks[p.Name]}
			}
		}
	}
	for _, name := range allow {
		name, err := allowedName(name)
		if err != nil {
			return nil, err
		}
		if d, ok := byName[name]; ok {
			d.allowed = true
		} else {
			byName[name] = &paramDef{name: name, allowed: true}
		}
	}
	if len(byName) > maxParams {
		return nil, fmt.Errorf("%d parameter names, with the allowed ones; at most %d", len(byName), maxParams)
	}
	sp := &space{index: make(map[string]int, len(byName)+1), targets: make(map[string]*targetInfo)}
	for _, d := range byName {
		sp.defs = append(sp.defs, *d)
	}
	slices.SortFunc(sp.defs, func(a, b paramDef) int { return strings.Compare(a.name, b.name) })
	var allowed bitset
	for i := range sp.defs {
		d := &sp.defs[i]
		d.prefix = string(append(jsonstr.Append(nil, d.name), ':'))
		sp.index[d.name] = i
		sp.names = append(sp.names, d.name)
		if d.allowed {
			allowed.add(i)
		}
	}
	if i, ok := sp.index[passthrough]; ok {
		if _, taken := sp.index[passtrough]; !taken {
			sp.index[passtrough] = i
		}
	}
	for name := range inputFields {
		sp.names = append(sp.names, name)
	}
	sp.names = append(sp.names, keyTarget, keyID)
	slices.Sort(sp.names)
	for _, t := range decodo.Targets() {
		ti := &targetInfo{t: t, takes: allowed, params: make([]*decodo.Param, len(sp.defs))}
		for i := range t.Params {
			j := sp.index[t.Params[i].Name]
			ti.params[j] = &t.Params[i]
			ti.takes.add(j)
		}
		sp.targets[t.Name] = ti
	}
	return sp, nil
}

// allowedName returns the name of an allowed parameter as rows write it,
// or why it cannot be one.
func allowedName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", fmt.Errorf("allowed parameter: empty name")
	case name == keyTarget || name == keyID:
		return "", fmt.Errorf("allowed parameter %s: not a parameter", name)
	case inputFields[name] != decodo.InputNone:
		return "", fmt.Errorf("allowed parameter %s: an input field, not a parameter", name)
	case name == passtrough:
		return passthrough, nil
	}
	for _, c := range name {
		if c <= ' ' || c == 0x7f || c == '"' || c == ',' {
			return "", fmt.Errorf("allowed parameter %q: a name has no spaces, control characters, quotes or commas", name)
		}
	}
	return name, nil
}

// target returns the target called name, or why a row cannot have it.
func (sp *space) target(name string) (*targetInfo, string) {
	if reason := checkTarget(name); reason != "" {
		return nil, reason
	}
	ti, ok := sp.targets[name]
	if !ok {
		return nil, "unknown target " + quoteCap(name) + didYouMean(decodo.Nearest(name, targetNames))
	}
	return ti, ""
}

// notTaken is the reason a row is bad when its target does not take the
// parameter name: it names the nearest one the target takes, or lists
// them when none is near; from, if not "", says where the name came from.
func (ti *targetInfo) notTaken(name, from string) string {
	names := ti.t.ParamNames()
	hint := didYouMean(decodo.Nearest(name, names))
	if hint == "" {
		hint = " (it takes " + strings.Join(names, ", ") + ")"
	}
	return "target " + ti.t.Name + " does not take " + name + hint + from
}

// didYouMean is " (did you mean name?)", or "" for no name.
func didYouMean(name string) string {
	if name == "" {
		return ""
	}
	return " (did you mean " + name + "?)"
}

// article names an input field with its article: "a url", "a product_id",
// "no input".
func article(in decodo.Input) string {
	if in == decodo.InputNone {
		return "no input"
	}
	return "a " + in.String()
}

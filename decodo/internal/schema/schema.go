// Package schema is the table of the Decodo Scraper API's targets: the input
// field each takes and the parameters it accepts, with their types, enums
// and ranges. Package decodo exports it (as [decodo.Target] and friends);
// it lives here so that the simulated API in decodo/sandbox can check
// requests against the same table without importing the client, whose
// tests import the sandbox.
package schema

import (
	"slices"
	"strconv"
	"strings"
)

// Input is the field of a task that holds what is scraped.
type Input uint8

// The input fields.
const (
	InputNone      Input = iota // the target takes no input field (universal_ecommerce)
	InputURL                    // "url"
	InputQuery                  // "query"
	InputPrompt                 // "prompt"
	InputProductID              // "product_id"
)

// Lengths, in characters, the schemas allow an input.
const (
	MaxURLLen    = 2056
	MaxQueryLen  = 2048
	MaxPromptLen = 8192
)

// String returns the field's JSON key: "url", "query", "prompt",
// "product_id", or "none" for [InputNone].
func (i Input) String() string {
	switch i {
	case InputURL:
		return "url"
	case InputQuery:
		return "query"
	case InputPrompt:
		return "prompt"
	case InputProductID:
		return "product_id"
	}
	return "none"
}

// Batchable reports whether tasks of this input can be queued by POST
// /v3/task/batch, which takes only a "url" or a "query" array. The others
// go one task per POST /v3/task.
func (i Input) Batchable() bool { return i == InputURL || i == InputQuery }

// MaxLen returns the most characters the schemas allow the input: 2056 for
// a url, 2048 for a query, 8192 for a prompt, and 0 when no limit is known
// (product_id, none).
func (i Input) MaxLen() int {
	switch i {
	case InputURL:
		return MaxURLLen
	case InputQuery:
		return MaxQueryLen
	case InputPrompt:
		return MaxPromptLen
	}
	return 0
}

// ParamType is the JSON type of a parameter's value.
type ParamType uint8

// The parameter types of the schemas.
const (
	ParamString ParamType = iota // a JSON string
	ParamBool                    // true or false
	ParamNumber                  // a JSON number
	ParamObject                  // a JSON object (headers, cookies)
	ParamArray                   // a JSON array of numbers (successful_status_codes)
)

// String returns the JSON Schema name of the type: "string", "boolean",
// "number", "object" or "array".
func (t ParamType) String() string {
	switch t {
	case ParamBool:
		return "boolean"
	case ParamNumber:
		return "number"
	case ParamObject:
		return "object"
	case ParamArray:
		return "array"
	}
	return "string"
}

// Param is one parameter a target accepts.
type Param struct {
	Name string
	Type ParamType
	// Enum lists the allowed values of a string, if the schema lists them.
	Enum []string
	// Min and Max bound a number, if the schema bounds it.
	Min, Max *float64
	// Integer says the number must be whole. The schemas say only
	// "number" for page_from, page_count, limit, adults and children; the
	// API's own documentation gives them as integers.
	Integer bool
}

// Rule says in words what values p takes, for error messages: "true or
// false", "a whole number from 1 to 10", "one of html, png"...
func (p *Param) Rule() string {
	switch p.Type {
	case ParamBool:
		return "true or false"
	case ParamObject:
		return "a JSON object"
	case ParamArray:
		return "an array of numbers"
	case ParamNumber:
		kind := "a number"
		if p.Integer {
			kind = "a whole number"
		}
		switch {
		case p.Min != nil && p.Max != nil:
			return kind + " from " + fmtNum(*p.Min) + " to " + fmtNum(*p.Max)
		case p.Min != nil:
			return kind + " of at least " + fmtNum(*p.Min)
		case p.Max != nil:
			return kind + " of at most " + fmtNum(*p.Max)
		}
		return kind
	}
	if len(p.Enum) > 0 {
		return "one of " + strings.Join(p.Enum, ", ")
	}
	return "a string"
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// Target is one target of the API: its name, the input field it takes and
// the parameters it accepts.
type Target struct {
	Name  string
	Input Input
	// Params is sorted by name. It holds neither "target" nor the input
	// field; it holds callback_url and passthrough, which every target
	// takes. Shared: do not modify.
	Params []Param
}

// Param returns the parameter called name, if t takes it.
func (t *Target) Param(name string) (*Param, bool) {
	i, ok := slices.BinarySearchFunc(t.Params, name, func(p Param, name string) int { return strings.Compare(p.Name, name) })
	if !ok {
		return nil, false
	}
	return &t.Params[i], true
}

// ParamNames returns the names of t's parameters, sorted.
func (t *Target) ParamNames() []string {
	names := make([]string, len(t.Params))
	for i := range t.Params {
		names[i] = t.Params[i].Name
	}
	return names
}

// Lookup returns the target called name. The returned target is shared: do
// not modify it.
func Lookup(name string) (*Target, bool) {
	t, ok := byName[name]
	return t, ok
}

// Targets returns every target, sorted by name. The slice is the caller's;
// the targets are shared.
func Targets() []*Target { return slices.Clone(all) }

// Nearest returns the known name closest to name (edit distance, ignoring
// case, a swap of two neighbouring letters counting as one edit), for "did
// you mean" messages; "" if none is close enough: at most one edit for
// every three characters of name, and at least one. Ties go to the name
// that sorts first.
func Nearest(name string, known []string) string {
	if name == "" {
		return ""
	}
	a := []rune(strings.ToLower(name))
	limit := max(1, len(a)/3)
	best, bestD := "", limit+1
	for _, k := range known {
		if k == "" {
			continue
		}
		d := distance(a, []rune(strings.ToLower(k)), bestD)
		if d < bestD || (d == bestD && d <= limit && k < best) {
			best, bestD = k, d
		}
	}
	if bestD > limit {
		return ""
	}
	return best
}

// distance returns the optimal string alignment distance of a and b
// (insertions, deletions, substitutions and swaps of neighbours), or a
// number >= bound once it is sure to be at least bound.
func distance(a, b []rune, bound int) int {
	if d := len(a) - len(b); d >= bound || -d >= bound {
		return bound
	}
	// Three rows: two back for the swap, one back, this one.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin >= bound {
			return bound
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

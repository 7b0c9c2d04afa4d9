package decodo

import "github.com/decodo-batch/decodo-batch/decodo/internal/schema"

// The target table lives in package schema, so that the sandbox (which
// this package's tests import) can check requests against it too; these
// aliases are its public face.

// Input is the field of a task that holds what is scraped.
type Input = schema.Input

// The input fields.
const (
	InputNone      = schema.InputNone      // the target takes no input field (universal_ecommerce)
	InputURL       = schema.InputURL       // "url"
	InputQuery     = schema.InputQuery     // "query"
	InputPrompt    = schema.InputPrompt    // "prompt"
	InputProductID = schema.InputProductID // "product_id"
)

// ParamType is the JSON type of a parameter's value.
type ParamType = schema.ParamType

// The parameter types.
const (
	ParamString = schema.ParamString // a JSON string
	ParamBool   = schema.ParamBool   // true or false
	ParamNumber = schema.ParamNumber // a JSON number
	ParamObject = schema.ParamObject // a JSON object (headers, cookies)
	ParamArray  = schema.ParamArray  // a JSON array of numbers (successful_status_codes)
)

// Param is one parameter a target accepts: its name, type, and the enum or
// range the official SDK's schema gives it.
type Param = schema.Param

// Target is one target of the API: its name, the [Input] it takes and its
// parameters (sorted by name; without "target" and the input field; with
// callback_url and passthrough).
type Target = schema.Target

// LookupTarget returns the target called name, from the official SDK's
// table of 52 targets, and whether it exists. The target is shared: do not
// modify it.
func LookupTarget(name string) (*Target, bool) { return schema.Lookup(name) }

// Targets returns every target, sorted by name.
func Targets() []*Target { return schema.Targets() }

// Nearest returns the known name closest to name (edit distance), for "did
// you mean" messages; "" if none is close enough.
func Nearest(name string, known []string) string { return schema.Nearest(name, known) }

// Limits of the API: items in one batch, and the length in characters of a
// url, a query or a prompt.
const (
	MaxBatchItems = 3000
	MaxURLLen     = schema.MaxURLLen
	MaxQueryLen   = schema.MaxQueryLen
	MaxPromptLen  = schema.MaxPromptLen
)

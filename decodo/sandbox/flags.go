package sandbox

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// RegisterFlags defines a flag on fs for every knob of c, with c's current
// values as defaults, so a caller sets its own defaults first:
//
//	--token T (repeatable)  --batch-interval  --max-items  --delay
//	--fault-rate  --fault-mode no-content|error  --ttl  --error-rate
//	--drop-rate  --get-429-rate  --batch-latency  --content-size  --content-kind
//	--target-error-rate  --page-error-rate  --array-response
//	--allow-unknown-params  --indent-answers  --truncate-batch-rate
//	--batch-500-after-create-rate  --callback-loss-rate  --callback-dup-rate
//	--callback-delay  --seed
//
// Rates are fractions in [0, 1]; --delay takes the syntax of [ParseDelay].
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var((*tokensValue)(&c.Tokens), "token", "a Basic token the sandbox accepts (repeatable; none: any non-empty token)")
	fs.DurationVar(&c.BatchInterval, "batch-interval", c.BatchInterval, "least time between two accepted batches per token (0: 1s, negative: no limit)")
	fs.IntVar(&c.MaxItems, "max-items", c.MaxItems, "most items in one batch (0: 3000)")
	fs.Var((*delayValue)(&c.Delay), "delay", `how long a task stays pending: a duration, "uniform:1s-5s" or "lognormal:6s,0.6,1s-60s"`)
	fs.Var((*rateValue)(&c.FaultRate), "fault-rate", "fraction of tasks that end faulted")
	fs.Var((*faultModeValue)(&c.FaultMode), "fault-mode", `what /results answers for a faulted task: "no-content" (204 forever) or "error" (a 400 or 500)`)
	fs.DurationVar(&c.TTL, "ttl", c.TTL, "how long tasks and results are kept after creation (0: 24h, negative: forever)")
	fs.Var((*rateValue)(&c.ErrorRate), "error-rate", "fraction of requests answered 500, 502 or 503")
	fs.Var((*rateValue)(&c.DropRate), "drop-rate", "fraction of requests whose connection is dropped without an answer")
	fs.Var((*rateValue)(&c.GetLimitRate), "get-429-rate", "fraction of GET requests answered 429")
	fs.DurationVar(&c.BatchLatency, "batch-latency", c.BatchLatency, "how long a batch submission takes to answer")
	fs.IntVar(&c.ContentSize, "content-size", c.ContentSize, "bytes of generated content per result (0: 1024)")
	fs.Var((*kindValue)(&c.ContentKind), "content-kind", `what HTML content looks like: "text" (padded lorem ipsum) or "html" (like real pages, compressing 5-8x)`)
	fs.Var((*rateValue)(&c.TargetErrorRate), "target-error-rate", "fraction of done tasks whose target answered 404 or 500")
	fs.Var((*rateValue)(&c.PageErrorRate), "page-error-rate", "fraction of the pages of done tasks with page_count > 1 whose target answered 404 or 500")
	fs.BoolVar(&c.ArrayResponse, "array-response", c.ArrayResponse, "answer batches with a bare array of tasks instead of the SDK object form")
	fs.BoolVar(&c.AllowUnknownParams, "allow-unknown-params", c.AllowUnknownParams, "accept parameters the target's table does not list (default: 400 naming them), as the real API may for newer ones")
	fs.BoolVar(&c.IndentAnswers, "indent-answers", c.IndentAnswers, "pretty-print every JSON answer over several lines, parsed contents included")
	fs.Var((*rateValue)(&c.TruncateBatchRate), "truncate-batch-rate", "fraction of accepted batches whose tasks are created but whose 200 answer is cut in the middle")
	fs.Var((*rateValue)(&c.Batch500AfterCreateRate), "batch-500-after-create-rate", "fraction of accepted batches whose tasks are created but which are answered 500")
	fs.Var((*rateValue)(&c.CallbackLossRate), "callback-loss-rate", "fraction of callbacks never made")
	fs.Var((*rateValue)(&c.CallbackDupRate), "callback-dup-rate", "fraction of callbacks made twice")
	fs.DurationVar(&c.CallbackDelay, "callback-delay", c.CallbackDelay, "each callback comes up to this long after its task completed (random, so out of order)")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "seed of the random delays and faults (same seed, same submissions: same run)")
}

type kindValue string

func (v *kindValue) String() string {
	if v == nil || *v == "" {
		return ContentText
	}
	return string(*v)
}

func (v *kindValue) Set(s string) error {
	if s != ContentText && s != ContentHTML {
		return fmt.Errorf(`want "text" or "html", got %q`, s)
	}
	*v = kindValue(s)
	return nil
}

type tokensValue []string

func (v *tokensValue) String() string {
	if v == nil || len(*v) == 0 {
		return ""
	}
	// Tokens are secrets of a sort; say how many, not which.
	return strconv.Itoa(len(*v)) + " token(s)"
}

func (v *tokensValue) Set(s string) error {
	if s == "" {
		return fmt.Errorf("empty token")
	}
	*v = append(*v, s)
	return nil
}

type delayValue Delay

func (v *delayValue) String() string {
	if v == nil {
		return ""
	}
	return Delay(*v).String()
}

func (v *delayValue) Set(s string) error {
	d, err := ParseDelay(s)
	if err != nil {
		return err
	}
	*v = delayValue(d)
	return nil
}

type rateValue float64

func (v *rateValue) String() string {
	if v == nil {
		return "0"
	}
	return strconv.FormatFloat(float64(*v), 'g', -1, 64)
}

func (v *rateValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0 && f <= 1) {
		return fmt.Errorf("want a fraction between 0 and 1, got %q", s)
	}
	*v = rateValue(f)
	return nil
}

type faultModeValue FaultMode

func (v *faultModeValue) String() string {
	if v == nil {
		return FaultNoContent.String()
	}
	return FaultMode(*v).String()
}

func (v *faultModeValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "no-content", "nocontent", "204":
		*v = faultModeValue(FaultNoContent)
	case "error":
		*v = faultModeValue(FaultError)
	default:
		return fmt.Errorf(`want "no-content" or "error", got %q`, s)
	}
	return nil
}

package sandbox

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// DelayKind says how a [Delay] draws the time a task stays pending.
type DelayKind uint8

// The kinds of [Delay].
const (
	Fixed     DelayKind = iota // every task takes Delay.Fixed
	Uniform                    // uniform in [Delay.Min, Delay.Max]
	LogNormal                  // Delay.Median * exp(Delay.Sigma * N(0,1)), clipped to [Min, Max] where set
)

// String returns "fixed", "uniform" or "lognormal".
func (k DelayKind) String() string {
	switch k {
	case Fixed:
		return "fixed"
	case Uniform:
		return "uniform"
	case LogNormal:
		return "lognormal"
	}
	return "DelayKind(" + strconv.Itoa(int(k)) + ")"
}

// Delay is the distribution of the time between a task's creation and its
// completion. The zero Delay completes every task at once.
type Delay struct {
	Kind   DelayKind
	Fixed  time.Duration // Fixed
	Min    time.Duration // Uniform: lower bound; LogNormal: lower clip when > 0
	Max    time.Duration // Uniform: upper bound; LogNormal: upper clip when > 0
	Median time.Duration // LogNormal
	Sigma  float64       // LogNormal: standard deviation of the underlying normal
}

// String returns d in the syntax [ParseDelay] reads.
func (d Delay) String() string {
	switch d.Kind {
	case Uniform:
		return "uniform:" + d.Min.String() + "-" + d.Max.String()
	case LogNormal:
		s := "lognormal:" + d.Median.String() + "," + strconv.FormatFloat(d.Sigma, 'g', -1, 64)
		if d.Min > 0 || d.Max > 0 {
			s += "," + d.Min.String() + "-" + d.Max.String()
		}
		return s
	}
	return d.Fixed.String()
}

// sample draws one delay. The caller holds the lock that guards r.
func (d Delay) sample(r *rand.Rand) time.Duration {
	switch d.Kind {
	case Uniform:
		if d.Max <= d.Min {
			return d.Min
		}
		return d.Min + time.Duration(r.Int64N(int64(d.Max-d.Min)+1))
	case LogNormal:
		f := float64(d.Median) * math.Exp(d.Sigma*r.NormFloat64())
		// Guard the conversion: a float beyond int64 converts to an
		// implementation-defined value.
		v := time.Duration(math.MaxInt64 / 2)
		if f < float64(v) {
			v = time.Duration(f)
		}
		if d.Min > 0 && v < d.Min {
			v = d.Min
		}
		if d.Max > 0 && v > d.Max {
			v = d.Max
		}
		return v
	}
	return d.Fixed
}

// ErrDelay is wrapped by every error of [ParseDelay].
var ErrDelay = errors.New("invalid delay")

// ParseDelay reads a [Delay]:
//
//	5s                        fixed (also "fixed:5s")
//	uniform:1s-5s             uniform between 1s and 5s
//	lognormal:6s,0.6          median 6s, sigma 0.6
//	lognormal:6s,0.6,1s-60s   the same, clipped to [1s, 60s]
//
// Durations are those of [time.ParseDuration] and may not be negative. The
// error wraps [ErrDelay].
func ParseDelay(s string) (Delay, error) {
	bad := func(format string, args ...any) (Delay, error) {
		return Delay{}, fmt.Errorf("%w %q: %s", ErrDelay, s, fmt.Sprintf(format, args...))
	}
	kind, spec, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		kind, spec = "fixed", kind
	}
	switch strings.ToLower(kind) {
	case "fixed":
		d, err := parseDuration(spec)
		if err != nil {
			return bad("%v", err)
		}
		return Delay{Kind: Fixed, Fixed: d}, nil
	case "uniform":
		lo, hi, err := parseRange(spec)
		if err != nil {
			return bad("%v", err)
		}
		return Delay{Kind: Uniform, Min: lo, Max: hi}, nil
	case "lognormal":
		parts := strings.Split(spec, ",")
		if len(parts) != 2 && len(parts) != 3 {
			return bad("want lognormal:MEDIAN,SIGMA or lognormal:MEDIAN,SIGMA,MIN-MAX")
		}
		median, err := parseDuration(parts[0])
		if err != nil {
			return bad("median: %v", err)
		}
		if median == 0 {
			return bad("median must be positive")
		}
		sigma, err := strconv.ParseFloat(strings.TrimSpace(parts[1]), 64)
		if err != nil || sigma < 0 || math.IsInf(sigma, 0) || math.IsNaN(sigma) {
			return bad("sigma must be a number >= 0")
		}
		d := Delay{Kind: LogNormal, Median: median, Sigma: sigma}
		if len(parts) == 3 {
			if d.Min, d.Max, err = parseRange(parts[2]); err != nil {
				return bad("clip: %v", err)
			}
		}
		return d, nil
	}
	return bad("unknown kind %q (want fixed, uniform or lognormal)", kind)
}

// parseRange reads "MIN-MAX" with MIN <= MAX.
func parseRange(s string) (lo, hi time.Duration, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, errors.New("want MIN-MAX")
	}
	if lo, err = parseDuration(a); err != nil {
		return 0, 0, err
	}
	if hi, err = parseDuration(b); err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("max %v is below min %v", hi, lo)
	}
	return lo, hi, nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("missing duration")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %v", d)
	}
	return d, nil
}

package results

import (
	"fmt"
	"strconv"
	"strings"
)

// sizeUnits are the suffixes ParseSize knows, longest first: KB, MB, GB
// are powers of 1000 and K, M, G, KiB, MiB, GiB powers of 1024, as GNU
// split reads them.
var sizeUnits = []struct {
	suffix string
	n      int64
}{
	{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

// ParseSize parses a size in bytes: a whole number with an optional unit
// (B; KB, MB, GB, TB in powers of 1000; K, M, G, T or KiB, MiB, GiB, TiB in
// powers of 1024), any case. It returns an error for anything else, and
// for a size that is not positive or does not fit in an int64.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<63-1)/mult {
		return 0, fmt.Errorf("want a positive size such as 512MB, 64KB or 1048576, not %q", s)
	}
	return n * mult, nil
}

// FormatSize writes n in the largest unit of 1000 that divides it exactly,
// as ParseSize reads it back.
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}} {
		if n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

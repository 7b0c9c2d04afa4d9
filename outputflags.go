package main

import (
	"fmt"
	"os"

	"github.com/decodo-batch/decodo-batch/io/results"
)

// compressFlag is --compress: alone it means gzip, and --compress=gzip or
// --compress=zstd names the codec. Being a bool flag to the flag package,
// it never takes the next argument: see [compressTypo].
type compressFlag struct{ codec string }

func (c *compressFlag) String() string { return c.codec }

func (c *compressFlag) IsBoolFlag() bool { return true }

func (c *compressFlag) Set(v string) error {
	switch v {
	case "true", results.Gzip:
		c.codec = results.Gzip
	case results.Zstd:
		c.codec = results.Zstd
	case "false", "":
		c.codec = ""
	default:
		return fmt.Errorf("want gzip or zstd, not %q", v)
	}
	return nil
}

// sizeFlag is a size such as 512MB, 64KB, 1GiB or 1000000 (bytes).
type sizeFlag int64

func (s *sizeFlag) String() string {
	if s == nil || *s == 0 {
		return ""
	}
	return results.FormatSize(int64(*s))
}

func (s *sizeFlag) Set(v string) error {
	n, err := results.ParseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

// compressTypo returns a usage error when --compress was followed by its
// codec as a separate argument ("--compress zstd in.csv"), which the flag
// package reads as --compress (gzip) and an INPUT named zstd: an INPUT
// named gzip or zstd that is not a file.
func compressTypo(set bool, pos []string) error {
	if !set || len(pos) == 0 {
		return nil
	}
	if p := pos[0]; p == results.Gzip || p == results.Zstd {
		if _, err := os.Stat(p); err != nil {
			return usagef("--compress takes its codec after an equals sign: --compress=%s (%q is no INPUT file)", p, p)
		}
	}
	return nil
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOutputFlags proves --compress reads alone as gzip and with "=" as
// the codec named, --rotate-size reads sizes, and the mistakes are usage
// errors (exit 2) that say what to write: "--compress zstd" with a space
// (which the flag package would read as gzip and an INPUT named zstd), an
// unknown codec, a bad size.
func TestOutputFlags(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args       []string
		codec      string
		rotate     int64
		contentDir bool
	}{
		{[]string{"--compress"}, "gzip", 0, false},
		{[]string{"--compress=gzip"}, "gzip", 0, false},
		{[]string{"--compress=zstd", "--content-dir"}, "zstd", 0, true},
		{[]string{"--rotate-size", "512MB"}, "", 512e6, false},
		{[]string{"--rotate-size=64KiB", "--compress=false"}, "", 64 << 10, false},
	} {
		var f runFlags
		fs := runFlagSet(&f, &bytes.Buffer{})
		if err := fs.Parse(append(tt.args, "in.csv")); err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if f.compress.codec != tt.codec || int64(f.rotateSize) != tt.rotate || f.contentDir != tt.contentDir || fs.Arg(0) != "in.csv" {
			t.Errorf("%q: codec %q, rotate %d, content-dir %v, args %q", tt.args, f.compress.codec, f.rotateSize, f.contentDir, fs.Args())
		}
	}

	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte("https://example.com/\n"), 0o644)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--compress", "zstd", in, "-o", filepath.Join(dir, "out")}, "--compress=zstd"},
		{[]string{"run", "-o", filepath.Join(dir, "out"), "--compress", "gzip"}, "--compress=gzip"},
		{[]string{"run", "--compress=bz2", in, "-o", filepath.Join(dir, "out")}, "want gzip or zstd"},
		{[]string{"run", "--rotate-size", "5XB", in, "-o", filepath.Join(dir, "out")}, "512MB"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, &stdout, &stderr)
		if code := exitCode(err); code != exitUsage || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: exit %d, %v; want exit %d saying %q", tt.args, code, err, exitUsage, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("a usage error created OUT")
	}
}

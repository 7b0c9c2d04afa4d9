package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sandboxFast are the flags of a quick run against the in-process sandbox.
var sandboxFast = []string{"--sandbox", "--sandbox-args", "--delay uniform:10ms-100ms --batch-interval 20ms", "--batch-interval", "20ms"}

// runBinary runs the binary with stdin, and returns its exit code and
// stderr.
func runBinary(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildBinary(t), args...)
	cmd.Stdin = strings.NewReader(stdin) // a pipe
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// TestStdinAndFormatDetection proves INPUT defaults to a piped stdin, and
// the format of stdin, or of a file whose name does not tell it, comes
// from the content.
func TestStdinAndFormatDetection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary; skipped with -short")
	}
	t.Parallel()
	dir := t.TempDir()
	noExt := filepath.Join(dir, "queries")
	os.WriteFile(noExt, []byte("query,target\nshoes,google_search\nboots,google_search\n"), 0o644)
	for _, tt := range []struct {
		name, stdin string
		args        []string
		results     int
	}{
		{"txt piped, no INPUT", "https://example.com/1\n# a comment\nhttps://example.com/2\n", nil, 2},
		{"jsonl piped as -", "{\"url\":\"https://example.com/1\"}\n{\"query\":\"x\",\"target\":\"google_search\"}\n", []string{"-"}, 2},
		{"csv piped", "url,geo\nhttps://example.com/1,US\n", nil, 1},
		{"a file with no extension", "", []string{noExt}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "out")
			args := append(append([]string{"run", "-o", out, "--progress", "none"}, sandboxFast...), tt.args...)
			code, stderr := runBinary(t, tt.stdin, args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if n := countLines(t, filepath.Join(out, "results.jsonl")); n != tt.results {
				t.Errorf("%d results, want %d", n, tt.results)
			}
		})
	}
	t.Run("no INPUT, stdin not a pipe", func(t *testing.T) {
		t.Parallel()
		cmd := exec.Command(buildBinary(t), "run", "-o", filepath.Join(t.TempDir(), "out"), "--sandbox") // stdin: /dev/null
		stderr, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != exitUsage || !strings.Contains(string(stderr), "run takes one INPUT") {
			t.Errorf("exit %d, want 2 asking for INPUT: %s", cmd.ProcessState.ExitCode(), stderr)
		}
	})
	t.Run("empty stdin", func(t *testing.T) {
		t.Parallel()
		code, stderr := runBinary(t, "", append([]string{"run", "-o", filepath.Join(t.TempDir(), "out")}, sandboxFast...)...)
		if code != exitFatal || !strings.Contains(stderr, "stdin: the input has no rows") {
			t.Errorf("exit %d, want 1 saying stdin has no rows: %s", code, stderr)
		}
	})
}

// TestInputErrors proves an empty file, a header alone and a CSV without
// a header each get their own error naming the file, exit 1, before any
// output exists.
func TestInputErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct{ name, text, want string }{
		{"empty.csv", "", "empty.csv: the input has no rows: it is empty"},
		{"blank.txt", "\n\n# nothing yet\n", "blank.txt: the input has no rows: it is empty, or holds only blank and comment lines"},
		{"header.csv", "url,geo\n", "header.csv: the input has no rows: it has a header line and nothing after it"},
		{"noheader.csv", "https://example.com/1,US\nhttps://example.com/2,DE\n", `noheader.csv: the CSV has no header line: its first line "https://example.com/1,US" is data`},
		{"empty.jsonl.gz", "", "empty.jsonl.gz: the input has no rows"},
		{"adir", "", "is a directory"},
	} {
		in := filepath.Join(dir, tt.name)
		if tt.name == "adir" {
			os.Mkdir(in, 0o755)
		} else {
			os.WriteFile(in, []byte(tt.text), 0o644)
		}
		out := filepath.Join(dir, "out-"+tt.name)
		code, _, stderr := runCLI(t, "run", "--sandbox", in, "-o", out, "--progress", "none")
		if code != exitFatal || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", tt.name, code, stderr, tt.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: the output directory was created", tt.name)
		}
	}
}

// TestCombinedShortFlags proves -qv is -q -v, and that a combination with
// a flag that takes a value, or with a letter that is no flag, is a usage
// error that says so.
func TestCombinedShortFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte("https://example.com/1\n"), 0o644)
	code, _, stderr := runCLI(t, append([]string{"run", "-qv", in, "-o", filepath.Join(dir, "out")}, sandboxFast...)...)
	if code != exitOK || stderr != "" {
		t.Errorf("-qv: exit %d, stderr %q; want 0 and quiet", code, stderr)
	}
	code, _, stderr = runCLI(t, "run", "-qo", "x", in)
	if code != exitUsage || !strings.Contains(stderr, "flags combined in -qo: -o takes a value") {
		t.Errorf("-qo: exit %d, stderr %q; want 2 saying -o takes a value", code, stderr)
	}
	code, _, stderr = runCLI(t, "run", "-qx", in)
	if code != exitUsage || !strings.Contains(stderr, "not defined: -qx") {
		t.Errorf("-qx: exit %d, stderr %q; want 2 naming -qx", code, stderr)
	}
}

// TestJSONLogs proves that with --log-format json every line on stderr is
// a JSON object, the closing summary and the stopped line included, and
// that a fatal error is one too.
func TestJSONLogs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte("https://example.com/1\nftp://bad\nhttps://example.com/2\n"), 0o644)
	out := filepath.Join(dir, "out")
	code, _, stderr := runCLI(t, append([]string{"run", "--log-format", "json", "--progress", "log", "--no-wait", in, "-o", out}, sandboxFast...)...)
	if code != exitStopped {
		t.Fatalf("exit %d, want 75: %s", code, stderr)
	}
	msgs := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("a line that is not JSON: %q", l)
		}
		msgs[m["msg"].(string)] = m
	}
	sum, ok := msgs["summary"]
	if !ok || sum["rows"] != float64(3) || sum["rejected"] != float64(1) || sum["outcome"] != "stopped" || sum["rejects_file"] == nil {
		t.Errorf("summary: %v", sum)
	}
	if _, ok := msgs["stopped: run the same command again to continue"]; !ok {
		t.Errorf("no stopped line: %v", msgs)
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err != nil {
		t.Errorf("summary.json: %v", err)
	}

	code, _, stderr = runCLI(t, "run", "--log-format", "json", "--sandbox", filepath.Join(dir, "missing.txt"), "-o", out)
	var m map[string]any
	if code != exitFatal || json.Unmarshal([]byte(stderr), &m) != nil || m["level"] != "ERROR" || m["exit"] != float64(1) {
		t.Errorf("a fatal error: exit %d, stderr %q; want 1 and one JSON line", code, stderr)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/job"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return reportErr(err, &errb), out.String(), errb.String()
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(data, []byte("\n"))
}

// TestUsageErrors proves bad command lines exit 2 with a message.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "no command"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"run without out", []string{"run", "examples/urls.csv"}, "--out"},
		{"bad batch size", []string{"run", "--batch-size", "3001", "-o", "x", "in.csv"}, "--batch-size"},
		{"unknown flag", []string{"run", "--nope", "-o", "x", "in.csv"}, "not defined: -nope"},
		{"bad param", []string{"run", "--param", "parse=maybe", "-o", "x", "in.csv"}, "want true/false"},
		{"strict from stdin", []string{"run", "--strict", "--format", "txt", "-o", "x", "-"}, "--strict needs an input file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errb)
			if code := exitCode(err); code != exitUsage {
				t.Fatalf("exit %d (%v), want 2", code, err)
			}
			if !strings.Contains(err.Error()+errb.String(), tt.want) {
				t.Errorf("message %q does not mention %q", err.Error(), tt.want)
			}
		})
	}
}

// TestRunSandboxExample proves the README's first command: the example
// CSV through the in-process sandbox gives one result per row, exit 0;
// then status reads the checkpoint.
func TestRunSandboxExample(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := runCLI(t, "run", "--sandbox", "--sandbox-args", "--delay uniform:10ms-200ms --batch-interval 50ms",
		"--batch-interval", "50ms", "examples/urls.csv", "-o", out, "--progress", "none")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := countLines(t, filepath.Join(out, "results.jsonl")); n != 300 {
		t.Fatalf("%d result lines, want 300", n)
	}
	if !strings.Contains(stderr, "300 results") {
		t.Errorf("closing summary missing: %s", stderr)
	}
	code, stdout, _ := runCLI(t, "status", "--json", out)
	var r statusReport
	if code != 0 || json.Unmarshal([]byte(stdout), &r) != nil {
		t.Fatalf("status: exit %d, %s", code, stdout)
	}
	if r.Rows != 300 || r.Results != 300 || r.Remaining != 0 || r.Pending != 0 {
		t.Errorf("status: %+v", r)
	}
	code, stdout, _ = runCLI(t, "status", out)
	if code != 0 || !strings.Contains(stdout, "300 (results 300") {
		t.Errorf("status text: %s", stdout)
	}
}

// TestRunExitCodes proves exit 3 for rejected rows, 4 for a held lock, 1
// for an unreadable input.
func TestRunExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte("https://example.com/1\nftp://bad\nhttps://example.com/2\n"), 0o644)
	out := filepath.Join(dir, "out")
	code, _, stderr := runCLI(t, "run", "--sandbox", "--sandbox-args", "--delay 10ms", in, "-o", out, "--progress", "none")
	if code != exitPartial {
		t.Fatalf("bad row: exit %d, want 3: %s", code, stderr)
	}
	if n := countLines(t, filepath.Join(out, "rejects.jsonl")); n != 1 {
		t.Errorf("%d rejects, want 1", n)
	}

	// Hold the lock as another run would.
	size, hash, _ := fingerprintForTest(in)
	j, err := checkpoint.Open(filepath.Join(out, "checkpoint"), checkpoint.Header{InputName: in, InputSize: size, InputHash: hash, Shape: `format="txt" target="" params=`}, false)
	if err != nil {
		t.Fatal(err)
	}
	code, _, _ = runCLI(t, "run", "--sandbox", in, "-o", out, "--progress", "none")
	j.Close()
	if code != exitLocked {
		t.Errorf("held lock: exit %d, want 4", code)
	}

	code, _, _ = runCLI(t, "run", "--sandbox", filepath.Join(dir, "missing.txt"), "-o", out, "--progress", "none")
	if code != exitFatal {
		t.Errorf("missing input: exit %d, want 1", code)
	}

	// The journal refuses another input; the advice comes from main.
	os.WriteFile(in, []byte("https://example.com/9\nftp://bad\nhttps://example.com/2\n"), 0o644)
	code, _, stderr = runCLI(t, "run", "--sandbox", in, "-o", out, "--progress", "none")
	if code != exitFatal || !strings.Contains(stderr, "belongs to another job") || !strings.Contains(stderr, "--restart") {
		t.Errorf("changed input: exit %d, want 1 with advice to use --restart: %s", code, stderr)
	}
}

// TestDryRunAndStrict proves --dry-run counts without the network and
// --strict refuses a file with a bad row before submitting anything.
func TestDryRunAndStrict(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runCLI(t, "run", "--dry-run", "examples/urls.csv")
	if code != exitOK || !regexp.MustCompile(`(?m)^rows +300$`).MatchString(stdout) || !regexp.MustCompile(`(?m)^batches +3 `).MatchString(stdout) {
		t.Fatalf("dry run: exit %d\n%s", code, stdout)
	}
	dupes := filepath.Join(t.TempDir(), "dupes.txt")
	os.WriteFile(dupes, []byte("https://example.com/1\nhttps://example.com/2\nhttps://example.com/1\nhttps://example.com/1\n"), 0o644)
	code, stdout, _ = runCLI(t, "run", "--dry-run", "--dedupe", dupes)
	if code != exitOK || !regexp.MustCompile(`(?m)^duplicates +2 `).MatchString(stdout) || !regexp.MustCompile(`(?m)^tasks to pay for +4 without --dedupe, 2 with it$`).MatchString(stdout) {
		t.Fatalf("dry run with duplicates: exit %d\n%s", code, stdout)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte("https://example.com/1\nnot a url\n"), 0o644)
	out := filepath.Join(dir, "out")
	code, _, stderr := runCLI(t, "run", "--strict", "--sandbox", in, "-o", out)
	if code != exitFatal || !strings.Contains(stderr, "line 2") {
		t.Fatalf("strict: exit %d, stderr %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "checkpoint")); err == nil {
		t.Error("--strict with a bad row started the run")
	}
}

// TestMixedBadRows proves, as a new user would see it, that a 100-row file
// with 20 kinds of bad rows gets every bad row named with its line and
// reason in rejects.jsonl, and every good row scraped.
func TestMixedBadRows(t *testing.T) {
	t.Parallel()
	want := map[int64]string{ // line -> a word of the reason
		3: "both", 8: "no url, query", 13: "http(s)", 18: "no host", 23: "space", 28: "longer than 2056",
		33: "no query", 38: "longer than 2048", 43: "takes a query", 48: "takes a url", 53: "malformed JSON",
		58: "not a JSON object", 63: `unknown key "colour"`, 68: "parse", 73: "page_count", 78: "limit",
		83: "headless", 88: "page_from", 93: "device_type", 98: "headers",
	}
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := runCLI(t, "run", "--sandbox", "--sandbox-args", "--delay 20ms --batch-interval 20ms",
		"--batch-interval", "20ms", "testdata/mixed-100.jsonl", "-o", out, "--progress", "none")
	if code != exitPartial {
		t.Fatalf("exit %d, want 3: %s", code, stderr)
	}
	data, _ := os.ReadFile(filepath.Join(out, "rejects.jsonl"))
	got := map[int64]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r struct {
			Line  int64  `json:"line"`
			Error string `json:"error"`
			Input string `json:"input"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r.Input == "" {
			t.Errorf("line %d: reject without its input", r.Line)
		}
		got[r.Line] = r.Error
	}
	for line, word := range want {
		if !strings.Contains(got[line], word) {
			t.Errorf("line %d: reason %q, want it to say %q", line, got[line], word)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d rejects, want %d", len(got), len(want))
	}
	if n := countLines(t, filepath.Join(out, "results.jsonl")); n != 80 {
		t.Errorf("%d results, want the 80 good rows", n)
	}
}

// TestRefusedTokenAdvice proves a token the API refuses ends the run with
// exit 1 and a message that says where the token comes from.
func TestRefusedTokenAdvice(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Config{Tokens: []string{"cmlnaHQ6dG9rZW4="}})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	t.Cleanup(sb.Close)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte("https://example.com/1\n"), 0o644)
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("d3Jvbmc6dG9rZW4=\n"), 0o600)
	code, _, stderr := runCLI(t, "run", "--endpoint", srv.URL, "--token-file", tokenFile, in, "-o", filepath.Join(dir, "out"), "--progress", "none")
	if code != exitFatal || !strings.Contains(stderr, "refused the token") || !strings.Contains(stderr, "DECODO_TOKEN") {
		t.Fatalf("refused token: exit %d, want 1 with advice on the token: %s", code, stderr)
	}
}

// TestHelpAndUsageErrors proves -h prints a command's flags to stdout and
// exits 0, and a usage error prints its reason and one line pointing to
// -h (not the whole flag list) and exits 2, enumerated flags included.
func TestHelpAndUsageErrors(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"run", "status", "sandbox", "version"} {
		for _, h := range []string{"-h", "--help", "-help"} {
			code, stdout, stderr := runCLI(t, cmd, h)
			if code != exitOK || !strings.Contains(stdout, "Usage: decodo-batch "+cmd) || stderr != "" {
				t.Errorf("%s %s: exit %d, stdout %.60q, stderr %q", cmd, h, code, stdout, stderr)
			}
		}
	}
	for _, h := range []string{"-h", "--help", "help"} {
		if code, stdout, stderr := runCLI(t, h); code != exitOK || !strings.Contains(stdout, "Usage:") || stderr != "" {
			t.Errorf("%s: exit %d, stdout %.60q, stderr %q", h, code, stdout, stderr)
		}
	}
	for _, args := range [][]string{
		{"run", "--bogus", "in.txt", "-o", "out"},
		{"run", "--progress", "bra", "in.txt", "-o", "out"},
		{"run", "--format", "xlsx", "in.txt", "-o", "out"},
		{"run", "--log-format", "xml", "in.txt", "-o", "out"},
		{"nosuchcommand"},
	} {
		code, stdout, stderr := runCLI(t, args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != exitUsage || stdout != "" || len(lines) != 2 || !strings.Contains(lines[1], "-h") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a reason then a pointer to -h", args, code, stderr)
		}
	}
	if code, stdout, _ := runCLI(t, "version"); code != exitOK || !strings.HasPrefix(stdout, "decodo-batch ") || strings.TrimSpace(stdout) == "decodo-batch" {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
}

// TestSummaryNamesCompressedFiles proves the closing line points at the
// files as they are named on disk, with the codec's extension.
func TestSummaryNamesCompressedFiles(t *testing.T) {
	t.Parallel()
	for ext, want := range map[string]string{"": "see out/failed.jsonl and out/rejects.jsonl\n", ".zst": "see out/failed.jsonl.zst and out/rejects.jsonl.zst\n"} {
		var b bytes.Buffer
		printSummary(&b, &job.Summary{Rows: 3, Results: 1, Failed: 1, Rejected: 1}, "out", ext)
		if !strings.HasSuffix(b.String(), want) {
			t.Errorf("codec %q: %q, want it to end with %q", ext, b.String(), want)
		}
	}
}

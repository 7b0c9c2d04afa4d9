package main

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// TestKill9RetryFailed proves --retry-failed keeps the invariant through
// SIGKILLs: a job with many faulted tasks and --retries 0 ends with failed
// rows; the same command with --retry-failed against a healthy API, killed
// at random moments (the first ones while failed.jsonl is being rewritten)
// and run again until it finishes, ends with exit 0, failed.jsonl empty and
// every row once in results.
func TestKill9RetryFailed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary; skipped with -short")
	}
	t.Parallel()
	bin := buildBinary(t)
	const rows, token = 1500, "cmV0cnk6dGVzdA=="
	api := func(cfg sandbox.Config) string {
		cfg.Tokens, cfg.BatchInterval = []string{token}, 15*time.Millisecond
		sb := sandbox.New(cfg)
		srv := httptest.NewServer(sb)
		t.Cleanup(srv.Close)
		t.Cleanup(sb.Close)
		return srv.URL
	}
	sick := api(sandbox.Config{FaultRate: 0.3, Seed: 7, Delay: sandbox.Delay{Kind: sandbox.Uniform, Min: 5 * time.Millisecond, Max: 100 * time.Millisecond}})
	healthy := api(sandbox.Config{Delay: sandbox.Delay{Kind: sandbox.Uniform, Min: 20 * time.Millisecond, Max: 400 * time.Millisecond}})

	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	var b strings.Builder
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&b, "https://example.com/rk/%d\n", i)
	}
	os.WriteFile(in, []byte(b.String()), 0o644)
	out := filepath.Join(dir, "out")
	run := func(endpoint string, kill time.Duration, extra ...string) (int, string) {
		args := append([]string{"run", "--endpoint", endpoint, "--batch-size", "50", "--batch-interval", "20ms",
			"--retries", "0", "--progress", "none", "-q", in, "-o", out}, extra...)
		return runBin(t, bin, token, []string{"DECODO_BATCH_STATUS_AFTER=300ms"}, kill, args...)
	}
	if code, stderr := run(sick, 0); code != exitPartial {
		t.Fatalf("first run: exit %d, want 3: %s", code, stderr)
	}
	failedBefore := strings.Count(readFile(t, filepath.Join(out, "failed.jsonl")), "\n")
	if failedBefore == 0 {
		t.Fatal("no failed rows to retry")
	}
	rng := rand.New(rand.NewPCG(7, 7))
	code, stderr, kills := killed, "", 0
	for i := 0; code == killed || code == exitStopped; i++ {
		var kill time.Duration
		if i < 6 {
			kill = time.Duration(2+rng.IntN(15*(i+1))) * time.Millisecond // early: during the rewrite
			kills++
		}
		if i > 30 {
			t.Fatalf("the retry did not finish in %d runs", i)
		}
		code, stderr = run(healthy, kill, "--retry-failed")
	}
	if code != exitOK {
		t.Fatalf("retry: exit %d, want 0: %s", code, stderr)
	}
	seen := rowsIn(t, out)
	for r := int64(1); r <= rows; r++ {
		if seen[r] != "results.jsonl" {
			t.Errorf("row %d is in %q, want results.jsonl", r, seen[r])
		}
	}
	if f := readFile(t, filepath.Join(out, "failed.jsonl")); f != "" {
		t.Errorf("failed.jsonl not empty after the retry: %.200s", f)
	}
	t.Logf("%d failed rows retried through %d SIGKILLs", failedBefore, kills)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

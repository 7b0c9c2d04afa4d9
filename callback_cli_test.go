package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCallbackFlags proves the --callback-* flags are checked before
// anything runs: an http(s) URL with a host, a certificate with its key,
// and the receiver's flags only with a URL.
func TestCallbackFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"not http", []string{"--callback-url", "ftp://cb.example.com/x"}, "--callback-url must be"},
		{"no host", []string{"--callback-url", "https:///x"}, "--callback-url must be"},
		{"credentials in the URL", []string{"--callback-url", "https://u:p@cb.example.com/x"}, "--callback-url must be"},
		{"cert without key", []string{"--callback-url", "https://cb.example.com/x", "--callback-cert", "c.pem"}, "go together"},
		{"listen without URL", []string{"--callback-listen", ":8080"}, "need --callback-url"},
		{"bad listen", []string{"--callback-url", "https://cb.example.com/x", "--callback-listen", "8080"}, "--callback-listen must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"run", "--sandbox", "examples/urls.csv", "-o", filepath.Join(t.TempDir(), "out")}, tt.args...)
			code, _, stderr := runCLI(t, args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, tt.want)
			}
		})
	}
}

// TestRunSandboxCallbacks proves callbacks work out of the box with
// --sandbox and a loopback URL: every row has its result, fetched with one
// GET of /results each (no status GET, no 204), and the receiver's counts
// are in summary.json; the secret is beside the checkpoint, mode 0600.
func TestRunSandboxCallbacks(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := runCLI(t, "run", "--sandbox", "--sandbox-args", "--delay uniform:300ms-600ms --batch-interval 50ms",
		"--batch-interval", "50ms", "--callback-url", "http://127.0.0.1:0/decodo", "examples/urls.csv", "-o", out, "--progress", "none")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum struct {
		Results   int64            `json:"results"`
		Requests  map[string]int64 `json:"requests"`
		Callbacks *struct {
			Accepted int64            `json:"accepted"`
			Rejected map[string]int64 `json:"rejected"`
		} `json:"callbacks"`
	}
	data, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil || json.Unmarshal(data, &sum) != nil {
		t.Fatalf("summary.json: %v", err)
	}
	if sum.Results != 300 || sum.Callbacks == nil || sum.Callbacks.Accepted == 0 || len(sum.Callbacks.Rejected) != 0 {
		t.Fatalf("summary: %s", data)
	}
	if sum.Requests["GET /v3/task/{id}/results 200"] != 300 {
		t.Errorf("requests %v, want 300 results GETs", sum.Requests)
	}
	// Tasks whose callbacks came before 20 were seen may be polled once
	// or twice more; most are fetched on their callback alone.
	if extra := sum.Requests["GET /v3/task/{id}/results 204"] + sum.Requests["GET /v3/task/{id} 200"]; extra > 60 {
		t.Errorf("%d extra GETs for 300 tasks with callbacks: %v", extra, sum.Requests)
	}
	fi, err := os.Stat(filepath.Join(out, "checkpoint.secret"))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Errorf("secret: %v %v", fi, err)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// TestKill9Callbacks proves a callback run loses nothing to SIGKILL: runs
// with callbacks on (some lost, some duplicated) killed at random moments,
// then resumed until one finishes, end with every row once, and pay twice
// for no more than the batches in flight at the kills. Callbacks that came
// while no run listened are covered by polling after the resume; those of
// earlier sessions' tasks verify by their MAC.
func TestKill9Callbacks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary; skipped with -short")
	}
	t.Parallel()
	bin := buildBinary(t)
	const rows = 1500
	sb := sandbox.New(sandbox.Config{
		Tokens:        []string{"Y3Jhc2g6dGVzdA=="},
		BatchInterval: 15 * time.Millisecond,
		Delay:         sandbox.Delay{Kind: sandbox.Uniform, Min: 50 * time.Millisecond, Max: 800 * time.Millisecond},
		FaultRate:     0.02, CallbackLossRate: 0.05, CallbackDupRate: 0.1,
		Seed: 3,
	})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	t.Cleanup(sb.Close)

	// One port for every session, so that callbacks of tasks submitted
	// before a kill reach the next session.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	var b strings.Builder
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&b, "https://example.com/cbk/%d\n", i)
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	const batchSize = 50
	args := []string{"run", "--endpoint", srv.URL, "--batch-size", fmt.Sprint(batchSize), "--batch-interval", "20ms",
		"--retries", "6", "--progress", "none", "-q", "-o", out,
		"--callback-url", fmt.Sprintf("http://127.0.0.1:%d/decodo", port), in}
	rng := rand.New(rand.NewPCG(3, 7))
	kills, code := 0, -1
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var kill time.Duration
		if kills < 4 {
			kill = time.Duration(150+rng.IntN(700)) * time.Millisecond
		}
		var stderr string
		code, stderr = runBin(t, bin, "Y3Jhc2g6dGVzdA==", []string{"DECODO_BATCH_STATUS_AFTER=1s"}, kill, args...)
		if code == killed {
			kills++
			continue
		}
		if code != exitStopped {
			if code != 0 && code != exitPartial {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			break
		}
	}
	if code != 0 && code != exitPartial {
		t.Fatalf("no run finished within the time bound (last exit %d, %d kills)", code, kills)
	}
	seen := rowsIn(t, out)
	for r := int64(1); r <= rows; r++ {
		if _, ok := seen[r]; !ok {
			t.Errorf("row %d is in no output file", r)
		}
	}
	meant := attemptsIn(t, out)
	st := sb.Stats()
	twice := st.TasksCreated - meant
	t.Logf("%d SIGKILLs; %d tasks created, %d meant; callbacks sent %d, failed %d (no one listening), lost %d",
		kills, st.TasksCreated, meant, st.CallbacksSent, st.CallbacksFailed, st.CallbacksLost)
	if twice < 0 || twice > kills*batchesInFlight*batchSize {
		t.Errorf("%d tasks paid twice over %d kills", twice, kills)
	}
	var sum struct {
		Callbacks *struct {
			Accepted int64 `json:"accepted"`
		} `json:"callbacks"`
	}
	data, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil || json.Unmarshal(data, &sum) != nil || sum.Callbacks == nil {
		t.Fatalf("summary.json has no callback counts: %v %s", err, data)
	}
}

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary builds decodo-batch once for the tests that run it as a
// separate process.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "decodo-batch-test"); binErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "decodo-batch"), ".")
		cmd.Stderr = os.Stderr
		binErr = cmd.Run()
	})
	if binErr != nil {
		t.Fatalf("go build: %v", binErr)
	}
	return filepath.Join(binDir, "decodo-batch")
}

// killed is the exit code runBin reports for a run it killed.
const killed = -9

// runBin runs the binary with args, DECODO_TOKEN=token and the extra
// environment env, and SIGKILLs it after kill if kill > 0. It returns the
// exit code ([killed] for a run it killed) and what the run wrote to stderr.
func runBin(t *testing.T, bin, token string, env []string, kill time.Duration, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "DECODO_TOKEN="+token), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timer <-chan time.Time
	if kill > 0 {
		timer = time.After(kill)
	}
	select {
	case <-timer:
		_ = cmd.Process.Kill() // SIGKILL
		<-done
		return killed, stderr.String()
	case err := <-done:
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			return ee.ExitCode(), stderr.String()
		case err != nil:
			t.Fatal(err)
		}
		return 0, stderr.String()
	}
}

// rowsIn maps each row of the three output files to its file, failing on
// a row written twice.
func rowsIn(t *testing.T, out string) map[int64]string {
	t.Helper()
	seen := map[int64]string{}
	for _, name := range []string{"results.jsonl", "failed.jsonl", "rejects.jsonl"} {
		f, err := os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var m struct {
				Row int64 `json:"row"`
			}
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: torn or bad line %q: %v", name, sc.Text(), err)
			}
			if prev, dup := seen[m.Row]; dup {
				t.Fatalf("row %d written twice (%s and %s)", m.Row, prev, name)
			}
			seen[m.Row] = name
		}
		f.Close()
	}
	return seen
}

// TestKill9Resume proves the crash guarantee: a run killed with SIGKILL
// at random moments (against a sandbox with faults on), then run again
// until it finishes, ends with every row of the input in exactly one
// output file, exactly once, and pays twice for no more than the batches
// that were in flight at the kills. It runs with several seeds at once.
func TestKill9Resume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary; skipped with -short")
	}
	t.Parallel()
	bin := buildBinary(t)
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			killAndResume(t, bin, seed)
		})
	}
}

// batchesInFlight is how many batch POSTs a run has in flight at most (the
// batcher's default): a kill can lose the answers of that many.
const batchesInFlight = 4

func killAndResume(t *testing.T, bin string, seed uint64) {
	const rows = 3000
	sb := sandbox.New(sandbox.Config{
		Tokens:        []string{"Y3Jhc2g6dGVzdA=="},
		BatchInterval: 15 * time.Millisecond,
		Delay:         sandbox.Delay{Kind: sandbox.Uniform, Min: 20 * time.Millisecond, Max: 600 * time.Millisecond},
		FaultRate:     0.05, ErrorRate: 0.02, DropRate: 0.01,
		Seed: int64(seed),
	})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	t.Cleanup(sb.Close)

	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	var b strings.Builder
	b.WriteString("id,url\n")
	bad := map[int64]bool{}
	for i := 1; i <= rows; i++ {
		if i%700 == 0 {
			fmt.Fprintf(&b, "r%d,mailto:x%d@example.com\n", i, i)
			bad[int64(i)] = true
			continue
		}
		fmt.Fprintf(&b, "r%d,https://example.com/k/%d\n", i, i)
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	const batchSize = 50
	args := []string{"run", "--endpoint", srv.URL, "--batch-size", fmt.Sprint(batchSize), "--batch-interval", "20ms",
		"--retries", "6", "--progress", "none", "-q", in, "-o", out}
	rng := rand.New(rand.NewPCG(seed, 99))
	kills, code := 0, -1
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		// The first runs are killed at random moments; later ones are
		// let finish so the test ends.
		var kill time.Duration
		if kills < 8 {
			kill = time.Duration(30+rng.IntN(700)) * time.Millisecond
		}
		// Faulted tasks are found by a status check; each short session
		// would otherwise wait 20s before its first one.
		var stderr string
		code, stderr = runBin(t, bin, "Y3Jhc2g6dGVzdA==", []string{"DECODO_BATCH_STATUS_AFTER=1s"}, kill, args...)
		if code == killed {
			kills++
			continue
		}
		if code == exitLocked {
			t.Fatalf("exit 4 after a SIGKILL: the lock outlived its process: %s", stderr)
		}
		if code != exitStopped {
			if code != exitPartial {
				t.Fatalf("exit %d, want 3 (bad rows): %s", code, stderr)
			}
			break
		}
	}
	if code != exitPartial {
		t.Fatalf("no run finished within the time bound (last exit %d, %d kills)", code, kills)
	}
	seen := rowsIn(t, out)
	for r := int64(1); r <= rows; r++ {
		where, ok := seen[r]
		switch {
		case !ok:
			t.Errorf("row %d is in no output file", r)
		case bad[r] && where != "rejects.jsonl":
			t.Errorf("bad row %d is in %s", r, where)
		case !bad[r] && where == "rejects.jsonl":
			t.Errorf("good row %d was rejected", r)
		}
	}
	if len(seen) != rows {
		t.Errorf("%d rows in the outputs, want %d", len(seen), rows)
	}
	// Each output line says which attempt its row ended with: the tasks
	// the job meant to pay for. Anything the API created beyond that was
	// paid twice, which only a kill between a batch's acceptance and its
	// answer reaching the journal can cause.
	meant := attemptsIn(t, out)
	st := sb.Stats()
	twice := st.TasksCreated - meant
	t.Logf("seed %d: %d SIGKILLs; API created %d tasks for %d good rows, %d meant (faults resubmitted), %d paid twice",
		seed, kills, st.TasksCreated, rows-len(bad), meant, twice)
	if twice < 0 || twice > kills*batchesInFlight*batchSize {
		t.Errorf("%d tasks paid twice over %d kills: more than the %d batches of %d that can be in flight at each kill",
			twice, kills, batchesInFlight, batchSize)
	}
}

// attemptsIn sums the attempts of the lines of results.jsonl and
// failed.jsonl: the tasks the job meant to pay for, but for the last
// submission of a row of class unknown, which the API may not have taken.
func attemptsIn(t *testing.T, out string) int {
	t.Helper()
	n := 0
	for _, name := range []string{"results.jsonl", "failed.jsonl"} {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if l == "" {
				continue
			}
			var m struct {
				Attempts int    `json:"attempts"`
				Class    string `json:"error_class"`
			}
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			n += m.Attempts
			if m.Class == "unknown" {
				n-- // its last submission may have created no task
			}
		}
	}
	return n
}

// TestSignalStopsCleanly proves SIGTERM and SIGHUP stop a run with exit 75
// after finishing what is in flight, and the same command then finishes
// the job with every row exactly once and no task submitted twice.
func TestSignalStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and signals the binary; skipped with -short")
	}
	bin := buildBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			sb := sandbox.New(sandbox.Config{Tokens: []string{"c2lnOnRlc3Q="}, BatchInterval: 40 * time.Millisecond,
				Delay: sandbox.Delay{Kind: sandbox.Uniform, Min: 100 * time.Millisecond, Max: 800 * time.Millisecond}})
			srv := httptest.NewServer(sb)
			t.Cleanup(srv.Close)
			dir := t.TempDir()
			in := filepath.Join(dir, "in.txt")
			var b strings.Builder
			for i := 1; i <= 2000; i++ {
				fmt.Fprintf(&b, "https://example.com/s/%d\n", i)
			}
			os.WriteFile(in, []byte(b.String()), 0o644)
			out := filepath.Join(dir, "out")
			args := []string{"run", "--endpoint", srv.URL, "--batch-size", "100", "--batch-interval", "50ms", "--progress", "none", "-q", in, "-o", out}
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "DECODO_TOKEN=c2lnOnRlc3Q=")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(400 * time.Millisecond)
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitStopped {
				t.Fatalf("after %v: %v, want exit 75", sig, err)
			}
			cmd = exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "DECODO_TOKEN=c2lnOnRlc3Q=")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("second run: %v: %s", err, out)
			}
			if seen := rowsIn(t, out); len(seen) != 2000 {
				t.Fatalf("%d rows in the outputs, want 2000", len(seen))
			}
			if n := sb.Stats().TasksCreated; n != 2000 {
				t.Errorf("the API created %d tasks for 2000 rows", n)
			}
		})
	}
}

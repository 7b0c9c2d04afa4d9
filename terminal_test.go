package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// frameRE matches a progress frame: the percentage, then done/total.
var frameRE = regexp.MustCompile(`^(\d+)\.(\d)% (?:\[[=> ]*\] )?(\d+)/(\d+)`)

// writeURLs writes an input of n rows, every badEvery-th one a bad URL,
// and returns its path and the number of good rows.
func writeURLs(t *testing.T, dir string, n, badEvery int) (string, int) {
	t.Helper()
	var b strings.Builder
	good := 0
	for i := 1; i <= n; i++ {
		if i%badEvery == 0 {
			fmt.Fprintf(&b, "ftp://bad.example/%d\n", i)
			continue
		}
		good++
		fmt.Fprintf(&b, "https://example.com/p/%d\n", i)
	}
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return in, good
}

// ptyRun is the binary running in a pseudo-terminal of a given width.
type ptyRun struct {
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  []byte
	done chan struct{} // closed when the output ended
}

func startPTY(t *testing.T, ctx context.Context, cols int, bin string, args ...string) *ptyRun {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "COLUMNS=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(cols), Rows: 30})
	if err != nil {
		t.Fatal(err)
	}
	r := &ptyRun{cmd: cmd, tty: tty, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf) // EIO once the process and its terminal are gone
			r.mu.Lock()
			r.out = append(r.out, buf[:n]...)
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return r
}

func (r *ptyRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.out)
}

// wait waits for the process and the end of its output, and returns its
// exit code.
func (r *ptyRun) wait(t *testing.T) int {
	t.Helper()
	err := r.cmd.Wait()
	<-r.done
	r.tty.Close()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// frames returns the progress frames in out: what is written between two
// carriage returns, erasures or newlines, that reads as a frame.
func frames(out string) []string {
	var fs []string
	for _, seg := range strings.FieldsFunc(strings.ReplaceAll(out, "\x1b[K", "\r"), func(r rune) bool { return r == '\r' || r == '\n' }) {
		if frameRE.MatchString(seg) {
			fs = append(fs, seg)
		}
	}
	return fs
}

// screenLines replays out as a terminal shows it: a carriage return goes
// back to the first column, ESC [ K erases from the cursor to the end of
// the line, a newline moves to the next line. It returns the lines left
// on the screen, the unfinished last one included, and the furthest
// column anything was written to.
func screenLines(out string) (lines []string, widest int) {
	var line []rune
	col := 0
	for i := 0; i < len(out); {
		switch {
		case strings.HasPrefix(out[i:], "\x1b[K"):
			line = line[:min(col, len(line))]
			i += 3
			continue
		case out[i] == '\r':
			col = 0
		case out[i] == '\n':
			lines = append(lines, string(line))
			line, col = nil, 0
		default:
			r, size := utf8.DecodeRuneInString(out[i:])
			if col < len(line) {
				line[col] = r
			} else {
				line = append(line, r)
			}
			col++
			widest = max(widest, col)
			i += size
			continue
		}
		i++
	}
	return append(lines, string(line)), widest
}

// checkScreen checks what a run in a terminal of cols columns showed: no
// progress frame as wide as the terminal (it would wrap and leave a line
// behind), each frame's percentage equal to done/total of the same frame,
// and no frame left on the screen after the run. Log lines (time=...) and
// the line naming output files are as long as their contents (paths):
// only the start of a log line is checked, at the first column.
func checkScreen(t *testing.T, out string, cols int) []string {
	t.Helper()
	fs := frames(out)
	if len(fs) == 0 {
		t.Fatalf("no progress frame in the output:\n%q", out)
	}
	for _, f := range fs {
		if n := utf8.RuneCountInString(f); n >= cols {
			t.Errorf("a frame of %d columns in a terminal of %d: %q", n, cols, f)
		}
		m := frameRE.FindStringSubmatch(f)
		whole, _ := strconv.ParseInt(m[1], 10, 64)
		tenth, _ := strconv.ParseInt(m[2], 10, 64)
		done, _ := strconv.ParseInt(m[3], 10, 64)
		total, _ := strconv.ParseInt(m[4], 10, 64)
		if total <= 0 || whole*10+tenth != done*1000/total {
			t.Errorf("frame %q: %d.%d%% is not %d/%d", f, whole, tenth, done, total)
		}
	}
	lines, _ := screenLines(out)
	for _, l := range lines {
		if frameRE.MatchString(l) || strings.Contains(l, " in flight · ") {
			t.Errorf("a stale progress line is left on the screen: %q", l)
		}
		if strings.Contains(l, "level=") && !strings.HasPrefix(l, "time=") {
			t.Errorf("a log line does not start at the first column: %q", l)
		}
		if !strings.HasPrefix(l, "time=") && !strings.HasPrefix(l, "decodo-batch: see ") && utf8.RuneCountInString(l) > cols {
			t.Errorf("a line wider than %d columns: %q", cols, l)
		}
	}
	return lines
}

// TestProgressInTerminal proves the progress display in a pseudo-terminal
// of 80 and of 160 columns: frames redrawn in place and never wider than
// the terminal, each frame's percentage done/total of its own counts, the
// total known from the first frames on (a fast count of the file), and no
// progress line left behind; at 80 columns a Ctrl-C mid-run, whose
// warning starts a line of its own, then the same command again.
func TestProgressInTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary in a pseudo-terminal; skipped with -short")
	}
	t.Parallel()
	bin := buildBinary(t)
	for _, cols := range []int{80, 160} {
		t.Run(fmt.Sprint(cols, "cols"), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dir := t.TempDir()
			in, _ := writeURLs(t, dir, 2000, 250)
			out := filepath.Join(dir, "out")
			args := []string{"run", "--sandbox", "--sandbox-args", "--delay uniform:200ms-2500ms --batch-interval 100ms",
				"--batch-interval", "100ms", "--batch-size", "200", in, "-o", out}
			r := startPTY(t, ctx, cols, bin, args...)
			if cols == 80 {
				// Ctrl-C once some rows are done: the terminal sends SIGINT.
				for ctx.Err() == nil {
					if fs := frames(r.output()); len(fs) > 0 && !strings.HasPrefix(fs[len(fs)-1], "0.0%") {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				r.tty.Write([]byte{3})
				if code := r.wait(t); code != exitStopped {
					t.Fatalf("after Ctrl-C: exit %d, want 75:\n%s", code, r.output())
				}
				lines := checkScreen(t, r.output(), cols)
				warned := false
				for _, l := range lines {
					warned = warned || strings.Contains(l, "stopping")
				}
				if !warned {
					t.Errorf("no stopping warning on the screen: %q", lines)
				}
				r = startPTY(t, ctx, cols, bin, args...)
			}
			if code := r.wait(t); code != exitPartial {
				t.Fatalf("exit %d, want 3 (8 bad rows):\n%s", code, r.output())
			}
			checkScreen(t, r.output(), cols)
			// The form follows the width: the widest names every count.
			wide := strings.Contains(strings.Join(frames(r.output()), "\n"), " · results ")
			if wide != (cols >= 160) {
				t.Errorf("at %d columns, the wide form shown: %v", cols, wide)
			}
			if fs := frames(r.output()); !strings.Contains(fs[0], "/2000") && !strings.Contains(fs[min(1, len(fs)-1)], "/2000") {
				t.Errorf("the total is not known from the first frames: %q", fs[:min(3, len(fs))])
			}
			if seen := rowsIn(t, out); len(seen) != 2000 {
				t.Errorf("%d rows in the outputs, want 2000", len(seen))
			}
		})
	}
}

// TestSandboxResumesAfterSIGINT proves that run --sandbox keeps its
// simulated API's state in OUT: SIGINT after the first results, then the
// same command, and the sandbox's counters (over both sessions) show every
// good row submitted once and no task paid for twice, and every row is
// once in the outputs. After a SIGKILL too: no task the journal names is
// unknown to the second session's sandbox (no 404), and only the batches
// in flight at the kill may be paid twice.
func TestSandboxResumesAfterSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary; skipped with -short")
	}
	t.Parallel()
	bin := buildBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			sandboxResumes(t, bin, sig)
		})
	}
}

func sandboxResumes(t *testing.T, bin string, sig syscall.Signal) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	in, good := writeURLs(t, dir, 3000, 500)
	out := filepath.Join(dir, "out")
	args := []string{"run", "--sandbox", "--sandbox-args", "--delay uniform:300ms-4s --batch-interval 100ms",
		"--batch-interval", "100ms", "--batch-size", "300", "--progress", "log", in, "-o", out}
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil { // some results, and more pending
		if fi, err := os.Stat(filepath.Join(out, "results.jsonl")); err == nil && fi.Size() > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(sig)
	err := cmd.Wait()
	var exit *exec.ExitError
	if sig == syscall.SIGINT && (!errors.As(err, &exit) || exit.ExitCode() != exitStopped) {
		t.Fatalf("after SIGINT: %v, want exit 75\n%s", err, stderr.String())
	}
	first, err := sandbox.ReadStats(filepath.Join(out, sandboxStateFile))
	if err != nil {
		t.Fatal(err)
	}
	if first.TasksCreated == 0 || first.TasksDone == first.TasksCreated && first.TasksCreated == good {
		t.Fatalf("the first session should stop with tasks pending: %d created, %d done", first.TasksCreated, first.TasksDone)
	}

	cmd = exec.CommandContext(ctx, bin, args...)
	stderr.Reset()
	cmd.Stderr = &stderr
	err = cmd.Run()
	if !errors.As(err, &exit) || exit.ExitCode() != exitPartial {
		t.Fatalf("rerun: %v, want exit 3\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("tasks_known=%d", first.TasksCreated)) {
		t.Errorf("the rerun's sandbox did not load the first one's tasks:\n%s", stderr.String())
	}
	st, err := sandbox.ReadStats(filepath.Join(out, sandboxStateFile))
	if err != nil {
		t.Fatal(err)
	}
	inFlight := 0 // tasks of batches a kill may have caught between the API and the journal
	if sig == syscall.SIGKILL {
		inFlight = 4 * 300
	}
	if st.DuplicateSubmissions > inFlight || st.TasksCreated-st.DuplicateSubmissions != good || st.Items != good {
		t.Errorf("sandbox over both sessions: %d tasks for %d items, %d duplicate submissions %v; want %d, once each",
			st.TasksCreated, st.Items, st.DuplicateSubmissions, st.Duplicates, good)
	}
	if n := st.Requests["GET /v3/task/{id}/results 404"] + st.Requests["GET /v3/task/{id} 404"]; n != 0 {
		t.Errorf("%d GETs answered 404: the rerun's sandbox forgot tasks", n)
	}
	if seen := rowsIn(t, out); len(seen) != 3000 {
		t.Errorf("%d rows in the outputs, want 3000", len(seen))
	}
}

// TestSandboxCommandKeepsState proves decodo-batch sandbox --state FILE
// saves what it served at exit, and loads it when it starts again.
func TestSandboxCommandKeepsState(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state")
	serve := func() (string, func() error) {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		errc := make(chan error, 1)
		go func() {
			errc <- sandboxCmd(ctx, []string{"--addr", "127.0.0.1:0", "--state", path, "--delay", "10ms"}, pw, io.Discard)
			pw.Close()
		}()
		line, err := bufio.NewReader(pr).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, pr)
		addr := strings.Fields(strings.TrimPrefix(line, "sandbox API on "))[0]
		return addr, func() error { cancel(); return <-errc }
	}
	addr, stop := serve()
	req, _ := http.NewRequest("POST", addr+"/v3/task/batch", strings.NewReader(`{"url":["https://example.com/1","https://example.com/2"]}`))
	req.Header.Set("Authorization", "Basic dGVzdDp0ZXN0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("batch: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st, err := sandbox.ReadStats(path)
	if err != nil || st.TasksCreated != 2 {
		t.Fatalf("saved state: %d tasks, %v; want 2", st.TasksCreated, err)
	}
	_, stop = serve() // loads it
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st, err := sandbox.ReadStats(path); err != nil || st.TasksCreated != 2 || st.Batches != 1 {
		t.Errorf("after a second life: %d tasks, %d batches, %v; want 2 and 1", st.TasksCreated, st.Batches, err)
	}
}

package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// TestRunDedupe proves --dedupe: with each request three times in the
// input, the API creates one task per distinct request, every row gets its
// own results line with the same task as its first row and duplicate_of
// naming it; the same across a chain of short sessions, where a later
// session meets duplicates of rows done in an earlier one.
func TestRunDedupe(t *testing.T) {
	t.Parallel()
	const distinct = 300
	var b strings.Builder
	for copy := range 3 {
		for i := 1; i <= distinct; i++ {
			fmt.Fprintf(&b, "https://example.com/dup/%d\n", i)
		}
		if copy == 0 { // a duplicate right after its first row, too
			b.WriteString("https://example.com/dup/1\n")
		}
	}
	input := writeFile(t, "in.txt", b.String())
	rows := 3*distinct + 1
	for _, short := range []bool{false, true} {
		t.Run(fmt.Sprintf("short sessions %v", short), func(t *testing.T) {
			t.Parallel()
			sb, api := fastSandbox(t, sandbox.Config{Delay: sandbox.Delay{Kind: sandbox.Uniform, Min: 50 * time.Millisecond, Max: 300 * time.Millisecond}})
			cfg := testConfig(t, api, input)
			cfg.Batch.Size = 50
			cfg.Dedupe = true
			var err error
			if short {
				cfg.MaxRuntime = 300 * time.Millisecond
				for range 40 {
					if _, err = Run(context.Background(), cfg); !errors.Is(err, ErrStopped) {
						break
					}
				}
			} else {
				_, err = Run(context.Background(), cfg)
			}
			if err != nil {
				t.Fatal(err)
			}
			if seen := outcomes(t, cfg.Out); len(seen) != rows {
				t.Fatalf("%d rows in the outputs, want %d", len(seen), rows)
			}
			st := sb.Stats()
			if st.TasksCreated != distinct {
				t.Errorf("the API created %d tasks for %d distinct requests", st.TasksCreated, distinct)
			}
			first := map[string]float64{} // url -> its first row
			task := map[float64]any{}
			lines := readLines(t, filepath.Join(cfg.Out, "results.jsonl"))
			for _, m := range lines {
				if _, dup := m["duplicate_of"]; !dup {
					first[m["url"].(string)] = m["row"].(float64)
					task[m["row"].(float64)] = m["task_id"]
				}
			}
			if len(first) != distinct {
				t.Errorf("%d rows without duplicate_of, want %d", len(first), distinct)
			}
			for _, m := range lines {
				if d, dup := m["duplicate_of"]; dup && (d != first[m["url"].(string)] || m["task_id"] != task[d.(float64)]) {
					t.Errorf("row %v: duplicate_of %v, task %v; the url's first row is %v with task %v", m["row"], d, m["task_id"], first[m["url"].(string)], task[first[m["url"].(string)]])
				}
			}
		})
	}
}

// TestRunDedupeLeaderTaskGone proves a duplicate whose first row's task
// the API no longer has (expired, or another API: 404) is submitted as its
// own task, also when the input has ended by then: the nightly job whose
// appended rows repeat earlier ones.
func TestRunDedupeLeaderTaskGone(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&b, "https://example.com/gone/%d\n", i)
	}
	input := writeFile(t, "in.txt", b.String())
	_, api := fastSandbox(t, sandbox.Config{})
	cfg := testConfig(t, api, input)
	cfg.Dedupe = true
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(input, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(b.String()) // the same 200 again
	f.Close()
	other, api2 := fastSandbox(t, sandbox.Config{}) // knows none of the first run's tasks
	cfg.API = api2
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if seen := outcomes(t, cfg.Out); len(seen) != 400 {
		t.Fatalf("%d rows in the outputs, want 400", len(seen))
	}
	if n := other.Stats().TasksCreated; n != 200 {
		t.Errorf("the second API created %d tasks for 200 duplicates of gone tasks", n)
	}
}

package job

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// TestRunOutageMidway proves an API that answers every request with 503
// for a while in the middle of a run fails no row: shorter than the outage
// budget, the run waits it out and finishes; longer, it stops with
// ErrUnavailable, rows unsubmitted, and the same command finishes the job
// without paying for any task twice.
func TestRunOutageMidway(t *testing.T) {
	t.Parallel()
	const rows = 1500
	var b strings.Builder
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&b, "https://example.com/down/%d\n", i)
	}
	input := writeFile(t, "in.txt", b.String())
	for _, tt := range []struct {
		name   string
		budget time.Duration
		outage time.Duration // 0: until the run gives up
	}{
		{"shorter than the budget", 10 * time.Second, 400 * time.Millisecond},
		{"longer than the budget", 300 * time.Millisecond, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb, api := fastSandbox(t, sandbox.Config{})
			cfg := testConfig(t, api, input)
			cfg.Batch.Size = 50
			cfg.OutageBudget = tt.budget
			// Down once a third of the tasks exist, so that submissions and
			// polls both meet the outage.
			go func() {
				for sb.Stats().TasksCreated < rows/3 {
					time.Sleep(2 * time.Millisecond)
				}
				sb.SetDown(503)
				if tt.outage > 0 {
					time.Sleep(tt.outage)
					sb.SetDown(0)
				}
			}()
			sum, err := Run(context.Background(), cfg)
			if tt.outage == 0 {
				if !errors.Is(err, decodo.ErrUnavailable) || sum.Outcome != "unavailable" {
					t.Fatalf("outage longer than the budget: err %v, outcome %q; want ErrUnavailable", err, sum.Outcome)
				}
				if !strings.Contains(err.Error(), " left") || !strings.Contains(err.Error(), "since") {
					t.Errorf("the error does not say since when and how many rows are left: %v", err)
				}
				if sum.Failed != 0 {
					t.Fatalf("%d rows failed because of the outage", sum.Failed)
				}
				sb.SetDown(0)
				sum, err = Run(context.Background(), cfg)
			}
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if sum.Failed != 0 || sum.Rejected != 0 {
				t.Errorf("%d failed, %d rejected; want none", sum.Failed, sum.Rejected)
			}
			if seen := outcomes(t, cfg.Out); len(seen) != rows {
				t.Fatalf("%d rows in the outputs, want %d", len(seen), rows)
			}
			st := sb.Stats()
			if st.TasksCreated != rows || st.DuplicateSubmissions != 0 {
				t.Errorf("the API created %d tasks (%d duplicates) for %d rows", st.TasksCreated, st.DuplicateSubmissions, rows)
			}
		})
	}
}

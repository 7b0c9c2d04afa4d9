package job

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// TestRunMaxTasks proves the task budget: the API creates exactly as many
// tasks as the budget allows, resubmissions of faulted tasks included, the
// rows past it fail with class budget, every row is once in the outputs,
// and a rerun with the same budget pays for nothing more.
func TestRunMaxTasks(t *testing.T) {
	t.Parallel()
	const rows, budget = 500, 200
	sb, api := fastSandbox(t, sandbox.Config{FaultRate: 0.1, Seed: 3})
	var b strings.Builder
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&b, "https://example.com/budget/%d\n", i)
	}
	cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
	cfg.Batch.Size = 50
	cfg.MaxTasks = budget
	sum, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrPartial) {
		t.Fatalf("run: %v, want ErrPartial", err)
	}
	if n := sb.Stats().TasksCreated; n != budget {
		t.Errorf("the API created %d tasks under a budget of %d", n, budget)
	}
	if seen := outcomes(t, cfg.Out); len(seen) != rows {
		t.Fatalf("%d rows in the outputs, want %d", len(seen), rows)
	}
	var over int64
	for _, m := range readLines(t, filepath.Join(cfg.Out, "failed.jsonl")) {
		if m["error_class"] == classBudget {
			over++
		}
	}
	if over == 0 || over != sum.OverBudget || sum.Results+over > rows {
		t.Errorf("%d rows failed as budget (summary %d), %d results", over, sum.OverBudget, sum.Results)
	}

	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrPartial) {
		t.Fatalf("rerun: %v, want ErrPartial", err)
	}
	if n := sb.Stats().TasksCreated; n != budget {
		t.Errorf("after a rerun the API created %d tasks under a budget of %d", n, budget)
	}
}

package job

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decodo-batch/decodo-batch/decodo"
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

// TestRunMaxTasksCountsUnknown proves the task budget counts submissions
// of unknown outcome from earlier runs (the API may have created, and
// billed, their tasks): after a run whose batches all met a 500 after the
// API created their tasks, a rerun with a budget pays only for what is
// left of it.
func TestRunMaxTasksCountsUnknown(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&b, "https://example.com/unknown/%d\n", i)
	}
	first, api := fastSandbox(t, sandbox.Config{Batch500AfterCreateRate: 1})
	cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
	cfg.Batch.Size = 10
	cfg.Batch.InFlight = 1
	if _, err := Run(context.Background(), cfg); !errors.Is(err, decodo.ErrUnavailable) {
		t.Fatalf("a run whose every batch meets a 500: %v, want ErrUnavailable", err)
	}
	unknown := first.Stats().TasksCreated
	if unknown == 0 || unknown > 50 {
		t.Fatalf("the first API created %d tasks", unknown)
	}
	second, api2 := fastSandbox(t, sandbox.Config{})
	cfg.API = api2
	cfg.MaxTasks = 50
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrPartial) {
		t.Fatalf("rerun with a budget: %v, want ErrPartial", err)
	}
	if got := second.Stats().TasksCreated; got != 50-unknown {
		t.Errorf("the rerun paid for %d tasks; the budget of 50 less the %d of unknown outcome leaves %d", got, unknown, 50-unknown)
	}
}

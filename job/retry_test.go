package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// TestRunRetryFailed proves --retry-failed: a run with many faulted tasks
// and no retries leaves failed rows; retrying only another class takes
// none back; retrying them against a healthy API puts every one back to
// work and finishes the job: every row once in results, failed.jsonl
// empty, rejects as they were, and the tasks paid for are the first run's
// plus one per failed row.
func TestRunRetryFailed(t *testing.T) {
	t.Parallel()
	for _, codec := range []string{"", "zstd"} {
		t.Run("codec "+codec, func(t *testing.T) {
			t.Parallel()
			const rows = 400
			var b strings.Builder
			for i := 1; i <= rows; i++ {
				fmt.Fprintf(&b, "https://example.com/retry/%d\n", i)
			}
			sick, api := fastSandbox(t, sandbox.Config{FaultRate: 0.3, Seed: 5})
			cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
			cfg.Batch.Size = 50
			cfg.Retries = 0
			cfg.Compress, cfg.Codec = codec != "", codec
			sum, err := Run(context.Background(), cfg)
			if !errors.Is(err, ErrPartial) || sum.Failed == 0 {
				t.Fatalf("first run: %v, %d failed; want failures", err, sum.Failed)
			}
			failed := sum.Failed
			paid := sick.Stats().TasksCreated
			ext := map[string]string{"": "", "zstd": ".zst"}[codec]
			rejects, _ := os.ReadFile(filepath.Join(cfg.Out, "rejects.jsonl"+ext))

			healthy, api2 := fastSandbox(t, sandbox.Config{})
			cfg.API = api2
			cfg.RetryFailed, cfg.RetryClasses = true, []string{"budget"}
			if sum, err = Run(context.Background(), cfg); !errors.Is(err, ErrPartial) || sum.Failed != failed {
				t.Fatalf("retrying class budget only: %v, %d failed; want the %d as they were", err, sum.Failed, failed)
			}
			cfg.RetryClasses = nil
			if sum, err = Run(context.Background(), cfg); err != nil || sum.Failed != 0 || sum.Results != rows {
				t.Fatalf("retrying every failed row: %v, %d failed, %d results", err, sum.Failed, sum.Results)
			}
			if codec == "" {
				if seen := outcomes(t, cfg.Out); len(seen) != rows {
					t.Fatalf("%d rows in the outputs, want %d", len(seen), rows)
				}
				if st, _ := os.Stat(filepath.Join(cfg.Out, "failed.jsonl")); st.Size() != 0 {
					t.Errorf("failed.jsonl is %d bytes, want empty", st.Size())
				}
			}
			if got := int64(healthy.Stats().TasksCreated); got != failed {
				t.Errorf("the retry paid for %d tasks, want %d (the failed rows; the first run paid %d)", got, failed, paid)
			}
			if after, _ := os.ReadFile(filepath.Join(cfg.Out, "rejects.jsonl"+ext)); string(after) != string(rejects) {
				t.Error("rejects changed")
			}
		})
	}
}

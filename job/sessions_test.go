package job

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// TestRunShortSessionsProgress proves a chain of short sessions gets
// through faulted tasks as one long run would: each session is too short
// for the three looks after which a long-pending task's status is checked,
// so only the looks journaled by earlier sessions get a faulted task found
// and submitted again.
func TestRunShortSessionsProgress(t *testing.T) {
	t.Parallel()
	const rows = 600
	sb, api := fastSandbox(t, sandbox.Config{FaultRate: 0.05, Seed: 11})
	var b strings.Builder
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&b, "https://example.com/short/%d\n", i)
	}
	cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
	cfg.Batch.Size = 100
	cfg.Poll.MaxGap = 250 * time.Millisecond
	cfg.MaxRuntime = 400 * time.Millisecond
	var err error
	sessions := 0
	for sessions = 1; sessions <= 40; sessions++ {
		if _, err = Run(context.Background(), cfg); !errors.Is(err, ErrStopped) {
			break
		}
	}
	if err != nil {
		t.Fatalf("after %d sessions: %v", sessions, err)
	}
	if seen := outcomes(t, cfg.Out); len(seen) != rows {
		t.Fatalf("%d rows in the outputs, want %d", len(seen), rows)
	}
	st := sb.Stats()
	t.Logf("%d sessions; %d tasks created, %d faulted", sessions, st.TasksCreated, st.TasksFaulted)
	if st.TasksFaulted == 0 {
		t.Error("no task faulted: the test proves nothing")
	}
}

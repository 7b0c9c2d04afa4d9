package job

import (
	"fmt"
	"slices"
	"time"

	"github.com/decodo-batch/decodo-batch/batcher"
	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/results"
)

// Error classes of failed rows: what --retry-failed takes.
var Classes = []string{"faulted", "expired", "lost", "unknown", "budget"}

// retake puts the failed rows of the classes cfg asks for back to work
// before the outputs are opened: failed.jsonl is rewritten without their
// lines, the journal records them as not done (the commit point), and the
// rewrite takes the file's place; the run then submits them like rows
// never seen. It first finishes or undoes a retake a crash interrupted.
// It returns the number of rows taken back.
//
// It also returns how many failed rows, taken back or not, are of class
// unknown: their submissions may have been paid for, which a task budget
// must count (only when there is one: it reads failed.jsonl).
func retake(cfg *Config, j *checkpoint.Journal, codec string) (taken int, unknown int64, err error) {
	st := j.State()
	if err := results.RecoverRetake(cfg.Out, codec, st.Reopened); err != nil {
		return 0, 0, err
	}
	if cfg.MaxTasks > 0 {
		err := results.ScanFailed(cfg.Out, codec, st.Offsets.Failed, func(l results.FailedLine) {
			if l.Class == batcher.ClassUnknown && l.DuplicateOf == 0 { // a follower paid nothing
				unknown++
			}
		})
		if err != nil {
			return 0, 0, fmt.Errorf("task budget: %w", err)
		}
	}
	if !cfg.RetryFailed {
		return 0, unknown, nil
	}
	take := func(l results.FailedLine) bool {
		return len(cfg.RetryClasses) == 0 || slices.Contains(cfg.RetryClasses, l.Class)
	}
	rows, size, token, err := results.Retake(cfg.Out, codec, st.Offsets.Failed, take)
	if err != nil || len(rows) == 0 {
		return 0, unknown, err
	}
	if err := j.Reopen(time.Now(), rows, size, token); err != nil {
		return 0, 0, fmt.Errorf("checkpoint: %w", err)
	}
	return len(rows), unknown, results.CommitRetake(cfg.Out, codec, token)
}

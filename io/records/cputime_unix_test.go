//go:build unix

package records

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time, user and system, that the process has used:
// on a loaded machine it measures the work a benchmark does where wall
// time measures the queue it waited in.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

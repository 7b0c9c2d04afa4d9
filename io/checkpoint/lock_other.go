//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package checkpoint

import (
	"errors"
	"fmt"
	"os"
)

// lock fails where flock is not available: without the lock two runs could
// write one journal.
func lock(name string) (*os.File, error) {
	return nil, fmt.Errorf("lock %s: %w", name, errors.ErrUnsupported)
}

func unlock(f *os.File) error { return f.Close() }

//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package checkpoint

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lock takes an exclusive flock on name without waiting and writes our pid
// into it. The lock belongs to the open file, so a second lock in the same
// process fails as one in another process does. Errors: *[LockedError] when
// another holds it, else the error of opening or locking.
func lock(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			// The holder may not have written its pid yet: then PID is 0
			// or a stale one. It is for the message only.
			b := make([]byte, 32)
			n, _ := f.ReadAt(b, 0)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:n])))
			return nil, &LockedError{Path: name, PID: pid}
		}
		return nil, &os.PathError{Op: "flock", Path: name, Err: err}
	}
	// The file is never removed: removing it would let a second run lock a
	// new file of the same name while a third still holds the old one.
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		unlock(f)
		return nil, err
	}
	return f, nil
}

func unlock(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

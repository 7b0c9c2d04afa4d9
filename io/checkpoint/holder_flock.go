//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package checkpoint

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Holder reports whether a run holds the lock on the journal at path now,
// and the holder's pid when it is known (0 otherwise), without taking the
// lock from anyone: on Linux it looks the lock file up in /proc/locks.
// Elsewhere it tries a shared lock for an instant, which a run starting at
// that very instant would find held (it then exits as if another run held
// the lock). Errors: those of opening or locking the lock file; a missing
// lock file is not held, not an error.
func Holder(path string) (pid int, held bool, err error) {
	name := path + ".lock"
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("lock of %s: %w", path, err)
	}
	defer f.Close()
	filePID := readPID(f)
	fi, err := f.Stat()
	if err != nil {
		return 0, false, fmt.Errorf("lock of %s: %w", path, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if pid, held, ok := procLocks(locksTable, uint64(st.Dev), uint64(st.Ino)); ok {
			if held && pid <= 0 {
				pid = filePID
			}
			return pid, held, nil
		}
	}
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); {
	case err == nil:
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0, false, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		return filePID, true, nil
	default:
		return 0, false, &os.PathError{Op: "flock", Path: name, Err: err}
	}
}

// locksTable is Linux's table of file locks (a variable for tests).
var locksTable = "/proc/locks"

// readPID reads the pid a run wrote into its lock file, or 0.
func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	return pid
}

// procLocks looks for a granted flock on the file dev:ino in the Linux
// file locks table at path, whose lines read like
//
//	1: FLOCK  ADVISORY  WRITE 27517 fe:00:9997882 0 EOF
//
// (device major and minor in hex, the inode in decimal; a waiter's line
// has "->" after the number). It returns the holder's pid; ok is false when
// the table cannot be read.
func procLocks(path string, dev, ino uint64) (pid int, held, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, false
	}
	defer f.Close()
	// The device numbers as glibc encodes them in st_dev.
	major := (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff)
	minor := dev&0xff | (dev>>12)&^uint64(0xff)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" {
			continue // a waiter ("->"), or a POSIX lock
		}
		id := strings.Split(fields[5], ":")
		if len(id) != 3 {
			continue
		}
		ma, err1 := strconv.ParseUint(id[0], 16, 64)
		mi, err2 := strconv.ParseUint(id[1], 16, 64)
		in, err3 := strconv.ParseUint(id[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || ma != major || mi != minor || in != ino {
			continue
		}
		pid, _ = strconv.Atoi(fields[4])
		return pid, true, true
	}
	if sc.Err() != nil {
		return 0, false, false
	}
	return 0, false, true
}

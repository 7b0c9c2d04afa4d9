//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package checkpoint

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHolder proves Holder tells a held lock and its holder's pid, a lock
// released, and a job never run, with the lock table and with the probe
// that stands in for it where there is none; and that it does not take the
// lock from the run holding it.
func TestHolder(t *testing.T) {
	// Not parallel: it swaps locksTable.
	for _, table := range []string{locksTable, "/nonexistent/locks"} {
		t.Run(table, func(t *testing.T) {
			old := locksTable
			locksTable = table
			defer func() { locksTable = old }()
			path := journalPath(t)
			if pid, held, err := Holder(path); err != nil || held || pid != 0 {
				t.Fatalf("no journal: pid %d held %v err %v; want not held", pid, held, err)
			}
			j := mustOpen(t, path, testHeader, false)
			pid, held, err := Holder(path)
			if err != nil || !held || pid != os.Getpid() {
				t.Fatalf("held: pid %d held %v err %v; want held by %d", pid, held, err, os.Getpid())
			}
			// The run still holds it: a second Open is refused.
			if _, err := Open(path, testHeader, false); err == nil {
				t.Fatal("Holder took the lock from its holder")
			}
			must(t, j.Close())
			if pid, held, err := Holder(path); err != nil || held {
				t.Fatalf("released: pid %d held %v err %v; want not held", pid, held, err)
			}
		})
	}
}

// TestProcLocks proves the reading of the lock table: the granted flock of
// the file's device and inode is found with its pid; a waiter, a POSIX
// lock and another file's lock are not it.
func TestProcLocks(t *testing.T) {
	t.Parallel()
	dev := uint64(0xfe<<8 | 0x01) // fe:01
	table := "1: POSIX  ADVISORY  WRITE 11 fe:01:42 0 EOF\n" +
		"2: FLOCK  ADVISORY  WRITE 22 fe:01:43 0 EOF\n" +
		"3: FLOCK  ADVISORY  WRITE 33 fe:02:42 0 EOF\n" +
		"4: -> FLOCK  ADVISORY  WRITE 44 fe:01:42 0 EOF\n"
	p := filepath.Join(t.TempDir(), "locks")
	must(t, os.WriteFile(p, []byte(table), 0o644))
	if pid, held, ok := procLocks(p, dev, 42); !ok || held {
		t.Fatalf("no granted flock of fe:01:42: pid %d held %v ok %v", pid, held, ok)
	}
	must(t, os.WriteFile(p, []byte(table+"5: FLOCK  ADVISORY  WRITE 55 fe:01:42 0 EOF\n"), 0o644))
	if pid, held, ok := procLocks(p, dev, 42); !ok || !held || pid != 55 {
		t.Fatalf("granted flock of fe:01:42: pid %d held %v ok %v; want 55", pid, held, ok)
	}
	if _, _, ok := procLocks(filepath.Join(t.TempDir(), "none"), dev, 42); ok {
		t.Fatal("a missing table read as ok")
	}
}

// Package durable makes files and their names survive a power cut: every
// fsync of a file or a directory goes through [Sync] and [SyncDir], and
// creating or renaming a file syncs the directory that holds its name.
//
// A written byte is on disk only after its file's fsync; a new or renamed
// name only after its directory's. The journal vouches for output bytes,
// so both must have happened before it does.
//
// Every fsync passes through one seam, [SetHook], so that a test can see
// them in order and stop a run at any one of them.
package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Hook is called before every fsync with the path of the file or directory
// (dir true) about to be synced; an error it returns is returned instead of
// syncing.
type Hook func(path string, dir bool) error

var hook atomic.Pointer[Hook]

// SetHook installs h for every later fsync of the process (nil removes it)
// and returns a function that puts back the previous one. For tests.
func SetHook(h Hook) (restore func()) {
	var p *Hook
	if h != nil {
		p = &h
	}
	old := hook.Swap(p)
	return func() { hook.Store(old) }
}

func callHook(path string, dir bool) error {
	if h := hook.Load(); h != nil {
		return (*h)(path, dir)
	}
	return nil
}

// Sync fsyncs f.
func Sync(f *os.File) error {
	if err := callHook(f.Name(), false); err != nil {
		return err
	}
	return f.Sync()
}

// SyncDir fsyncs the directory dir, which makes the names in it durable.
func SyncDir(dir string) error {
	if err := callHook(dir, true); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// MkdirAll creates dir and any missing parents, and syncs the parent of
// each directory it creates, so that they survive a power cut. The parent
// of dir is synced even when dir exists: an earlier run may have died
// between creating it and syncing.
func MkdirAll(dir string) error {
	dir = filepath.Clean(dir)
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: fs.ErrExist}
		}
	} else if err := mkdirs(dir); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(dir))
}

// mkdirs creates dir and its missing parents, syncing the parent of each
// but dir's, which MkdirAll syncs.
func mkdirs(dir string) error {
	parent := filepath.Dir(dir)
	if _, err := os.Stat(parent); err != nil && parent != dir {
		if err := mkdirs(parent); err != nil {
			return err
		}
		if err := SyncDir(filepath.Dir(parent)); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// OpenFile opens path for reading and writing, creating it if it does not
// exist, and syncs its directory before it returns: the name is durable
// even if an earlier run that created it died before syncing it.
func OpenFile(path string, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, perm)
	if err != nil {
		return nil, err
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReplaceFile writes data to path+".tmp", fsyncs it, renames it over path
// and syncs the directory, so that path holds either what it held or all
// of data. It returns the new file, open for reading and writing. If only
// the directory sync (or reopening the file under its name) failed, it
// returns the file and the error: the rename happened, but may not survive
// a power cut.
func ReplaceFile(path string, data []byte, perm fs.FileMode) (*os.File, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return nil, err
	}
	if _, err = f.Write(data); err == nil {
		if err = Sync(f); err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	// Opened again under its name, so that errors and the fsync seam
	// name the file as it is now. If that fails, the file is in place all
	// the same: return it, open under its old name, with the error.
	nf, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return f, err
	}
	f.Close()
	return nf, SyncDir(filepath.Dir(path))
}

// WriteFile replaces path with data durably, as [ReplaceFile] does, and
// closes it.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := ReplaceFile(path, data, perm)
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

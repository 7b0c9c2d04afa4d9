package durable

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestSyncs proves which fsyncs the durable operations make: every
// directory whose entries changed is synced, and an existing name's
// directory too (an earlier run may have died before syncing it).
func TestSyncs(t *testing.T) {
	root := t.TempDir()
	var mu sync.Mutex
	var got []string
	restore := SetHook(func(path string, dir bool) error {
		mu.Lock()
		defer mu.Unlock()
		rel, _ := filepath.Rel(root, path)
		if dir {
			rel += "/"
		}
		got = append(got, rel)
		return nil
	})
	defer restore()
	check := func(what string, want ...string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(got) != len(want) {
			t.Fatalf("%s: fsyncs %q, want %q", what, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: fsyncs %q, want %q", what, got, want)
			}
		}
		got = nil
	}
	if err := MkdirAll(filepath.Join(root, "a", "b")); err != nil {
		t.Fatal(err)
	}
	check("MkdirAll of two new directories", "./", "a/")
	if err := MkdirAll(filepath.Join(root, "a", "b")); err != nil {
		t.Fatal(err)
	}
	check("MkdirAll of an existing one", "a/")
	f, err := OpenFile(filepath.Join(root, "a", "b", "f"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	check("OpenFile", "a/b/")
	f, err = ReplaceFile(filepath.Join(root, "a", "r"), []byte("x"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != filepath.Join(root, "a", "r") {
		t.Errorf("ReplaceFile's file is named %s", f.Name())
	}
	if err := Sync(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	check("ReplaceFile then Sync", "a/r.tmp", "a/", "a/r")
	if data, _ := os.ReadFile(filepath.Join(root, "a", "r")); string(data) != "x" {
		t.Errorf("replaced file holds %q", data)
	}
}

package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestSaveLoad proves a sandbox started again from a saved state knows the
// tasks of the first one (their status and results, their outcomes and
// times), goes on counting where it stopped, and counts an item submitted
// in both lives as a duplicate.
func TestSaveLoad(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	path := filepath.Join(t.TempDir(), "sandbox-state")
	cfg := Config{Now: clk.Now, Delay: Delay{Kind: Fixed, Fixed: 5 * time.Second}, FaultRate: 0.3, Seed: 7}
	s1, base1 := start(t, cfg)
	a := call(t, "POST", base1+"/v3/task/batch", testToken, map[string]any{"url": []string{"https://a.example/1", "https://a.example/2", "https://a.example/3"}})
	if a.status != 200 {
		t.Fatalf("batch: %d %s", a.status, a.body)
	}
	single := submitOne(t, base1, map[string]any{"url": "https://a.example/4", "geo": "US"})
	clk.Advance(10 * time.Second)
	before := call(t, "GET", base1+"/v3/task/"+single, testToken, nil)
	if err := s1.Save(path); err != nil {
		t.Fatal(err)
	}
	st1 := s1.Stats()

	cfg.Seed = 0 // the saved seed is taken
	s2, base2 := start(t, cfg)
	if ok, err := s2.Load(path); !ok || err != nil {
		t.Fatalf("Load: %v, %v", ok, err)
	}
	after := call(t, "GET", base2+"/v3/task/"+single, testToken, nil)
	if after.status != 200 || string(after.body) != string(before.body) {
		t.Fatalf("the task after a restart: %d %s\nbefore: %s", after.status, after.body, before.body)
	}
	if r := call(t, "GET", base2+"/v3/task/"+single+"/results", testToken, nil); r.status == 404 {
		t.Fatalf("results of a saved task: 404")
	}
	st2 := s2.Stats()
	if st2.TasksCreated != 4 || st2.TasksDone+st2.TasksFaulted != 4 || st2.Items != 4 || st2.DuplicateSubmissions != 0 ||
		st2.Batches != st1.Batches || st2.TasksFaulted != st1.TasksFaulted {
		t.Fatalf("stats after a restart: %+v\nbefore: %+v", st2, st1)
	}
	if s2.cfg.Seed != 7 {
		t.Errorf("seed %d, want the saved 7", s2.cfg.Seed)
	}
	// The same item again: paid twice, and the new life knows it.
	submitOne(t, base2, map[string]any{"url": "https://a.example/4", "geo": "US"})
	submitOne(t, base2, map[string]any{"url": "https://a.example/4", "geo": "US"})
	if err := s2.Save(path); err != nil {
		t.Fatal(err)
	}
	st3, err := ReadStats(path)
	if err != nil {
		t.Fatal(err)
	}
	if st3.TasksCreated != 6 || st3.DuplicateSubmissions != 2 || len(st3.Duplicates) != 1 {
		t.Fatalf("stats of the saved state: created %d, duplicates %d %v", st3.TasksCreated, st3.DuplicateSubmissions, st3.Duplicates)
	}
	for item, n := range st3.Duplicates {
		if n != 3 || item != `universal url {"geo":"US"} https://a.example/4` {
			t.Errorf("duplicate %q: %d tasks, want 3", item, n)
		}
	}
	// A third life: the duplicates survive a second save and load.
	s4, _ := start(t, Config{Now: clk.Now})
	if _, err := s4.Load(path); err != nil {
		t.Fatal(err)
	}
	if st := s4.Stats(); st.DuplicateSubmissions != 2 || st.Duplicates[`universal url {"geo":"US"} https://a.example/4`] != 3 {
		t.Errorf("third life: %d duplicates %v", st.DuplicateSubmissions, st.Duplicates)
	}
	if ok, err := New(Config{}).Load(filepath.Join(t.TempDir(), "none")); ok || err != nil {
		t.Errorf("a missing state: %v, %v; want a new sandbox", ok, err)
	}
}

// BenchmarkSave measures saving and loading the state of a sandbox that
// holds 300,000 tasks (a run of that many rows), and how long requests
// wait while it is copied.
func BenchmarkSave(b *testing.B) {
	s := New(Config{BatchInterval: -1})
	defer s.Close()
	for i := range 100 {
		urls := make([]string, 3000)
		for j := range urls {
			urls[j] = fmt.Sprintf("https://shop.example.com/item/%d/%d?ref=abc", i, j)
		}
		body, _ := json.Marshal(map[string]any{"url": urls, "geo": "US"})
		sub, e := s.parse(body, true)
		if e != nil {
			b.Fatal(e.message)
		}
		s.create(time.Now(), sub, true)
	}
	path := filepath.Join(b.TempDir(), "state")
	var copyTime time.Duration
	for b.Loop() {
		t := time.Now()
		s.snapshot()
		copyTime += time.Since(t)
		if err := s.Save(path); err != nil {
			b.Fatal(err)
		}
		s2 := New(Config{})
		if _, err := s2.Load(path); err != nil {
			b.Fatal(err)
		}
	}
	fi, _ := os.Stat(path)
	b.ReportMetric(float64(fi.Size())/1e6, "MB")
	b.ReportMetric(float64(copyTime.Milliseconds())/float64(b.N), "ms-locked/op")
}

// TestStateKeepsEveryField fails when a field is added to a task, a group
// or the counters without deciding how the saved state keeps it (list it
// here once state.go saves and loads it, or says why it need not).
func TestStateKeepsEveryField(t *testing.T) {
	t.Parallel()
	kept := map[string][]string{
		"task":  {"group", "input", "due", "code", "faulted", "served", "pages"},
		"group": {"created", "createdAt", "target", "input", "params", "item", "itemHash", "pageCount", "headless", "parse", "markdown", "callback"},
		"counters": {"requests", "created", "done", "faulted", "batches", "firstCreated", "lastDue", "due", "waits", "batchTimes",
			"callbacksSent", "callbacksFailed", "callbacksSkipped", "callbacksLost", "callbacksDuplicated", "singles", "truncated",
			"batch500s", "items", "dups", "duplicates"},
	}
	for _, v := range []any{task{}, group{}, counters{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			if name := typ.Field(i).Name; !slices.Contains(kept[typ.Name()], name) {
				t.Errorf("%s.%s is new: save and load it in state.go, then list it here", typ.Name(), name)
			}
		}
	}
}

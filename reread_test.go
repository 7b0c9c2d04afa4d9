package main

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// jsonLines reads the JSON objects of a JSONL output file, gzip or not.
func jsonLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	var out []map[string]any
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

// request is what a row asks for, as an output line tells it.
func request(m map[string]any) string {
	b, _ := json.Marshal([]any{m["id"], m["target"], m["url"], m["query"], m["prompt"], m["product_id"], m["params"]})
	return string(b)
}

// TestOutputFedBack is `run OUT/failed.jsonl -o other` end to end: a run
// whose batch POSTs answer 500 after the API took them leaves failed rows
// (class unknown); their failed.jsonl
// (plain, and gzip with --compress) run into another OUT gives one result
// per failed row asking exactly what the row asked (id, target, input,
// parameters), and results.jsonl fed back does the same for the results.
// A rejects line refused by the API reads back as its row, with its target.
func TestOutputFedBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var b strings.Builder
	for i := 1; i <= 90; i++ {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, `{"id":"q%d","target":"google_search","query":"coffee %d","geo":"Germany","parse":true}`+"\n", i, i)
		case 1:
			fmt.Fprintf(&b, `{"id":"u%d","url":"https://example.com/%d","headers":{"X-Test":"1"},"device_type":"mobile"}`+"\n", i, i)
		default:
			fmt.Fprintf(&b, `{"id":"p%d","target":"chatgpt","prompt":"say %d"}`+"\n", i, i)
		}
	}
	b.WriteString(`{"id":"refused","target":"amazon","url":"https://example.com/sandbox-invalid","geo":"Spain"}` + "\n")
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(b.String()), 0o644)

	for _, compress := range []bool{false, true} {
		out := filepath.Join(dir, fmt.Sprintf("out-%v", compress))
		ext := ".jsonl"
		args := []string{"run", "--sandbox", "--sandbox-args", "--delay 10ms --batch-500-after-create-rate 0.3 --seed 5 --batch-interval 20ms", "--batch-interval", "20ms", "--batch-size", "5", "--task-rate", "200", "--progress", "none"}
		if compress {
			args = append(args, "--compress")
			ext += ".gz"
		}
		code, _, stderr := runCLI(t, append(args, in, "-o", out)...)
		if code != exitPartial {
			t.Fatalf("first run: exit %d, want 3 (faulted rows): %s", code, stderr)
		}
		names := []string{"failed", "results"}
		if compress {
			names = names[:1] // reading .gz is the same for both
		}
		for _, name := range names {
			src := filepath.Join(out, name+ext)
			want := map[string]bool{}
			for _, m := range jsonLines(t, src) {
				want[request(m)] = true
			}
			if len(want) == 0 {
				t.Fatalf("%s is empty: nothing to feed back", src)
			}
			other := filepath.Join(dir, fmt.Sprintf("other-%s-%v", name, compress))
			code, _, stderr := runCLI(t, "run", "--sandbox", "--sandbox-args", "--delay 10ms --batch-interval 20ms", "--batch-interval", "20ms", "--task-rate", "200", "--progress", "none", src, "-o", other)
			if code != exitOK {
				t.Fatalf("run %s: exit %d, want 0: %s", src, code, stderr)
			}
			got := jsonLines(t, filepath.Join(other, "results.jsonl"))
			if len(got) != len(want) {
				t.Fatalf("run %s: %d results, want %d", src, len(got), len(want))
			}
			for _, m := range got {
				if !want[request(m)] {
					t.Fatalf("run %s: a result asks %s, which no line of the file asked", src, request(m))
				}
			}
		}
		// The row the API refused reads back as its row, target and all:
		// refused again, with its id and the same reason.
		src := filepath.Join(out, "rejects"+ext)
		other := filepath.Join(dir, fmt.Sprintf("other-rejects-%v", compress))
		code, _, stderr = runCLI(t, "run", "--sandbox", "--sandbox-args", "--delay 10ms --batch-interval 20ms", "--batch-interval", "20ms", "--progress", "none", src, "-o", other)
		if code != exitPartial {
			t.Fatalf("run %s: exit %d, want 3: %s", src, code, stderr)
		}
		rej := jsonLines(t, filepath.Join(other, "rejects.jsonl"))
		if len(rej) != 1 || rej[0]["id"] != "refused" || !strings.Contains(rej[0]["error"].(string), "refused by the API") || !strings.Contains(rej[0]["input"].(string), `"target":"amazon"`) {
			t.Fatalf("the refused row fed back: %v", rej)
		}
	}
}

package records

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/results"
)

func TestOutputLinesAreInputLines(t *testing.T) {
	t.Parallel()
	runReadCases(t, "jsonl", []readCase{
		{
			name: "a results line: target, input and params; the site's headers and cookies and the output's keys are ignored",
			input: `{"row":7,"line":9,"id":"k1","target":"universal","url":"https://a.com","params":{"geo":"Germany","headers":{"X-A":"1"}},` +
				`"task_id":"123","status_code":200,"headers":{"content-type":"text/html"},"cookies":{"sid":"x"},"content":"<html>","attempts":1,"fetched_at":"2025-01-01T00:00:00Z"}` + "\n",
			want: []string{`row 1 line 1: universal url=https://a.com id=k1 {"geo":"Germany","headers":{"X-A":"1"}}`},
		},
		{
			name: "a results line of several pages, with content files and duplicate_of",
			input: `{"row":1,"line":2,"target":"google_search","query":"q","params":{"page_count":2,"parse":true},"task_id":"9","status_code":200,` +
				`"pages":[{"status_code":200,"headers":{},"content":{}},{"status_code":200,"content":{}}],"content_file":"content/0/1.json","content_bytes":3,"content_sha256":"ab","attempts":2,"fetched_at":"x","duplicate_of":1}` + "\n",
			want: []string{`row 1 line 1: google_search query=q {"page_count":2,"parse":true}`},
		},
		{
			name: "a failed line, with and without params; its headers key never becomes a parameter",
			input: `{"row":3,"line":4,"id":"a","target":"chatgpt","prompt":"hi","params":{"search":true},"task_id":"5","error_class":"faulted","error":"task faulted 3 times","attempts":3}` + "\n" +
				`{"row":4,"line":5,"target":"universal","url":"https://b.com","error_class":"unknown","error":"x","attempts":1,"headers":{"Z":"1"}}` + "\n",
			want: []string{
				`row 1 line 1: chatgpt prompt=hi id=a {"search":true}`,
				`row 2 line 2: universal url=https://b.com`,
			},
		},
		{
			name:  "the defaults of this run apply under the line's params",
			input: `{"row":1,"line":1,"target":"universal","url":"https://a.com","params":{"geo":"Germany"},"error":"x"}` + "\n",
			opt:   Options{Defaults: `{"device_type":"mobile","geo":"France"}`},
			want:  []string{`row 1 line 1: universal url=https://a.com {"device_type":"mobile","geo":"Germany"}`},
		},
		{
			name: "a rejects line is read as the line it was: a JSON object, a URL; its id is kept",
			input: `{"row":1,"line":2,"id":"r1","error":"refused by the API: x","input":"{\"id\":\"r1\",\"target\":\"google_search\",\"query\":\"q\",\"geo\":\"Germany\"}"}` + "\n" +
				`{"row":2,"line":3,"id":"r2","error":"page_count: 11 is out of range 1-10","input":"{\"url\":\"https://c.com\"}"}` + "\n" +
				`{"row":3,"line":4,"error":"url has no host","input":"  https://d.com/x  "}` + "\n" +
				`{"row":4,"line":5,"error":"x","input":"{\"row\":1,\"line\":1,\"target\":\"universal\",\"url\":\"https://e.com\",\"params\":{\"geo\":\"Spain\"},\"error\":\"y\"}"}` + "\n",
			want: []string{
				`row 1 line 1: google_search query=q id=r1 {"geo":"Germany"}`,
				`row 2 line 2: universal url=https://c.com id=r2`,
				`row 3 line 3: universal url=https://d.com/x`,
				`row 4 line 4: universal url=https://e.com {"geo":"Spain"}`,
			},
		},
		{
			name: "a rejects line still bad on its own, or whose input cannot be read back, is a bad row that says why",
			input: `{"row":1,"line":2,"error":"x","input":"{\"url\":\"ftp://c.com\"}"}` + "\n" +
				`{"row":2,"line":3,"error":"x","input":"https://a.com,desktop"}` + "\n" +
				`{"row":3,"line":4,"error":"x","input":"just a query"}` + "\n" +
				`{"row":4,"line":5,"error":"x","input":7}` + "\n",
			want: []string{
				`row 1 line 1: ERROR url is not http(s): "ftp://c.com"`,
				`row 2 line 2: ERROR a rejects line whose input is neither a JSON object nor a URL (a CSV record, without its header?) cannot be read back: correct the row in the original input`,
				`row 3 line 3: ERROR a rejects line whose input is neither a JSON object nor a URL (a CSV record, without its header?) cannot be read back: correct the row in the original input`,
				`row 4 line 4: ERROR input: want a string, got a number`,
			},
		},
		{
			name: "in an output line, parameters belong in params, and params are checked like any",
			input: `{"row":1,"line":1,"target":"universal","url":"https://a.com","geo":"Germany","error":"x"}` + "\n" +
				`{"row":2,"line":2,"target":"universal","url":"https://a.com","params":{"gep":"Germany"},"error":"x"}` + "\n" +
				`{"row":3,"line":3,"target":"universal","url":"https://a.com","params":"geo=Germany","error":"x"}` + "\n" +
				`{"row":4,"line":4,"target":"universal","url":"https://a.com","params":{"geo":5},"error":"x"}` + "\n" +
				`{"row":5,"line":5,"target":"universal","url":"https://a.com","params":{"target":"bing"},"error":"x"}` + "\n",
			want: []string{
				`row 1 line 1: ERROR key "geo" in a line of decodo-batch's output: its parameters go in "params"`,
				`row 2 line 2: ERROR params: unknown parameter "gep" (did you mean geo?)`,
				`row 3 line 3: ERROR params: want a JSON object, got a string`,
				`row 4 line 4: ERROR geo: want a string, got a number`,
				`row 5 line 5: ERROR params: target is not a parameter: it belongs beside params`,
			},
		},
		{
			name:  "an input line without output keys keeps headers and cookies as parameters",
			input: `{"url":"https://a.com","headers":{"A":"1"},"cookies":{"c":"2"}}` + "\n",
			want:  []string{`row 1 line 1: universal url=https://a.com {"cookies":{"c":"2"},"headers":{"A":"1"}}`},
		},
	})
}

// TestOutputRoundTrip writes rows with package results, as a run does, and
// reads every file back: each line is its row again (target, input field,
// parameters, id), whatever the output added.
func TestOutputRoundTrip(t *testing.T) {
	t.Parallel()
	in := `{"id":"a","url":"https://a.com/x?q=1","headers":{"User-Agent":"x"},"geo":"Germany"}` + "\n" +
		`{"id":"b","target":"google_search","query":"café \"q\"","page_count":3,"parse":true}` + "\n" +
		`{"target":"chatgpt","prompt":"line one\nline two","search":true}` + "\n" +
		`{"id":"d","target":"walmart_product","product_id":"123","delivery_zip":"10001"}` + "\n" +
		`{"target":"universal_ecommerce","id":"e","url":null}` + "\n"
	recs := readRecords(t, "in.jsonl", in, Options{})
	if len(recs) != 5 {
		t.Fatalf("read %d records, want 5", len(recs))
	}
	for _, compress := range []string{"", results.Gzip} {
		dir := t.TempDir()
		w, err := results.Open(dir, results.Options{Compress: compress}, checkpoint.Offsets{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range recs {
			rec := &recs[i]
			row := results.Row{Row: rec.Row, Line: rec.Line, ID: rec.ID, Target: rec.Target, Params: string(rec.Params)}
			if f, v := rec.Input(); v != "" {
				row.Field, row.Input = f.String(), v
			}
			page := results.Page{StatusCode: 200, Headers: []byte(`{"content-type":"text/html","geo":"x"}`), Cookies: []byte(`{"sid":"1"}`), Content: []byte(`"<p>"`)}
			must(t, w.Result(&results.Result{Row: row, TaskID: "77", Pages: []results.Page{page, page}, Attempts: 2, FetchedAt: time.Now()}))
			must(t, w.Failed(&results.Failure{Row: row, TaskID: "78", Class: "faulted", Error: "faulted", Attempts: 3}))
			must(t, w.Reject(&results.Reject{Row: rec.Row, Line: rec.Line, ID: rec.ID, Error: "refused by the API: x", Input: rec.JSONL()}))
		}
		must(t, w.Close())
		for _, name := range []string{results.ResultsFile, results.FailedFile, results.RejectsFile} {
			if compress != "" {
				name += ".gz"
			}
			data, err := os.ReadFile(filepath.Join(dir, name))
			must(t, err)
			got := readRecords(t, name, string(data), Options{})
			if len(got) != len(recs) {
				t.Fatalf("%s: read %d records back, want %d", name, len(got), len(recs))
			}
			for i := range got {
				g, w := got[i], recs[i]
				g.Row, g.Line, w.Row, w.Line = 0, 0, 0, 0
				if g != w {
					t.Errorf("%s line %d reads as %+v, want %+v", name, i+1, g, w)
				}
			}
		}
	}
}

// TestOpenOutputFile reads a failed.jsonl.gz by its name, as
// `run OUT/failed.jsonl.gz` does.
func TestOpenOutputFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "failed.jsonl.gz")
	must(t, os.WriteFile(path, gz(t, `{"row":9,"line":10,"target":"universal","url":"https://a.com","params":{"geo":"Germany"},"task_id":"1","error_class":"lost","error":"x","attempts":3}`+"\n"), 0o644))
	r, err := Open(path, Options{})
	must(t, err)
	defer r.Close()
	rec, err := r.Next()
	must(t, err)
	if rec.URL != "https://a.com" || rec.Params != `{"geo":"Germany"}` || rec.Row != 1 {
		t.Errorf("read %+v", rec)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("second Next: %v, want io.EOF", err)
	}
}

func readRecords(t *testing.T, name, data string, opt Options) []Record {
	t.Helper()
	r, err := NewReader(strings.NewReader(data), name, opt)
	must(t, err)
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return recs
		}
		var re *RowError
		if errors.As(err, &re) {
			t.Fatalf("%s: %v", name, err)
		}
		must(t, err)
		recs = append(recs, rec)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

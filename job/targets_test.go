package job

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// TestRunEveryInputField proves a mixed input of url, query, prompt and
// product_id rows across a dozen targets, with parameters only the SDK's
// tables list, ends with every row in results exactly once: url and query
// rows in batches, the others as single tasks; a parameter its target does
// not take is rejected with the nearest name, and an allowed one passes.
func TestRunEveryInputField(t *testing.T) {
	t.Parallel()
	sb, api := fastSandbox(t, sandbox.Config{AllowUnknownParams: true})
	rows := []string{
		`{"id":"u1","url":"https://example.com/a","xhr":true}`,
		`{"id":"u2","url":"https://example.com/b","target":"universal","headers":{"X-A":"1"}}`,
		`{"id":"g1","target":"google","url":"https://www.google.com/search?q=x","page_count":2}`,
		`{"id":"q1","target":"google_search","query":"coffee","google_results_language":"de","parse":true}`,
		`{"id":"q2","target":"bing_search","query":"tea"}`,
		`{"id":"q3","target":"amazon_search","query":"kettle","page_from":2}`,
		`{"id":"q4","target":"youtube_search","query":"cats","hd":true}`,
		`{"id":"q5","target":"walmart_search","query":"mug"}`,
		`{"id":"p1","target":"chatgpt","prompt":"Say hi"}`,
		`{"id":"p2","target":"perplexity","prompt":"What is Go?"}`,
		`{"id":"p3","target":"gemini","prompt":"Name a river"}`,
		`{"id":"i1","target":"walmart_product","product_id":"123456","delivery_zip":"10001"}`,
		`{"id":"i2","target":"target_product","product_id":"A-98765"}`,
		`{"id":"n1","target":"universal_ecommerce"}`,
		`{"id":"x1","target":"google_search","query":"x","xhr_mode":true}`,
		`{"id":"a1","target":"google_search","query":"allowed","brand_new_param":"yes"}`,
	}
	cfg := testConfig(t, api, writeFile(t, "in.jsonl", strings.Join(rows, "\n")+"\n"))
	cfg.Records.AllowParams = []string{"brand_new_param"}
	cfg.Batch.TaskRate = 1000
	_, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrPartial) {
		t.Fatalf("err = %v, want ErrPartial (one row rejected)", err)
	}
	seen := outcomes(t, cfg.Out)
	if len(seen) != len(rows) {
		t.Fatalf("%d rows in the outputs, want %d", len(seen), len(rows))
	}
	byID := map[string]map[string]any{}
	for _, m := range readLines(t, filepath.Join(cfg.Out, "results.jsonl")) {
		byID[m["id"].(string)] = m
	}
	for _, id := range []string{"u1", "u2", "g1", "q1", "q2", "q3", "q4", "q5", "p1", "p2", "p3", "i1", "i2", "n1", "a1"} {
		if byID[id] == nil {
			t.Errorf("row %s has no result", id)
		}
	}
	if m := byID["p1"]; m != nil && m["prompt"] != "Say hi" {
		t.Errorf("prompt row: %v", m)
	}
	if m := byID["i1"]; m != nil && (m["product_id"] != "123456" || m["params"].(map[string]any)["delivery_zip"] != "10001") {
		t.Errorf("product_id row must carry its input and params: %v", m)
	}
	if m := byID["a1"]; m != nil && m["params"].(map[string]any)["brand_new_param"] != "yes" {
		t.Errorf("the allowed parameter did not pass: %v", m)
	}
	if m := byID["g1"]; m != nil {
		if pages, _ := m["pages"].([]any); len(pages) != 2 {
			t.Errorf("page_count 2: %d pages in %v", len(pages), m)
		}
	}
	rej := readLines(t, filepath.Join(cfg.Out, "rejects.jsonl"))
	if len(rej) != 1 || rej[0]["id"] != "x1" || !strings.Contains(rej[0]["error"].(string), "xhr_mode") {
		t.Fatalf("rejects: %v, want row x1's unknown parameter named", rej)
	}
	st := sb.Stats()
	if st.SingleTasks != 6 {
		t.Errorf("%d single tasks, want the 6 prompt, product_id and no-input rows", st.SingleTasks)
	}
	if st.TasksCreated != 15 || st.DuplicateSubmissions != 0 {
		t.Errorf("%d tasks created, %d duplicates; want 15, 0", st.TasksCreated, st.DuplicateSubmissions)
	}
}

// TestRunPaysOnce proves that with a fifth of the batch answers cut short
// after a 200 and a tenth answered 500 after the tasks were created, no
// item is ever submitted twice, and every row ends in exactly one file:
// those batches' rows as failed, class unknown.
func TestRunPaysOnce(t *testing.T) {
	t.Parallel()
	sb, api := fastSandbox(t, sandbox.Config{TruncateBatchRate: 0.2, Batch500AfterCreateRate: 0.1, Seed: 3})
	var b strings.Builder
	for i := 1; i <= 2000; i++ {
		fmt.Fprintf(&b, "https://example.com/once/%d\n", i)
	}
	cfg := testConfig(t, api, writeFile(t, "in.txt", b.String()))
	cfg.Batch.Size = 50
	_, err := Run(context.Background(), cfg)
	if err != nil && !errors.Is(err, ErrPartial) {
		t.Fatal(err)
	}
	if seen := outcomes(t, cfg.Out); len(seen) != 2000 {
		t.Fatalf("%d rows in the outputs, want 2000", len(seen))
	}
	st := sb.Stats()
	if st.DuplicateSubmissions != 0 {
		t.Errorf("%d items submitted twice", st.DuplicateSubmissions)
	}
	if st.BatchesTruncated+st.Batches500AfterCreate == 0 {
		t.Fatal("no fault was injected")
	}
	unknown := 0
	for _, m := range readLines(t, filepath.Join(cfg.Out, "failed.jsonl")) {
		if m["error_class"] == "unknown" {
			unknown++
		}
	}
	// A batch whose answer broke off where the client had read it whole
	// goes through; none other is sent again.
	if most := 50 * (st.BatchesTruncated + st.Batches500AfterCreate); unknown == 0 || unknown > most {
		t.Errorf("%d rows failed as unknown, want some, and at most the %d of the faulted batches", unknown, most)
	}
}

// TestRunIndentedPages proves every line of results.jsonl is one JSON
// object when the API pretty-prints its answers, and a task of three pages
// keeps each page's status code.
func TestRunIndentedPages(t *testing.T) {
	t.Parallel()
	_, api := fastSandbox(t, sandbox.Config{IndentAnswers: true, PageErrorRate: 0.3, Seed: 5})
	var b strings.Builder
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&b, `{"target":"google_search","query":"q%d","page_count":3,"parse":true}`+"\n", i)
	}
	cfg := testConfig(t, api, writeFile(t, "in.jsonl", b.String()))
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, filepath.Join(cfg.Out, "results.jsonl")) // fails on a line that is not one object
	if len(lines) != 200 {
		t.Fatalf("%d result lines, want 200", len(lines))
	}
	failedPage := 0
	for _, m := range lines {
		pages, _ := m["pages"].([]any)
		if len(pages) != 3 {
			t.Fatalf("want 3 pages: %v", m)
		}
		top := 0.0
		for _, p := range pages {
			code, _ := p.(map[string]any)["status_code"].(float64)
			top = max(top, code)
		}
		if m["status_code"] != top {
			t.Fatalf("status_code %v, want the highest of the pages' %v", m["status_code"], top)
		}
		if top >= 400 {
			failedPage++
		}
	}
	if failedPage == 0 {
		t.Error("no result had a failed page: the pages' codes are not kept")
	}
}

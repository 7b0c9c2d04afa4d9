package decodo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// TestTruncatedBatchAnswerIsAnAnswerError proves that a 200 whose body is
// cut, whether the answer is complete but short or the connection closes
// halfway, is an *AnswerError: the batch was queued and must not be sent
// again.
func TestTruncatedBatchAnswerIsAnAnswerError(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Config{TruncateBatchRate: 1, BatchInterval: -1, Seed: 1})
	t.Cleanup(sb.Close)
	c, _ := serve(t, sb, testToken)
	const n = 10
	for i := range n {
		_, err := c.SubmitBatch(context.Background(), BatchRequest{Target: "universal", URLs: []string{"https://a.example/" + string(rune('a'+i))}})
		var ae *AnswerError
		if !errors.As(err, &ae) || ae.Op != "POST /v3/task/batch" {
			t.Fatalf("batch %d: err = %v (%T), want an *AnswerError", i, err, err)
		}
	}
	if st := sb.Stats(); st.BatchesTruncated != n || st.TasksCreated != n {
		t.Errorf("sandbox truncated %d batches and created %d tasks, want %d and %d", st.BatchesTruncated, st.TasksCreated, n, n)
	}
}

// TestBatch500AfterCreateIsAnError proves that a 500 answered after the
// tasks were created reaches the caller as a 500 *Error (whose outcome the
// caller must treat as unknown), not as success.
func TestBatch500AfterCreateIsAnError(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Config{Batch500AfterCreateRate: 1, BatchInterval: -1})
	t.Cleanup(sb.Close)
	c, _ := serve(t, sb, testToken)
	_, err := c.SubmitBatch(context.Background(), BatchRequest{Target: "universal", URLs: []string{"https://a.example/"}})
	if e := apiError(t, err); e.StatusCode != 500 {
		t.Errorf("status %d, want 500", e.StatusCode)
	}
	if st := sb.Stats(); st.TasksCreated != 1 {
		t.Errorf("%d tasks created, want 1", st.TasksCreated)
	}
}

// TestIndentedAnswersAndPagesAreRead proves that the client reads indented
// answers (batch, single task, status, results), keeps every page of a
// task with page_count 3 with its own status_code, headers and cookies,
// and makes each page's content, headers and cookies compact, fit for one
// line of an output file.
func TestIndentedAnswersAndPagesAreRead(t *testing.T) {
	t.Parallel()
	c, _ := serveSandbox(t, sandbox.Config{IndentAnswers: true, PageErrorRate: 0.5, BatchInterval: -1, Seed: 4})
	ctx := context.Background()
	resp, err := c.SubmitBatch(ctx, BatchRequest{Target: "google_search", Queries: []string{"tea", "coffee"},
		Params: json.RawMessage(`{"parse":true,"page_count":3,"google_results_language":"de"}`)})
	if err != nil || len(resp.Tasks) != 2 || resp.Tasks[1].Query != "coffee" {
		t.Fatalf("SubmitBatch = %+v, %v", resp, err)
	}
	one, err := c.Submit(ctx, json.RawMessage(`{"target":"chatgpt","prompt":"hello","parse":true}`))
	if err != nil || !taskIDPattern.MatchString(string(one.ID)) {
		t.Fatalf("Submit = %+v, %v", one, err)
	}
	codes := map[int]bool{}
	for _, tk := range append(resp.Tasks, *one) {
		st, err := c.Task(ctx, string(tk.ID))
		if err != nil || st.Status != StatusDone || st.ID != tk.ID {
			t.Fatalf("Task(%s) = %+v, %v", tk.ID, st, err)
		}
		res, ready, err := c.Results(ctx, string(tk.ID))
		if err != nil || !ready {
			t.Fatalf("Results(%s): ready %v, %v", tk.ID, ready, err)
		}
		want := 3
		if tk.ID == one.ID {
			want = 1
		}
		if len(res) != want {
			t.Fatalf("%d pages, want %d", len(res), want)
		}
		for i, r := range res {
			if bytes.ContainsAny(r.Content, "\n\r") || r.Content[0] != '{' || r.TaskID != string(tk.ID) {
				t.Errorf("page content %.80q of task %s (entry's task %s)", r.Content, tk.ID, r.TaskID)
			}
			codes[r.StatusCode] = true
			// Each page keeps its own headers and cookies, compact.
			var h map[string]string
			if err := json.Unmarshal(r.Headers, &h); err != nil || h["content-type"] != "application/json" ||
				bytes.ContainsAny(r.Headers, "\n ") || bytes.ContainsAny(r.Cookies, "\n ") || r.Cookies == nil {
				t.Errorf("page %d headers %q cookies %q (%v)", i+1, r.Headers, r.Cookies, err)
			}
			if want := fmt.Sprint(i + 1); len(res) > 1 && (h["x-sandbox-page"] != want || !bytes.Contains(r.Cookies, []byte(`"value":"`+want+`"`))) {
				t.Errorf("page %d headers %s cookies %s name another page", i+1, r.Headers, r.Cookies)
			}
		}
	}
	if !codes[200] || !codes[404] && !codes[500] {
		t.Errorf("page status codes %v: want 200s and failed pages apart", codes)
	}
}

package decodo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// slowResults decodes with encoding/json only: with decodeBatch, the
// reference the fast path must agree with.
func slowResults(b []byte) ([]Result, error) {
	var v struct {
		Results []Result `json:"results"`
	}
	err := json.Unmarshal(b, &v)
	return v.Results, err
}

var scanSeeds = []string{
	`{"id": 7495756599328274433, "queries": [{"id": "7495756599328274434", "query": "coffee", "status": "pending", "page_from": 1, "geo": null, "cookies": [], "headers": {"a": "b"}}], "errors": []}`,
	`[{"id":"1","url":"https://a/\u00e9\"x","status":"pending","parse":false}]`,
	`{"id":"12","tasks":[{"id":3,"url":"u"}],"errors":[{"field":"url[1]","message":"bad"}]}`,
	`{"results":[{"content":"<html>\n</html>","status_code":200,"url":"https://x","task_id":"7434928397127555073","headers":{"content-type":"text/html"},"cookies":[]}]}`,
	`{"results":[{"content":{"organic":[1,2.5e3,true,null]},"status_code":404,"query":"q"},{"content":"p2","status_code":200}]}`,
	`{"results":[]}`,
	`{"results":null}`,
	`{"results":[{"content":"bad \x01 control"}]}`,
	`{"results":[{"content":"a"}]} trailing`,
	`{"id":01}`,
	`{"results":[{"status_code":1e2}]}`,
}

// FuzzScan proves the fast readers agree with encoding/json: whenever the
// fast path accepts an answer, encoding/json decodes it to the same value;
// the fast path never accepts what encoding/json refuses.
func FuzzScan(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if fast, err := scanBatch(b); err == nil {
			slow, serr := decodeBatch(b)
			if serr != nil {
				t.Fatalf("fast batch read accepted what encoding/json refuses (%v): %q", serr, b)
			}
			same := len(fast.Tasks) == len(slow.Tasks)
			for i := 0; same && i < len(fast.Tasks); i++ {
				same = reflect.DeepEqual(fast.Tasks[i], slow.Tasks[i])
			}
			same = same && len(fast.Errors) == len(slow.Errors)
			for i := 0; same && i < len(fast.Errors); i++ {
				same = bytes.Equal(fast.Errors[i], slow.Errors[i])
			}
			if !same || fast.ID != slow.ID {
				t.Fatalf("batch: fast %+v, encoding/json %+v", fast, slow)
			}
		}
		if fast, err := scanResults(b); err == nil {
			slow, serr := slowResults(b)
			if serr != nil {
				t.Fatalf("fast results read accepted what encoding/json refuses (%v): %q", serr, b)
			}
			if len(fast) != len(slow) {
				t.Fatalf("results: %d fast, %d encoding/json", len(fast), len(slow))
			}
			for i := range fast {
				if string(fast[i].Content) != string(slow[i].Content) || fast[i].StatusCode != slow[i].StatusCode ||
					fast[i].URL != slow[i].URL || fast[i].Query != slow[i].Query || fast[i].TaskID != slow[i].TaskID ||
					fast[i].UpdatedAt != slow[i].UpdatedAt {
					t.Fatalf("result %d: fast %+v, encoding/json %+v", i, fast[i], slow[i])
				}
			}
		}
	})
}

// TestScanSeeds proves the fast path reads the shapes of decodo-api.md and
// refuses what is not JSON, so that encoding/json reports the error.
func TestScanSeeds(t *testing.T) {
	t.Parallel()
	if r, err := scanBatch([]byte(scanSeeds[0])); err != nil || r.ID != "7495756599328274433" || r.Tasks[0].Query != "coffee" {
		t.Errorf("SDK form: %+v, %v", r, err)
	}
	if r, err := scanBatch([]byte(scanSeeds[1])); err != nil || r.Tasks[0].URL != "https://a/é\"x" {
		t.Errorf("array form with escapes: %+v, %v", r, err)
	}
	if res, err := scanResults([]byte(scanSeeds[4])); err != nil || len(res) != 2 || string(res[0].Content) != `{"organic":[1,2.5e3,true,null]}` || res[0].StatusCode != 404 {
		t.Errorf("parsed content: %+v, %v", res, err)
	}
	for _, bad := range scanSeeds[7:] {
		if _, err := scanResults([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestSkipStringEveryPosition proves the eight-bytes-at-a-time scan finds
// a quote, a backslash escape or a control byte wherever it falls.
func TestSkipStringEveryPosition(t *testing.T) {
	t.Parallel()
	for n := 0; n < 20; n++ {
		pad := string(bytes.Repeat([]byte("aé"), n))
		for _, tt := range []struct {
			body string
			ok   bool
		}{
			{pad + `x`, true},
			{pad + `\"x`, true},
			{pad + `\n`, true},
			{pad + "\x01", false},
			{pad + "\x1f" + pad, false},
			{pad + `\q`, false},
		} {
			b := []byte(`"` + tt.body + `" `)
			end, _, err := skipString(b, 0)
			if (err == nil) != tt.ok || (tt.ok && end != len(b)-1) {
				t.Errorf("%q: end %d err %v, want ok %v", b, end, err, tt.ok)
			}
		}
	}
}

// sandboxAnswers returns a 3000-task batch answer and a results answer as
// the sandbox sends them.
func sandboxAnswers(b *testing.B) (batch, results []byte) {
	b.Helper()
	srv := httptest.NewServer(sandbox.New(sandbox.Config{BatchInterval: -1}))
	b.Cleanup(srv.Close)
	var req bytes.Buffer
	req.WriteString(`{"target":"universal","url":[`)
	for i := range 3000 {
		if i > 0 {
			req.WriteByte(',')
		}
		fmt.Fprintf(&req, `"https://example.com/p/%d"`, i)
	}
	req.WriteString(`]}`)
	get := func(method, path string, body io.Reader) []byte {
		r, _ := http.NewRequest(method, srv.URL+path, body)
		r.SetBasicAuth("u", "p")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return data
	}
	batch = get("POST", "/v3/task/batch", &req)
	resp, err := scanBatch(batch)
	if err != nil {
		b.Fatal(err)
	}
	for range 100 {
		if results = get("GET", "/v3/task/"+resp.Tasks[0].ID+"/results", nil); len(results) > 0 {
			return batch, results
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatal("no result")
	return nil, nil
}

func BenchmarkScan(b *testing.B) {
	batch, results := sandboxAnswers(b)
	b.Run("batch-per-task", func(b *testing.B) {
		b.SetBytes(int64(len(batch) / 3000))
		for b.Loop() {
			if _, err := scanBatch(batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/3000, "ns/task")
	})
	b.Run("results", func(b *testing.B) {
		b.SetBytes(int64(len(results)))
		for b.Loop() {
			if _, err := scanResults(results); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestValidNumberAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-1", "10", "01", "-01", "1.", ".5", "1.5", "1.5e3", "1e", "1e+", "1E-7", "-", "--1", "1.2.3", "1e5e5", "0x1", "123456789012345678901234567890", "1.0e+00", "+1", ""} {
		if got, want := validNumber([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validNumber(%q) = %v, encoding/json says %v", s, got, want)
		}
	}
}

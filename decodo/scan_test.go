package decodo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// slowResults decodes with encoding/json only: the reference the fast
// reader must agree with.
func slowResults(b []byte) ([]Result, error) {
	var v struct {
		Results []Result `json:"results"`
	}
	err := json.Unmarshal(b, &v)
	return v.Results, err
}

var scanSeeds = []string{
	`{"results":[{"content":"<html>\n</html>","status_code":200,"url":"https://x","task_id":"7434928397127555073","headers":{"content-type":"text/html"},"cookies":[]}]}`,
	`{"results":[{"content":{"organic":[1,2.5e3,true,null]},"status_code":404,"query":"q"},{"content":"p2","status_code":200}]}`,
	"{\"results\": [ {\"content\": {\n  \"a\" : [ 1 ,\t\"b c\" ]\r\n}, \"task_id\": 7434928397127555073, \"url\":\"https://a/\\u00e9\\\"x\"} ] }",
	`{"results":[]}`,
	`{"results":null}`,
	`{"Results":[{"CONTENT":"folded keys"}]}`,
	"{\"results\":[{\"content\":\"bad \x01 control\"}]}",
	`{"results":[{"content":"a"}]} trailing`,
	`{"results":[{"status_code":01}]}`,
	`{"results":[{"status_code":1e2}]}`,
	`{"results":[{"task_id":true}]}`,
	"{\"results\":[{\"headers\":{\n \"a\": \"b\"},\"cookies\":[ {\"key\":\"k\", \"value\":\"v\"} ],\"content\":\"x\"},{\"headers\":null,\"cookies\":[]}]}",
	`{"results":[{"Headers":{"folded":true}}]}`,
	`{"results":`,  // cut off after the key: refused, not a panic
	`{"results": `, // likewise
	`{"results":[{"content":1}],"results":[{"content":2}]}`, // the last key counts, as for encoding/json
	`{"results":[{"content":1}],"results":null}`,
}

// FuzzScan proves the fast reader of results agrees with encoding/json:
// whenever it accepts an answer, encoding/json decodes it to the same value;
// it never accepts what encoding/json refuses.
func FuzzScan(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, err := scanResults(b)
		if err != nil {
			return
		}
		slow, serr := slowResults(b)
		if serr != nil {
			t.Fatalf("fast results read accepted what encoding/json refuses (%v): %q", serr, b)
		}
		if len(fast) != len(slow) {
			t.Fatalf("results: %d fast, %d encoding/json", len(fast), len(slow))
		}
		for i := range fast {
			if !reflect.DeepEqual(fast[i], slow[i]) {
				t.Fatalf("result %d: fast %+v, encoding/json %+v", i, fast[i], slow[i])
			}
			for _, v := range []json.RawMessage{fast[i].Content, fast[i].Headers, fast[i].Cookies} {
				if bytes.ContainsAny(v, "\r\n") {
					t.Fatalf("result %d: %q holds a line break", i, v)
				}
			}
		}
	})
}

// TestScanSeeds proves the fast reader reads the shapes the API sends and
// refuses what is not JSON or what encoding/json would read otherwise
// (case-folded keys), so that encoding/json decides.
func TestScanSeeds(t *testing.T) {
	t.Parallel()
	if res, err := scanResults([]byte(scanSeeds[1])); err != nil || len(res) != 2 || string(res[0].Content) != `{"organic":[1,2.5e3,true,null]}` || res[0].StatusCode != 404 {
		t.Errorf("parsed content: %+v, %v", res, err)
	}
	if res, err := scanResults([]byte(scanSeeds[2])); err != nil || len(res) != 1 || string(res[0].Content) != `{"a":[1,"b c"]}` ||
		res[0].TaskID != "7434928397127555073" || res[0].URL != "https://a/é\"x" {
		t.Errorf("indented content, numeric task_id, escaped url: %+v, %v", res, err)
	}
	res, err := scanResults([]byte(scanSeeds[11]))
	if err != nil || len(res) != 2 || string(res[0].Headers) != `{"a":"b"}` || string(res[0].Cookies) != `[{"key":"k","value":"v"}]` ||
		res[1].Headers != nil || string(res[1].Cookies) != `[]` {
		t.Errorf("headers and cookies: %+v, %v", res, err)
	}
	if res, err := scanResults([]byte(scanSeeds[0])); err != nil || string(res[0].Headers) != `{"content-type":"text/html"}` {
		t.Errorf("headers of the first seed: %+v, %v", res, err)
	}
	for _, bad := range append(scanSeeds[5:11:11], scanSeeds[12]) {
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

// TestSkipStringAgreesWithJSON proves the word-at-a-time string scan on
// random strings dense in escapes (runs of backslashes, \u escapes across
// word boundaries, several specials in one word): it accepts exactly what
// encoding/json accepts as a string and ends where the string ends.
func TestSkipStringAgreesWithJSON(t *testing.T) {
	t.Parallel()
	pieces := []string{"a", "é", `\"`, `\\`, `\n`, `\/`, `\u00e9`, `\u12`, `\x`, "\x01", `"`, `\`, "bcdefgh"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b []byte
		b = append(b, '"')
		for range r.IntN(24) {
			b = append(b, pieces[r.IntN(len(pieces))]...)
		}
		b = append(b, '"')
		tail := len(b)
		b = append(b, []byte(` "more"`)[:r.IntN(8)]...)
		end, _, err := skipString(b, 0)
		// The reference: the string's end is the first quote not escaped;
		// encoding/json decides whether what is before it is a string.
		want, escaped := -1, false
		for i := 1; i < len(b); i++ {
			switch {
			case escaped:
				escaped = false
			case b[i] == '\\':
				escaped = true
			case b[i] == '"':
				want = i + 1
			}
			if want >= 0 {
				break
			}
		}
		var str string
		ok := want >= 0 && json.Unmarshal(b[:want], &str) == nil
		if ok != (err == nil) || ok && end != want {
			t.Fatalf("%q (string part %q): end %d err %v; want end %d ok %v", b, b[:tail], end, err, want, ok)
		}
	}
}

// sandboxAnswers returns a 3000-task batch answer and a results answer (of
// the first task) as a sandbox of cfg sends them.
func sandboxAnswers(b *testing.B, cfg sandbox.Config) (batch, results []byte) {
	b.Helper()
	cfg.BatchInterval = -1
	srv := httptest.NewServer(sandbox.New(cfg))
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
	var resp BatchResponse
	if err := resp.UnmarshalJSON(batch); err != nil {
		b.Fatal(err)
	}
	for range 100 {
		if results = get("GET", "/v3/task/"+string(resp.Tasks[0].ID)+"/results", nil); len(results) > 0 {
			return batch, results
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatal("no result")
	return nil, nil
}

// parsedAnswer returns a results answer whose content is a parsed page of
// about 100 KB, compact or indented.
func parsedAnswer(indent bool) []byte {
	var organic []map[string]any
	for i := range 400 {
		organic = append(organic, map[string]any{
			"pos":   i,
			"title": fmt.Sprintf("Result %d about coffee beans", i),
			"url":   fmt.Sprintf("https://example.com/a/%d", i),
			"desc":  strings.Repeat("lorem ipsum dolor ", 10),
		})
	}
	content := map[string]any{"results": map[string]any{"organic": organic}, "parse_status_code": 12000}
	answer := map[string]any{"results": []any{map[string]any{"content": content, "status_code": 200, "task_id": "7434928397127555073"}}}
	if indent {
		b, _ := json.MarshalIndent(answer, "", "  ")
		return b
	}
	b, _ := json.Marshal(answer)
	return b
}

// BenchmarkScan measures reading a 3000-task batch answer (encoding/json,
// as Client.SubmitBatch does) and results answers: the sandbox's, and a
// parsed page of about 100 KB, compact and indented (made compact), each
// through the fast reader and through encoding/json.
func BenchmarkScan(b *testing.B) {
	batch, results := sandboxAnswers(b, sandbox.Config{})
	b.Run("batch-per-task", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(batch)))
		for b.Loop() {
			var r BatchResponse
			if err := r.UnmarshalJSON(batch); err != nil || len(r.Tasks) != 3000 {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/3000, "ns/task")
	})
	for _, a := range []struct {
		name string
		body []byte
	}{
		{"results", results},
		{"results-parsed", parsedAnswer(false)},
		{"results-parsed-indented", parsedAnswer(true)},
	} {
		for _, r := range []struct {
			name string
			read func([]byte) ([]Result, error)
		}{{"", scanResults}, {"-encoding-json", slowResults}} {
			b.Run(a.name+r.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(a.body)))
				for b.Loop() {
					if _, err := r.read(a.body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func TestValidNumberAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-1", "10", "01", "-01", "1.", ".5", "1.5", "1.5e3", "1e", "1e+", "1E-7", "-", "--1", "1.2.3", "1e5e5", "0x1", "123456789012345678901234567890", "1.0e+00", "+1", ""} {
		if got, want := validNumber([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validNumber(%q) = %v, encoding/json says %v", s, got, want)
		}
	}
}

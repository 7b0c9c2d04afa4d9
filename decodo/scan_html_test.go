package decodo

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// BenchmarkScanHTML measures reading a results answer with a page of about
// 100 KB of realistic HTML (the sandbox's html kind): a string with an
// escape every 20 bytes or so, which the reader's string skipping must go
// through at the API's ceiling (3000 such pages a second).
func BenchmarkScanHTML(b *testing.B) {
	srv := httptest.NewServer(sandbox.New(sandbox.Config{BatchInterval: -1, ContentKind: sandbox.ContentHTML, ContentSize: 100_000}))
	b.Cleanup(srv.Close)
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
	batch := get("POST", "/v3/task/batch", bytes.NewReader([]byte(`{"target":"universal","url":["https://example.com/a"]}`)))
	var resp BatchResponse
	if err := resp.UnmarshalJSON(batch); err != nil {
		b.Fatal(err)
	}
	var results []byte
	for range 100 {
		if results = get("GET", "/v3/task/"+string(resp.Tasks[0].ID)+"/results", nil); len(results) > 0 {
			break
		}
	}
	b.SetBytes(int64(len(results)))
	for b.Loop() {
		if _, err := scanResults(results); err != nil {
			b.Fatal(err)
		}
	}
}

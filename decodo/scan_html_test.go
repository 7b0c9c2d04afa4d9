package decodo

import (
	"testing"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

// BenchmarkScanHTML measures reading a results answer with a page of about
// 100 KB of realistic HTML (the sandbox's html kind): a string with an
// escape every 20 bytes or so, which the reader's string skipping must go
// through at the API's ceiling (3000 such pages a second).
func BenchmarkScanHTML(b *testing.B) {
	_, results := sandboxAnswers(b, sandbox.Config{ContentKind: sandbox.ContentHTML, ContentSize: 100_000})
	b.SetBytes(int64(len(results)))
	for b.Loop() {
		if _, err := scanResults(results); err != nil {
			b.Fatal(err)
		}
	}
}

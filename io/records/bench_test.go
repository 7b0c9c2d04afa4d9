package records

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/gocarina/gocsv"
)

// benchRows is the size of the generated inputs: the million rows the
// speed target is stated for.
const benchRows = 1_000_000

var geos = []string{"United States", "Germany", "France", "Japan", "Brazil"}

func genCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("url,target,id,geo\n")
	for i := range n {
		fmt.Fprintf(&b, "https://www.example.com/products/item-%d?ref=feed&page=%d,universal,sku-%d,%s\n", i, i%7, i, geos[i%len(geos)])
	}
	return b.Bytes()
}

func genJSONL(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"url":"https://www.example.com/products/item-%d?ref=feed&page=%d","target":"universal","id":"sku-%d","geo":"%s"}`+"\n", i, i%7, i, geos[i%len(geos)])
	}
	return b.Bytes()
}

func genTXT(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "https://www.example.com/products/item-%d?ref=feed&page=%d\n", i, i%7)
	}
	return b.Bytes()
}

// benchRead reads data to the end, failing on any bad row: the generated
// rows are all valid, so a RowError means the benchmark measures the wrong
// path.
func benchRead(b *testing.B, data []byte, format string, rows int) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(data), "bench", Options{Format: format})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != rows {
			b.Fatalf("read %d rows, want %d", n, rows)
		}
	}
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	// All the CPU the process used per row, the collector's included: on a
	// shared machine rows/s measures the load, this the work. 1e9 divided
	// by it is the rows/s this takes on one idle core.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(rows*b.N), "cpu-ns/row")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(rows*b.N), "allocs/row")
}

// BenchmarkCSV measures reading and validating a CSV of url,target,id,geo.
func BenchmarkCSV(b *testing.B) { benchRead(b, genCSV(benchRows), "csv", benchRows) }

// BenchmarkJSONL measures the same rows as JSONL.
func BenchmarkJSONL(b *testing.B) { benchRead(b, genJSONL(benchRows), "jsonl", benchRows) }

// BenchmarkTXT measures the same URLs, one per line.
func BenchmarkTXT(b *testing.B) { benchRead(b, genTXT(benchRows), "txt", benchRows) }

// gocsvRow is what gocsv would decode a row into: a field for every
// column this package takes.
type gocsvRow struct {
	URL                   string `csv:"url"`
	Query                 string `csv:"query"`
	Target                string `csv:"target"`
	ID                    string `csv:"id"`
	CallbackURL           string `csv:"callback_url"`
	Cookies               string `csv:"cookies"`
	DeviceType            string `csv:"device_type"`
	Domain                string `csv:"domain"`
	ForceCookies          string `csv:"force_cookies"`
	ForceHeaders          string `csv:"force_headers"`
	Geo                   string `csv:"geo"`
	Headers               string `csv:"headers"`
	Headless              string `csv:"headless"`
	HTTPMethod            string `csv:"http_method"`
	Limit                 string `csv:"limit"`
	Locale                string `csv:"locale"`
	Markdown              string `csv:"markdown"`
	PageCount             string `csv:"page_count"`
	PageFrom              string `csv:"page_from"`
	Parse                 string `csv:"parse"`
	Passthrough           string `csv:"passthrough"`
	Payload               string `csv:"payload"`
	ProxyPool             string `csv:"proxy_pool"`
	SessionID             string `csv:"session_id"`
	SuccessfulStatusCodes string `csv:"successful_status_codes"`
}

// BenchmarkCSVGocsvUnmarshaller measures the alternative this package does
// not take: gocsv's Unmarshaller over one encoding/csv.Reader, decoding
// each row of the same CSV into a gocsvRow, with no validation at all.
// Compare its rows/s and allocs with BenchmarkCSV.
func BenchmarkCSVGocsvUnmarshaller(b *testing.B) {
	data := genCSV(benchRows)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		cr := csv.NewReader(bytes.NewReader(data))
		cr.ReuseRecord = true
		um, err := gocsv.NewUnmarshaller(cr, &gocsvRow{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := um.Read(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkJSONLStdlibMap measures encoding/json into a map per line,
// with no validation at all: most of what BenchmarkJSONL costs.
func BenchmarkJSONLStdlibMap(b *testing.B) {
	data := genJSONL(benchRows)
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCSVParams measures rows whose parameters all differ, so that
// interning never hits and every row builds and allocates its Params.
func BenchmarkCSVParams(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("query,target,id,geo,page_count,parse,session_id\n")
	for i := range benchRows {
		fmt.Fprintf(&buf, "query %d,google_search,%d,%s,%d,%t,s%d\n", i, i, geos[i%len(geos)], i%10+1, i%2 == 0, i)
	}
	benchRead(b, buf.Bytes(), "csv", benchRows)
}

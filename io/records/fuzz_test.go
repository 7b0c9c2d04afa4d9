package records

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/decodo-batch/decodo-batch/decodo"
)

// checkStream reads data to the end and checks what every reader promises:
// no panic; each result is a Record or a *RowError with a line >= 1 and
// rows numbered 1, 2, 3... on strictly increasing lines; a valid Record
// has exactly one of url and query and a target; a RowError's input fits
// in 4 KiB and its reason in one line; a fatal error is final. It returns
// the lines of the results, the results, and the fatal error if there was
// one.
func checkStream(t *testing.T, format string, data []byte) (*Reader, []int64, []result, error) {
	return checkStreamMax(t, format, data, 0)
}

// checkStreamMax is checkStream with a CSV record limit of max bytes in
// place of MaxRecordLen, when max > 0.
func checkStreamMax(t *testing.T, format string, data []byte, max int64) (*Reader, []int64, []result, error) {
	r, err := NewReader(bytes.NewReader(data), "fuzz", Options{Format: format, Defaults: `{"geo":"us"}`})
	if err != nil {
		return nil, nil, nil, err
	}
	if max > 0 {
		r.csv.m.max = max
	}
	var lines []int64
	var results []result
	var row, line int64
	maxLine := int64(bytes.Count(data, []byte("\n")) + 1)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return r, lines, results, nil
		}
		var re *RowError
		var gotRow, gotLine int64
		switch {
		case errors.As(err, &re):
			gotRow, gotLine = re.Row, re.Line
			if len(re.Input) > maxInput {
				t.Fatalf("RowError input of %d bytes", len(re.Input))
			}
			if strings.ContainsAny(re.Reason, "\r\n") || re.Reason == "" {
				t.Fatalf("reason %q is not one line", re.Reason)
			}
		case err != nil:
			if _, again := r.Next(); again != err {
				t.Fatalf("fatal error %v, then %v", err, again)
			}
			return r, lines, results, err
		default:
			gotRow, gotLine = rec.Row, rec.Line
			checkRecord(t, rec)
			if rec.Params != "" && !json.Valid([]byte(rec.Params)) {
				t.Fatalf("Params %q is not JSON", rec.Params)
			}
		}
		if gotRow != row+1 || gotLine <= line || gotLine > maxLine {
			t.Fatalf("row %d line %d after row %d line %d (input has %d lines)", gotRow, gotLine, row, line, maxLine)
		}
		row, line = gotRow, gotLine
		lines = append(lines, gotLine)
		results = append(results, result{rec, err})
	}
}

// checkRecord fails t unless rec fills exactly the input field its
// target, one of decodo's table, takes.
func checkRecord(t *testing.T, rec Record) {
	t.Helper()
	tg, ok := decodo.LookupTarget(rec.Target)
	if !ok {
		t.Fatalf("record of unknown target: %+v", rec)
	}
	filled := 0
	for _, f := range []string{rec.URL, rec.Query, rec.Prompt, rec.ProductID} {
		if f != "" {
			filled++
		}
	}
	in, v := rec.Input()
	if in != tg.Input || (filled == 0) != (in == decodo.InputNone) || filled > 1 || (v == "") != (in == decodo.InputNone) {
		t.Fatalf("record %+v: input %v %q, target %s takes %v", rec, in, v, rec.Target, tg.Input)
	}
}

// result is one result of Next.
type result struct {
	rec Record
	err error
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"url,id\nhttps://a.com,1\n",
		"\ufeffurl,query,target\r\n,coffee,google_search\r\nhttps://a.com,,",
		"url,id\n\"https://a.com\",\"a\nb\"\"c\"\n\n\"x\"y,1\n\"open\n",
		"url,parse,page_count,headers,successful_status_codes\nhttps://a.com,true,3,\"{\"\"a\"\":1}\",\"200,404\"\n",
		"url\n\"a\"\r\r\nb\n\"\"\r",
		"url,,geo\nhttps://a.com,x,us\nhttps://a.com,\n",
		"url,prompt,product_id,target,hd,passtrough\n,\"a\nb\",,chatgpt,,x\n,,1,walmart_product,,\n,,,universal_ecommerce,,\nhttps://a.com,,,youtube_search,true,\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, lines, _, fatal := checkStream(t, "csv", data)
		if r == nil {
			return
		}
		if fatal != nil || r.csv.cols == nil || bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			return
		}
		// Every record starts on the line where encoding/csv, reading the
		// whole input, says it starts.
		want := csvRecords(t, data)
		if len(want) == 0 || len(want)-1 != len(lines) {
			t.Fatalf("encoding/csv reads %d records after the header at %v, we read %d at %v", len(want)-1, want, len(lines), lines)
		}
		for i, l := range lines {
			if want[i+1].line != l {
				t.Fatalf("record %d: line %d, encoding/csv says %d", i+1, l, want[i+1].line)
			}
		}
		// Again with a limit of a few bytes, so that records are cut off
		// and skipped: the records after one must be read as if it had
		// not been cut, and only records over the limit are cut.
		max := int64(1 + len(data)%16)
		_, lines, results, fatal := checkStreamMax(t, "csv", data, max)
		if fatal != nil && !strings.Contains(fatal.Error(), "no place to cut") {
			if want[0].len <= max {
				t.Fatalf("fatal error %v with a header of %d bytes, limit %d", fatal, want[0].len, max)
			}
			return
		}
		if fatal != nil {
			return
		}
		if len(want)-1 != len(lines) {
			t.Fatalf("limit %d: encoding/csv reads %d records after the header at %v, we read %d at %v", max, len(want)-1, want, len(lines), lines)
		}
		for i, l := range lines {
			w := want[i+1]
			var re *RowError
			long := errors.As(results[i].err, &re) && strings.HasPrefix(re.Reason, "record is longer")
			if w.line != l || long != (w.len > max) {
				t.Fatalf("limit %d, record %d: line %d, cut %v; encoding/csv says line %d, %d bytes", max, i+1, l, long, w.line, w.len)
			}
		}
	})
}

type csvRecord struct {
	line int64 // where it starts
	len  int64 // its length, line end excluded
}

// csvRecords returns the records encoding/csv reads in the whole of data.
func csvRecords(t *testing.T, data []byte) []csvRecord {
	cr := csv.NewReader(bytes.NewReader(data))
	var recs []csvRecord
	for {
		start := cr.InputOffset()
		_, err := cr.Read()
		if err == io.EOF {
			return recs
		}
		raw := data[start:cr.InputOffset()]
		for len(raw) > 0 && (raw[0] == '\n' || bytes.HasPrefix(raw, []byte("\r\n"))) {
			raw = raw[bytes.IndexByte(raw, '\n')+1:]
		}
		rec := csvRecord{len: int64(len(trimEOL(raw)))}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			rec.line = int64(pe.StartLine)
		} else if err != nil {
			t.Fatal(err)
		} else {
			l, _ := cr.FieldPos(0)
			rec.line = int64(l)
		}
		recs = append(recs, rec)
	}
}

func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://a.com","id":7}` + "\n",
		"\ufeff" + `{"query":"caf\u00e9 \ud83d\ude00","target":"google_search","page_count":2}` + "\r\n\r\n",
		`{"url":"https://a.com","headers":{"a":[1,{"b":null}]},"successful_status_codes":[200]}`,
		`{"url":"https://a.com",}` + "\n[]\n" + `{"url":1}` + "\n" + `{"url":"x\q"}`,
		`{"url":"https://a.com","parse":true,"limit":0,"geo":null,"url":"y"}`,
		`{"prompt":"hi\nthere","target":"perplexity"}` + "\n" + `{"product_id":"1","target":"target_product","delivery_zip":"1"}` + "\n" + `{"target":"universal_ecommerce","passtrough":"x"}`,
		`{"query":"q","target":"google_travel_hotels","adults":2,"stars":4.5,"hd":true}`,
		// Lines of decodo-batch's output: results, failed, rejects.
		`{"row":1,"line":2,"id":"a","target":"universal","url":"https://a.com","params":{"headers":{"A":"1"}},"task_id":"9","status_code":200,"headers":{"x":"y"},"content":"<p>","attempts":1,"fetched_at":"t"}` + "\n" +
			`{"row":2,"line":3,"target":"google_search","query":"q","params":{"parse":true},"error_class":"faulted","error":"e","attempts":3}` + "\n" +
			`{"row":3,"line":4,"id":"r","error":"x","input":"{\"url\":\"https://b.com\",\"geo\":\"Spain\"}"}` + "\n" +
			`{"row":4,"line":5,"error":"x","input":"https://c.com/x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, lines, results, fatal := checkStream(t, "jsonl", data)
		if r == nil || fatal != nil || bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			return
		}
		// Differential check against encoding/json: a line it finds
		// invalid is a bad row, and a record's url or query is what it
		// decodes.
		phys := bytes.Split(bytes.TrimPrefix(data, []byte("\ufeff")), []byte("\n"))
		for i, l := range lines {
			text := bytes.TrimSpace(phys[l-1])
			var m map[string]any
			err := json.Unmarshal(text, &m)
			if results[i].err != nil {
				continue
			}
			if err != nil {
				t.Fatalf("line %d %q: a record, but encoding/json says %v", l, text, err)
			}
			rec := results[i].rec
			if _, ok := m["input"]; ok {
				continue // a rejects line: its row is in its input string
			}
			if u, _ := m["url"].(string); u != rec.URL {
				t.Fatalf("line %d: url %q, encoding/json %q", l, rec.URL, u)
			}
			if q, _ := m["query"].(string); q != rec.Query {
				t.Fatalf("line %d: query %q, encoding/json %q", l, rec.Query, q)
			}
			if p, _ := m["prompt"].(string); p != rec.Prompt {
				t.Fatalf("line %d: prompt %q, encoding/json %q", l, rec.Prompt, p)
			}
			if p, _ := m["product_id"].(string); p != rec.ProductID {
				t.Fatalf("line %d: product_id %q, encoding/json %q", l, rec.ProductID, p)
			}
		}
		// Every non-blank line that encoding/json rejects is a bad row.
		got := map[int64]bool{}
		for _, l := range lines {
			got[l] = true
		}
		for i, p := range phys {
			p = bytes.TrimSpace(p)
			if len(p) > 0 && !got[int64(i+1)] && utf8.Valid(p) {
				t.Fatalf("line %d %q gave no result", i+1, p)
			}
		}
	})
}

func FuzzTXT(f *testing.F) {
	for _, s := range []string{
		"https://a.com\n# c\n\n  http://b.com/x?y#z  \r\n",
		"\ufeffhttps://[::1]:8080/\nhttps://user@h:1/\nhttps://:80\nftp://x",
		"https://a.com/\xff\nhttps://a.com/\u00a0",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStream(t, "txt", data)
	})
}

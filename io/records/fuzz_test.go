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
)

// checkStream reads data to the end and checks what every reader promises:
// no panic; each result is a Record or a *RowError with a line >= 1 and
// rows numbered 1, 2, 3... on strictly increasing lines; a valid Record
// has exactly one of url and query and a target; a RowError's input fits
// in 4 KiB and its reason in one line; a fatal error is final. It returns
// the lines of the results, and the fatal error if there was one.
func checkStream(t *testing.T, format string, data []byte) (*Reader, []int64, []error, error) {
	r, err := NewReader(bytes.NewReader(data), "fuzz", Options{Format: format, Defaults: `{"geo":"us"}`})
	if err != nil {
		return nil, nil, nil, err
	}
	var lines []int64
	var errs []error
	var row, line int64
	maxLine := int64(bytes.Count(data, []byte("\n")) + 1)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return r, lines, errs, nil
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
			return r, lines, errs, err
		default:
			gotRow, gotLine = rec.Row, rec.Line
			if (rec.URL == "") == (rec.Query == "") || rec.Target == "" {
				t.Fatalf("invalid record %+v", rec)
			}
			if rec.Params != "" && !json.Valid([]byte(rec.Params)) {
				t.Fatalf("Params %q is not JSON", rec.Params)
			}
		}
		if gotRow != row+1 || gotLine <= line || gotLine > maxLine {
			t.Fatalf("row %d line %d after row %d line %d (input has %d lines)", gotRow, gotLine, row, line, maxLine)
		}
		row, line = gotRow, gotLine
		lines = append(lines, gotLine)
		errs = append(errs, err)
	}
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"url,id\nhttps://a.com,1\n",
		"\ufeffurl,query,target\r\n,coffee,google_search\r\nhttps://a.com,,",
		"url,id\n\"https://a.com\",\"a\nb\"\"c\"\n\n\"x\"y,1\n\"open\n",
		"url,parse,page_count,headers,successful_status_codes\nhttps://a.com,true,3,\"{\"\"a\"\":1}\",\"200,404\"\n",
		"url\n\"a\"\r\r\nb\n\"\"\r",
		"url,,geo\nhttps://a.com,x,us\nhttps://a.com,\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, lines, _, fatal := checkStream(t, "csv", data)
		if r == nil {
			return
		}
		if r.csv.resyncs != 0 {
			t.Fatalf("encoding/csv framed %d records unlike csvScan", r.csv.resyncs)
		}
		if fatal != nil || r.csv.cols == nil || bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			return
		}
		// Every record starts on the line where encoding/csv, reading the
		// whole input, says it starts.
		cr := csv.NewReader(bytes.NewReader(data))
		cr.FieldsPerRecord = -1
		var want []int64
		for {
			_, err := cr.Read()
			if err == io.EOF {
				break
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				want = append(want, int64(pe.StartLine))
			} else if err != nil {
				t.Fatal(err)
			} else {
				l, _ := cr.FieldPos(0)
				want = append(want, int64(l))
			}
		}
		if len(want) == 0 || len(want)-1 != len(lines) {
			t.Fatalf("encoding/csv reads %d records after the header at %v, we read %d at %v", len(want)-1, want, len(lines), lines)
		}
		for i, l := range lines {
			if want[i+1] != l {
				t.Fatalf("record %d: line %d, encoding/csv says %d", i+1, l, want[i+1])
			}
		}
	})
}

func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://a.com","id":7}` + "\n",
		"\ufeff" + `{"query":"caf\u00e9 \ud83d\ude00","target":"google_search","page_count":2}` + "\r\n\r\n",
		`{"url":"https://a.com","headers":{"a":[1,{"b":null}]},"successful_status_codes":[200]}`,
		`{"url":"https://a.com",}` + "\n[]\n" + `{"url":1}` + "\n" + `{"url":"x\q"}`,
		`{"url":"https://a.com","parse":true,"limit":0,"geo":null,"url":"y"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, lines, errs, fatal := checkStream(t, "jsonl", data)
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
			if errs[i] != nil {
				continue
			}
			if err != nil {
				t.Fatalf("line %d %q: a record, but encoding/json says %v", l, text, err)
			}
			rec := r.v // the last row parsed is not kept; re-parse instead
			rec.reset()
			if reason := parseObject(string(text), &rec); reason != "" {
				t.Fatalf("line %d: re-parse failed: %s", l, reason)
			}
			if u, _ := m["url"].(string); u != rec.url {
				t.Fatalf("line %d: url %q, encoding/json %q", l, rec.url, u)
			}
			if q, _ := m["query"].(string); q != rec.query {
				t.Fatalf("line %d: query %q, encoding/json %q", l, rec.query, q)
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

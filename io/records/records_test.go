package records

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// got is one result of Next, printed compactly so that a whole input's
// results compare as a list of strings.
func readAll(t *testing.T, format, input string, opt Options) (got []string, fatal error) {
	t.Helper()
	opt.Format = format
	r, err := NewReader(strings.NewReader(input), "in."+format, opt)
	if err != nil {
		return nil, err
	}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return got, nil
		}
		var re *RowError
		switch {
		case errors.As(err, &re):
			got = append(got, fmt.Sprintf("row %d line %d: ERROR %s", re.Row, re.Line, re.Reason))
		case err != nil:
			return got, err
		default:
			got = append(got, fmtRecord(rec))
		}
	}
}

func fmtRecord(rec Record) string {
	s := fmt.Sprintf("row %d line %d: %s", rec.Row, rec.Line, rec.Target)
	if rec.URL != "" {
		s += " url=" + rec.URL
	}
	if rec.Query != "" {
		s += " query=" + rec.Query
	}
	if rec.Prompt != "" {
		s += " prompt=" + rec.Prompt
	}
	if rec.ProductID != "" {
		s += " product_id=" + rec.ProductID
	}
	if rec.ID != "" {
		s += " id=" + rec.ID
	}
	if rec.Params != "" {
		s += " " + string(rec.Params)
	}
	return s
}

type readCase struct {
	name  string // what the case proves
	input string
	opt   Options
	want  []string
}

func runReadCases(t *testing.T, format string, cases []readCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := readAll(t, format, tt.input, tt.opt)
			if err != nil {
				t.Fatalf("fatal error: %v", err)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestCSV(t *testing.T) {
	t.Parallel()
	runReadCases(t, "csv", []readCase{
		{
			name:  "BOM, CRLF and a missing final newline are read as plain lines",
			input: "\ufeffurl,id\r\nhttps://a.com,1\r\nhttps://b.com,2",
			want: []string{
				"row 1 line 2: universal url=https://a.com id=1",
				"row 2 line 3: universal url=https://b.com id=2",
			},
		},
		{
			name:  "a quoted field with a comma and line breaks is one record on the line it starts, and later lines stay right",
			input: "url,id,target\n\"https://a.com/x,y\",\"two\r\nlines\nthree\",\n\"https://b.com\",\"say \"\"hi\"\"\",\r\nhttps://c.com,3,\n",
			want: []string{
				"row 1 line 2: universal url=https://a.com/x,y id=two\nlines\nthree",
				"row 2 line 5: universal url=https://b.com id=say \"hi\"",
				"row 3 line 6: universal url=https://c.com id=3",
			},
		},
		{
			name:  "blank lines are skipped and take no row number, but count as lines",
			input: "\n\nurl\n\nhttps://a.com\n\r\n\nhttps://b.com\n\n",
			want: []string{
				"row 1 line 5: universal url=https://a.com",
				"row 2 line 8: universal url=https://b.com",
			},
		},
		{
			name:  "the header is trimmed and case-insensitive; cells are trimmed; an empty cell is not set",
			input: " URL , Geo ,Markdown\n  https://a.com  , us ,\nhttps://b.com,,TRUE\n",
			want: []string{
				`row 1 line 2: universal url=https://a.com {"geo":"us"}`,
				`row 2 line 3: universal url=https://b.com {"markdown":true}`,
			},
		},
		{
			name: "typed cells are parsed into canonical JSON with sorted keys",
			input: "page_count,url,query,target,limit,parse,markdown,force_headers,force_cookies,page_from,headless,successful_status_codes,headers,cookies,device_type,proxy_pool,stars\n" +
				`,https://a.com,,,,,false,0,true,,PNG,"200, 404","{""b"":1,""a"":[true]}",{},mobile,premium,` + "\n" +
				`,https://b.com,,,,,,,,,,"[500,201]",,,,,` + "\n" +
				`3,,coffee,google_search,,1,,,,100,,,,,,,` + "\n" +
				`,,channel,youtube_channel,0,,,,,,,,,,,,` + "\n" +
				`,,hotels,google_travel_hotels,,,,,,,,,,,,,4.50` + "\n",
			want: []string{
				`row 1 line 2: universal url=https://a.com {"cookies":{},"device_type":"mobile","force_cookies":true,"force_headers":false,"headers":{"a":[true],"b":1},"headless":"png","markdown":false,"proxy_pool":"premium","successful_status_codes":[200,404]}`,
				`row 2 line 3: universal url=https://b.com {"successful_status_codes":[500,201]}`,
				`row 3 line 4: google_search query=coffee {"page_count":3,"page_from":100,"parse":true}`,
				`row 4 line 5: youtube_channel query=channel {"limit":0}`,
				`row 5 line 6: google_travel_hotels query=hotels {"stars":4.5}`,
			},
		},
		{
			name:  "string parameters keep their text and are JSON-escaped",
			input: "url,geo,locale,session_id,passthrough,http_method,callback_url,payload\n" + `https://a.com,"New York, NY",en-US,s1,"a""b\c<&>",post,https://hook.example/x?a=1&b=2,aGVsbG8=` + "\n",
			want: []string{
				`row 1 line 2: universal url=https://a.com {"callback_url":"https://hook.example/x?a=1&b=2","geo":"New York, NY","http_method":"post","locale":"en-US","passthrough":"a\"b\\c<&>","payload":"aGVsbG8=","session_id":"s1"}`,
			},
		},
		{
			name:  "the row's parameters win over the defaults, which fill the rest",
			input: "url,geo\nhttps://a.com,de\nhttps://b.com,\n",
			opt:   Options{Defaults: `{"geo":"us","locale":"en-GB"}`},
			want: []string{
				`row 1 line 2: universal url=https://a.com {"geo":"de","locale":"en-GB"}`,
				`row 2 line 3: universal url=https://b.com {"geo":"us","locale":"en-GB"}`,
			},
		},
		{
			name:  "targets: the row's, else the default, else universal for a url; a query needs one; the table must know it",
			input: "url,query,target\nhttps://a.com,,\nhttps://b.com,,amazon\n,coffee,\n,tea,bing_search\nhttps://c.com,,my_new_target\n,tea,google_serch\n",
			opt:   Options{DefaultTarget: "google"},
			want: []string{
				"row 1 line 2: google url=https://a.com",
				"row 2 line 3: amazon url=https://b.com",
				"row 3 line 4: ERROR target google takes a url, not a query",
				"row 4 line 5: bing_search query=tea",
				`row 5 line 6: ERROR unknown target "my_new_target"`,
				`row 6 line 7: ERROR unknown target "google_serch" (did you mean google_search?)`,
			},
		},
		{
			name:  "a query row without a target and without a default is a bad row",
			input: "query,target\ncoffee,\ncoffee,google_search\n",
			want: []string{
				"row 1 line 2: ERROR query row has no target (none in the row and no default target)",
				"row 2 line 3: google_search query=coffee",
			},
		},
		{
			name: "each kind of bad row gets its reason, and reading goes on after it",
			input: "url,query,target,id,parse,page_count,page_from,limit,headless,successful_status_codes,headers,callback_url,payload,device_type,geo,\n" +
				"https://a.com,q,,,,,,,,,,,,,,\n" +
				",,,,,,,,,,,,,,,\n" +
				"ftp://x,,,,,,,,,,,,,,,\n" +
				"https://,,,,,,,,,,,,,,,\n" +
				"https://a b.com,,,,,,,,,,,,,,,\n" +
				"https://a.com:80x/,,,,,,,,,,,,,,,\n" +
				"https://a.com,,google_search,,,,,,,,,,,,,\n" +
				",coffee,universal,,,,,,,,,,,,,\n" +
				"https://a.com,,bad target,,,,,,,,,,,,,\n" +
				"https://a.com,,bing,,maybe,,,,,,,,,,,\n" +
				",q,google_search,,,11,,,,,,,,,,\n" +
				"https://a.com,,bing,,,,x,,,,,,,,,\n" +
				",q,youtube_channel,,,,,101,,,,,,,,\n" +
				"https://a.com,,,,,,,,jpg,,,,,,,\n" +
				"https://a.com,,,,,,,,,\"200,abc\",,,,,,\n" +
				"https://a.com,,,,,,,,,,{nope,,,,,\n" +
				"https://a.com,,,,,,,,,,,mailto:x@y,,,,\n" +
				"https://a.com,,,,,,,,,,,,not base64!,,,\n" +
				"https://a.com,,,,,,,,,,,,,,\"a\tb\",\n" +
				"https://a.com,,,,,,,,,,,,,,,surprise\n" +
				"https://a.com,,,,,,,,,,,,,,\n" +
				"https://a.com,,,,,,,,,,,,,,,,\n" +
				"https://a.com,,,,,,,,,,,,,,,\n",
			want: []string{
				"row 1 line 2: ERROR row has both url and query",
				"row 2 line 3: ERROR row has no url, query, prompt or product_id",
				`row 3 line 4: ERROR url is not http(s): "ftp://x"`,
				`row 4 line 5: ERROR url has no host: "https://"`,
				`row 5 line 6: ERROR url contains a space or control character: "https://a b.com"`,
				`row 6 line 7: ERROR url has a bad port: "https://a.com:80x/"`,
				"row 7 line 8: ERROR target google_search takes a query, not a url",
				"row 8 line 9: ERROR target universal takes a url, not a query",
				`row 9 line 10: ERROR target is not a target name: "bad target"`,
				`row 10 line 11: ERROR parse: want true/false/1/0, got "maybe"`,
				"row 11 line 12: ERROR page_count: 11 is out of range 1-10",
				`row 12 line 13: ERROR page_from: want an integer, got "x"`,
				"row 13 line 14: ERROR limit: 101 is out of range 0-100",
				`row 14 line 15: ERROR headless: want one of html, png, got "jpg"`,
				`row 15 line 16: ERROR successful_status_codes: want HTTP status codes (100-599), got "abc"`,
				"row 16 line 17: ERROR headers: want a JSON object, got {nope",
				`row 17 line 18: ERROR callback_url: is not http(s): "mailto:x@y"`,
				`row 18 line 19: ERROR payload: not standard base64: "not base64!"`,
				`row 19 line 20: ERROR geo: contains a control character: "a\tb"`,
				"row 20 line 21: ERROR a value in column 16, which has no name in the header",
				"row 21 line 22: ERROR row has 15 fields, the header has 16",
				"row 22 line 23: ERROR row has 17 fields, the header has 16",
				"row 23 line 24: universal url=https://a.com",
			},
		},
		{
			name:  "a cell shown in a reason is quoted when it holds a line break, so that the reason is one line",
			input: "url,headers\nhttps://a.com,\"{\nnope\"\n",
			want:  []string{`row 1 line 2: ERROR headers: want a JSON object, got "{\nnope"`},
		},
		{
			name:  "quote errors are bad rows and the rows after them are read",
			input: "url,id\nhttps://a.com,x\"y\n\"https://b.com\"z,1\nhttps://c.com,2\n\"https://d.com,3\n",
			want: []string{
				"row 1 line 2: ERROR bare \" in non-quoted-field",
				"row 2 line 3: ERROR extraneous or missing \" in quoted-field",
				"row 3 line 4: universal url=https://c.com id=2",
				"row 4 line 5: ERROR extraneous or missing \" in quoted-field",
			},
		},
		{
			name:  "a url or query longer than the API takes is a bad row",
			input: "url,query,target\nhttps://a.com/" + strings.Repeat("x", 2056-14) + ",,\nhttps://a.com/" + strings.Repeat("x", 2056-13) + ",,\n," + strings.Repeat("é", 2049) + ",bing_search\n",
			want: []string{
				"row 1 line 2: universal url=https://a.com/" + strings.Repeat("x", 2056-14),
				"row 2 line 3: ERROR url is longer than 2056 characters (2057)",
				"row 3 line 4: ERROR query is longer than 2048 characters (2049)",
			},
		},
		{
			name:  "a row that is not UTF-8 is a bad row",
			input: "url,id\nhttps://a.com,caf\xe9\nhttps://b.com,ok\n",
			want: []string{
				"row 1 line 2: ERROR " + notUTF8,
				"row 2 line 3: universal url=https://b.com id=ok",
			},
		},
		{
			name:  "an input of only a header has no rows",
			input: "url,id\n",
		},
		{
			name:  "an empty input has no rows",
			input: "",
		},
	})
}

func TestCSVHeaderErrorsAreFatal(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, input string
		is          error
		want        string // in the message
	}{
		{"an unknown column is named", "url,colour\nhttps://a.com,red\n", ErrUnknownColumn, `in.csv: line 1: unknown column "colour" in the header`},
		{"a missing header row gets a hint", "https://a.com,1\n", ErrUnknownColumn, "(is the header row missing?)"},
		{"a repeated column is named", "\n\nurl,geo,GEO\n", ErrHeader, `in.csv: line 3: bad CSV header: column "geo" appears twice`},
		{"a header without an input field or a target", "id,geo\n", ErrHeader, "it has no url, query, prompt or product_id column"},
		{"an unknown column names the nearest known name", "query,target,google_results_langauge\n,q,google_search,de\n", ErrUnknownColumn,
			`unknown column "google_results_langauge" in the header (did you mean google_results_language?): no target takes it`},
		{"passtrough and passthrough are one column", "url,passtrough,passthrough\n", ErrHeader, `column "passthrough" appears twice`},
		{"a header with a quote error", "url,\"id\n", ErrHeader, "in.csv: line 1: bad CSV header"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := NewReader(strings.NewReader(tt.input), "in.csv", Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Next()
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %v containing %q", err, tt.is, tt.want)
			}
			var re *RowError
			if errors.As(err, &re) {
				t.Fatal("a header error must not be a RowError")
			}
			if _, again := r.Next(); again != err {
				t.Errorf("second Next: got %v, want the same fatal error", again)
			}
		})
	}
}

func TestJSONL(t *testing.T) {
	t.Parallel()
	runReadCases(t, "jsonl", []readCase{
		{
			name:  "BOM, CRLF, blank lines and a missing final newline are fine",
			input: "\ufeff{\"url\":\"https://a.com\"}\r\n\r\n   \n{\"url\":\"https://b.com\",\"id\":\"x\"}",
			want: []string{
				"row 1 line 1: universal url=https://a.com",
				"row 2 line 4: universal url=https://b.com id=x",
			},
		},
		{
			name: "keys in any order, escapes decoded, numbers and objects for typed parameters",
			input: `{ "page_count" : 2 , "query":"caf\u00e9 \"au\" lait\/\\", "target":"google_search", "id": 42, "parse": true }` + "\n" +
				`{ "headers" : {"z":"1","a":{"y":null,"b":2.50}}, "url":"https://a.com/caf\u00e9", "successful_status_codes":[200, 301], "cookies":{"n":["v"]} }` + "\n",
			want: []string{
				`row 1 line 1: google_search query=café "au" lait/\ id=42 {"page_count":2,"parse":true}`,
				`row 2 line 2: universal url=https://a.com/café {"cookies":{"n":["v"]},"headers":{"a":{"b":2.50,"y":null},"z":"1"},"successful_status_codes":[200,301]}`,
			},
		},
		{
			name:  "null and the empty string mean not set",
			input: `{"url":"https://a.com","query":null,"geo":"","locale":null,"target":null,"id":""}` + "\n",
			opt:   Options{Defaults: `{"locale":"en-GB"}`},
			want:  []string{`row 1 line 1: universal url=https://a.com {"locale":"en-GB"}`},
		},
		{
			name: "each kind of bad line gets its reason, and reading goes on after it",
			input: "{\"url\":\"https://a.com\"\n" +
				"[\"https://a.com\"]\n" +
				"\"https://a.com\"\n" +
				"{\"url\":\"https://a.com\",\"colour\":\"red\"}\n" +
				"{\"url\":\"https://a.com\",\"url\":\"https://b.com\"}\n" +
				"{\"url\":42}\n" +
				"{\"url\":\"https://a.com\",\"geo\":1}\n" +
				"{\"query\":\"q\",\"target\":\"google_search\",\"parse\":\"true\"}\n" +
				"{\"query\":\"q\",\"target\":\"google_search\",\"page_count\":2.0}\n" +
				"{\"query\":\"q\",\"target\":\"youtube_channel\",\"limit\":\"5\"}\n" +
				"{\"url\":\"https://a.com\",\"headers\":\"x: y\"}\n" +
				"{\"url\":\"https://a.com\",\"successful_status_codes\":{\"a\":1}}\n" +
				"{\"url\":\"https://a.com\",\"successful_status_codes\":[200,\"x\"]}\n" +
				"{\"url\":\"https://a.com\"} trailing\n" +
				"{\"url\":\"https://a.com\",}\n" +
				"{\"url\":\"bad\\q\"}\n" +
				"{\"url\":\"https://a.com\",\"headers\":" + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + "}\n" +
				"{\"url\":\"https://a.com\",\"parse\":tru}\n" +
				"{\"url\":\"https://a.com\",\"id\":true}\n" +
				"{\"query\":\"q\",\"target\":\"bing_search\",\"page_from\":-1}\n" +
				"{\"query\":\"q\",\"url\":\"https://a.com\"}\n" +
				"{}\n" +
				"{\"url\":\"https://a.com\"}\n",
			want: []string{
				"row 1 line 1: ERROR malformed JSON at column 22: unexpected end of JSON input",
				"row 2 line 2: ERROR not a JSON object",
				"row 3 line 3: ERROR not a JSON object",
				`row 4 line 4: ERROR unknown key "colour"`,
				"row 5 line 5: universal url=https://b.com", // a repeated key: the last counts, as in encoding/json
				"row 6 line 6: ERROR url: want a string, got a number",
				"row 7 line 7: ERROR geo: want a string, got a number",
				"row 8 line 8: ERROR parse: want true or false, got a string",
				"row 9 line 9: ERROR page_count: want an integer, got 2.0",
				"row 10 line 10: ERROR limit: want an integer, got a string",
				"row 11 line 11: ERROR headers: want a JSON object, got a string",
				"row 12 line 12: ERROR successful_status_codes: want an array of status codes, got an object",
				`row 13 line 13: ERROR successful_status_codes: want an array of status codes, got [200,"x"]`,
				"row 14 line 14: ERROR malformed JSON at column 25: invalid character 't' after top-level value",
				"row 15 line 15: ERROR malformed JSON at column 24: invalid character '}' looking for beginning of object key string",
				"row 16 line 16: ERROR malformed JSON at column 13: invalid character 'q' in string escape code",
				"row 17 line 17: ERROR malformed JSON at column 10033: invalid character '[' exceeded max depth",
				"row 18 line 18: ERROR malformed JSON at column 35: invalid character '}' in literal true (expecting 'e')",
				"row 19 line 19: ERROR id: want a string, got a boolean",
				"row 20 line 20: ERROR page_from: -1 is out of range 0-100",
				"row 21 line 21: ERROR row has both url and query",
				"row 22 line 22: ERROR row has no url, query, prompt or product_id",
				"row 23 line 23: universal url=https://a.com",
			},
		},
		{
			name:  "a url with spaces around it is not trimmed in JSON",
			input: `{"url":"https://a.com "}` + "\n",
			want:  []string{`row 1 line 1: ERROR url contains a space or control character: "https://a.com "`},
		},
		{
			name:  "only JSON whitespace is trimmed: a no-break space after the object is data, and columns count leading space",
			input: "\t{\"url\":\"https://a.com\"} \r\n {\"url\":\"https://b.com\"}\u00a0\n",
			want: []string{
				"row 1 line 1: universal url=https://a.com",
				"row 2 line 2: ERROR malformed JSON at column 25: invalid character 'Â' after top-level value",
			},
		},
		{
			name:  "surrogate pairs decode, lone surrogates become U+FFFD",
			input: `{"query":"\ud83d\ude00 \ud800x","target":"bing_search"}` + "\n",
			want:  []string{"row 1 line 1: bing_search query=😀 \ufffdx"},
		},
	})
}

func TestTXT(t *testing.T) {
	t.Parallel()
	runReadCases(t, "txt", []readCase{
		{
			name:  "comments, blank lines, spaces, BOM, CRLF and no final newline",
			input: "\ufeff# urls\r\n\r\n  https://a.com/1  \r\n\t# indented comment\n\nhttps://b.com/2",
			want: []string{
				"row 1 line 3: universal url=https://a.com/1",
				"row 2 line 6: universal url=https://b.com/2",
			},
		},
		{
			name:  "default target and parameters apply to every line",
			input: "https://a.com\nnot a url\nhttps://b.com\n",
			opt:   Options{DefaultTarget: "amazon", Defaults: `{"geo":"de"}`},
			want: []string{
				`row 1 line 1: amazon url=https://a.com {"geo":"de"}`,
				`row 2 line 2: ERROR url is not http(s): "not a url"`,
				`row 3 line 3: amazon url=https://b.com {"geo":"de"}`,
			},
		},
	})
}

// TestTXTQueryTargetIsFatal proves that a txt input with a default target
// taking queries fails once, up front, instead of rejecting every line.
func TestTXTQueryTargetIsFatal(t *testing.T) {
	t.Parallel()
	_, err := NewReader(strings.NewReader("https://a.com\n"), "in.txt", Options{DefaultTarget: "google_search"})
	if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "in.txt") {
		t.Fatalf("got %v, want ErrOptions naming in.txt", err)
	}
}

func TestLongRecordsAreBadRows(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxRecordLen)
	for _, tt := range []struct {
		name, format, input string
		want                []string
	}{
		{
			name:   "txt: a line of exactly MaxRecordLen is read, one byte more is a bad row",
			format: "txt",
			input:  "#" + long[1:] + "\n#" + long + "\r\nhttps://a.com\n",
			want:   []string{"row 1 line 2: ERROR line is longer than 1 MiB", "row 2 line 3: universal url=https://a.com"},
		},
		{
			name:   "jsonl: a long line without a final newline",
			format: "jsonl",
			input:  "{\"url\":\"https://a.com\"}\n{\"id\":\"" + long + "\"}",
			want:   []string{"row 1 line 1: universal url=https://a.com", "row 2 line 2: ERROR line is longer than 1 MiB"},
		},
		{
			name:   "csv: one long line",
			format: "csv",
			input:  "url,id\nhttps://a.com," + long + "\nhttps://b.com,2\n",
			want:   []string{"row 1 line 2: ERROR record is longer than 1 MiB", "row 2 line 3: universal url=https://b.com id=2"},
		},
		{
			name:   "csv: a quoted record of many short lines",
			format: "csv",
			input:  "url,id\nhttps://a.com,\"" + strings.Repeat("0123456789\n", MaxRecordLen/10) + "\"\nhttps://b.com,2\n",
			want:   []string{"row 1 line 2: ERROR record is longer than 1 MiB", fmt.Sprintf("row 2 line %d: universal url=https://b.com id=2", 3+MaxRecordLen/10)},
		},
		{
			name:   "csv: a record of exactly MaxRecordLen is read, one byte more is a bad row",
			format: "csv",
			input:  "url,id\nhttps://a.com," + long[:MaxRecordLen-14] + "\r\nhttps://a.com,x" + long[:MaxRecordLen-14] + "\nhttps://b.com,2",
			want:   []string{"row 1 line 2: universal url=https://a.com id=" + long[:MaxRecordLen-14], "row 2 line 3: ERROR record is longer than 1 MiB", "row 3 line 4: universal url=https://b.com id=2"},
		},
		{
			name:   "csv: a long unquoted field followed by a quoted field over two lines is one bad row",
			format: "csv",
			input:  "url,id,geo\nhttps://a.com," + long + ",\"two\nlines\"\nhttps://b.com,2,\n",
			want:   []string{"row 1 line 2: ERROR record is longer than 1 MiB", "row 2 line 4: universal url=https://b.com id=2"},
		},
		{
			name:   "csv: a quote error before the cut ends the record at the end of its line",
			format: "csv",
			input:  "url,id\nhttps://a.com,\"x\"y" + long + "\"\nhttps://b.com,2\n",
			want:   []string{"row 1 line 2: ERROR record is longer than 1 MiB", "row 2 line 3: universal url=https://b.com id=2"},
		},
		{
			name:   "csv: a long record of empty fields and one of escaped quotes",
			format: "csv",
			input:  "url,id\nhttps://a.com" + strings.Repeat(",", MaxRecordLen) + "\n\"" + strings.Repeat(`"",""`, MaxRecordLen/4) + "\",\nhttps://b.com,2\n",
			want:   []string{"row 1 line 2: ERROR record is longer than 1 MiB", "row 2 line 3: ERROR record is longer than 1 MiB", "row 3 line 4: universal url=https://b.com id=2"},
		},
		{
			name:   "csv: a record three times the limit, quoted over many lines, is one bad row",
			format: "csv",
			input:  "url,id\n\"" + strings.Repeat("a\r\n", MaxRecordLen) + "\",1\nhttps://b.com,2\n",
			want:   []string{"row 1 line 2: ERROR record is longer than 1 MiB", fmt.Sprintf("row 2 line %d: universal url=https://b.com id=2", 3+MaxRecordLen)},
		},
		{
			name:   "csv: more than MaxRecordLen of blank lines before a record are skipped",
			format: "csv",
			input:  "url,id\n" + strings.Repeat("\r\n", MaxRecordLen) + "https://b.com,2\n",
			want:   []string{fmt.Sprintf("row 1 line %d: universal url=https://b.com id=2", 2+MaxRecordLen)},
		},
		{
			name:   "csv: an unterminated quote runs to the end of the input as one bad row",
			format: "csv",
			input:  "url,id\nhttps://a.com,\"" + strings.Repeat("https://b.com,1\n", MaxRecordLen/8),
			want:   []string{"row 1 line 2: ERROR record is longer than 1 MiB"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := readAll(t, tt.format, tt.input, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRowErrorInputIsCapped proves that a bad row carries its raw text,
// without the line end, cut to 4 KiB.
func TestRowErrorInputIsCapped(t *testing.T) {
	t.Parallel()
	long := "ftp://" + strings.Repeat("é", 3000)
	for _, tt := range []struct{ format, input, want string }{
		{"txt", "ftp://x\r\n", "ftp://x"},
		{"jsonl", "{\"url\":1}\r\n", "{\"url\":1}"},
		{"csv", "url,id\n\"https://\",\"a\nb\"\r\n", "\"https://\",\"a\nb\""},
		{"txt", long + "\n", long[:maxInput]},
	} {
		r, err := NewReader(strings.NewReader(tt.input), "x", Options{Format: tt.format})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Next()
		var re *RowError
		if !errors.As(err, &re) {
			t.Fatalf("%s %q: got %v, want a RowError", tt.format, tt.input, err)
		}
		if re.Input != tt.want {
			t.Errorf("%s: Input = %q, want %q", tt.format, capString(re.Input, 40), capString(tt.want, 40))
		}
		if len(re.Input) > maxInput {
			t.Errorf("Input is %d bytes", len(re.Input))
		}
	}
}

func TestRowErrorError(t *testing.T) {
	t.Parallel()
	e := &RowError{Row: 3, Line: 12, Reason: `url is not http(s): "ftp://x"`}
	if got, want := e.Error(), `line 12: url is not http(s): "ftp://x"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	io.WriteString(w, s)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestOpen proves the file handling: gzip by name and by magic, formats
// from names, errors that name the file, and Close.
func TestOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	csvText := "\ufeffurl\nhttps://a.com\n"
	for _, tt := range []struct {
		name string // what is proved
		path string
		opt  Options
		want string // first record, or a substring of the error
	}{
		{"a .csv.gz is decompressed and its format read from the name", write("a.csv.gz", gz(t, csvText)), Options{}, "row 1 line 2: universal url=https://a.com"},
		{"gzip is sniffed when the name does not say so", write("b.csv", gz(t, csvText)), Options{}, "row 1 line 2: universal url=https://a.com"},
		{"a .JSONL.GZ name is case-insensitive", write("c.JSONL.GZ", gz(t, `{"url":"https://a.com"}`)), Options{}, "row 1 line 1: universal url=https://a.com"},
		{"Options.Format wins over the name", write("d.data", []byte("https://a.com\n")), Options{Format: "txt"}, "row 1 line 1: universal url=https://a.com"},
		{"an empty .gz file has no rows", write("e.txt.gz", nil), Options{}, "EOF"},
		{"a .gz name on a plain file is an error naming it", write("f.csv.gz", []byte(csvText)), Options{}, "f.csv.gz: gzip: invalid header"},
		{"a corrupt gzip stream is a fatal error naming the file", write("g.csv.gz", gz(t, csvText)[:20]), Options{}, "g.csv.gz: line 2: unexpected EOF"},
		{"an unknown extension: the content tells the format", write("h.data", []byte("\n{\"url\":\"https://a.com\"}\n")), Options{}, "row 1 line 2: universal url=https://a.com"},
		{"an unknown extension and no rows: empty", write("h2.data", []byte("\n# nothing\n")), Options{}, "h2.data: the input has no rows"},
		{"a bad Options.Format is refused", write("i.csv", []byte("url\n")), Options{Format: "xml"}, `unknown input format "xml"`},
		{"a missing file is named", filepath.Join(dir, "nope.csv"), Options{}, "nope.csv: no such file"},
		{"UTF-16 is refused with advice", write("j.txt", []byte("\xff\xfeh\x00")), Options{}, "UTF-16"},
		{"bad defaults are refused", write("k.txt", []byte("https://a.com\n")), Options{Defaults: `{"parse":"maybe"}`}, "parse: want true or false"},
		{"a bad default target is refused", write("l.txt", []byte("https://a.com\n")), Options{DefaultTarget: "a b"}, "target is not a target name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Open(tt.path, tt.opt)
			if err == nil {
				var rec Record
				rec, err = r.Next()
				if err == nil {
					if got := fmtRecord(rec); got != tt.want {
						t.Errorf("got %q, want %q", got, tt.want)
					}
					if cerr := r.Close(); cerr != nil {
						t.Errorf("Close: %v", cerr)
					}
					if _, err := r.Next(); err == nil {
						t.Error("Next after Close succeeded")
					}
					return
				}
				r.Close()
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestFormatFromName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"a.csv": "csv", "dir.v2/A.CSV": "csv", "a.csv.gz": "csv", "a.jsonl": "jsonl", "a.ndjson.gz": "jsonl",
		"a.txt": "txt", "a.txt.GZ": "txt", "a.json": "", "a": "", "a.gz": "", "-": "",
	} {
		got, err := FormatFromName(name)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("FormatFromName(%q) = %q, %v; want %q", name, got, err, want)
		}
		if err != nil && !errors.Is(err, ErrFormat) {
			t.Errorf("FormatFromName(%q): error %v is not ErrFormat", name, err)
		}
	}
}

// TestGolden proves the rejects of a mixed bad-row input of every format:
// row, line, id, raw input and reason, as rejects.jsonl will carry them.
func TestGolden(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	for _, name := range []string{"bad.csv", "bad.jsonl", "bad.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(bytes.NewReader(data), name, Options{Defaults: `{"geo":"us"}`})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "# %s\n", name)
		enc := json.NewEncoder(&out)
		enc.SetEscapeHTML(false)
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			var re *RowError
			switch {
			case errors.As(err, &re):
				// The fields of a line of rejects.jsonl.
				err = enc.Encode(struct {
					Row   int64  `json:"row"`
					Line  int64  `json:"line"`
					ID    string `json:"id,omitempty"`
					Error string `json:"error"`
					Input string `json:"input"`
				}{re.Row, re.Line, re.ID, re.Reason, re.Input})
			case err != nil:
				t.Fatal(err)
			default:
				var params json.RawMessage
				if rec.Params != "" {
					params = json.RawMessage(rec.Params)
				}
				err = enc.Encode(struct {
					Row       int64           `json:"row"`
					Line      int64           `json:"line"`
					ID        string          `json:"id,omitempty"`
					Target    string          `json:"target"`
					URL       string          `json:"url,omitempty"`
					Query     string          `json:"query,omitempty"`
					Prompt    string          `json:"prompt,omitempty"`
					ProductID string          `json:"product_id,omitempty"`
					Params    json.RawMessage `json:"params,omitempty"`
				}{rec.Row, rec.Line, rec.ID, rec.Target, rec.URL, rec.Query, rec.Prompt, rec.ProductID, params})
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	golden := filepath.Join("testdata", "rejects.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("rejects differ from %s (run with -update to accept):\n%s", golden, out.String())
	}
}

// infiniteCSV yields a header and then n generated rows without ever
// holding them all.
type infiniteCSV struct {
	n, i int
	buf  []byte
}

func (g *infiniteCSV) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.i > g.n {
			return 0, io.EOF
		}
		if g.i == 0 {
			g.buf = append(g.buf, "url,id,geo\n"...)
		} else {
			g.buf = fmt.Appendf(g.buf, "https://example.com/item/%d,%d,%s\n", g.i, g.i, geos[g.i%len(geos)])
		}
		g.i++
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// TestMemoryDoesNotGrow proves that reading streams: the live heap after
// 300,000 rows (30 MB of input) is what it was after a few thousand.
func TestMemoryDoesNotGrow(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 300,000 rows")
	}
	const rows = 300_000
	r, err := NewReader(&infiniteCSV{n: rows}, "gen.csv", Options{})
	if err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var early uint64
	for i := 1; ; i++ {
		_, err := r.Next()
		if err == io.EOF {
			if i-1 != rows {
				t.Fatalf("read %d rows, want %d", i-1, rows)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == 5000 {
			early = heap()
		}
	}
	if late := heap(); late > early+4<<20 {
		t.Errorf("live heap grew from %d to %d bytes over %d rows", early, late, rows)
	}
}

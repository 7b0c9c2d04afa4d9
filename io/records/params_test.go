package records

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/jsonstr"
)

func TestParseParam(t *testing.T) {
	t.Parallel()
	allow := []string{"new_flag", "render_js", "xhr"}
	for _, tt := range []struct {
		name, kv string
		want     Params
		err      string // in the error, when one is wanted
	}{
		{"a plain word is a string", "geo=United States", `{"geo":"United States"}`, ""},
		{"a number for a string parameter keeps its text", "geo=10115", `{"geo":"10115"}`, ""},
		{"a JSON string literal is unquoted", `locale="en-GB"`, `{"locale":"en-GB"}`, ""},
		{"a JSON bool", "parse=true", `{"parse":true}`, ""},
		{"1 is true, as in a CSV cell", "markdown=1", `{"markdown":true}`, ""},
		{"a JSON integer", "page_count=10", `{"page_count":10}`, ""},
		{"a JSON object, canonicalized", `headers={"b": "2", "a": "1"}`, `{"headers":{"a":"1","b":"2"}}`, ""},
		{"status codes as JSON", "successful_status_codes=[200, 404]", `{"successful_status_codes":[200,404]}`, ""},
		{"status codes as a list", "successful_status_codes=200,404", `{"successful_status_codes":[200,404]}`, ""},
		{"an enum is matched case-insensitively", "headless=HTML", `{"headless":"html"}`, ""},
		{"only the first = splits", "passthrough=a=b", `{"passthrough":"a=b"}`, ""},
		{"passtrough is passthrough", "passtrough=x", `{"passthrough":"x"}`, ""},
		{"a parameter of one target only is checked by its type", "google_results_language=de", `{"google_results_language":"de"}`, ""},
		{"a number without Integer keeps its value", "stars=4.50", `{"stars":4.5}`, ""},
		{"a value that is not a bool", "parse=maybe", "", `param parse: want true/false/1/0, got "maybe"`},
		{"a bool of one target only is checked too", "hd=yes", "", `param hd: want true/false/1/0, got "yes"`},
		{"an integer out of range", "page_count=11", "", "param page_count: 11 is out of range 1-10"},
		{"a fraction is not an integer", "limit=1.5", "", "param limit: want an integer"},
		{"an unknown key names the nearest known one", "google_results_langauge=de", "", `param "google_results_langauge": unknown parameter (did you mean google_results_language?): no target takes it`},
		{"an unknown key with nothing near", "colour=red", "", `param "colour": unknown parameter: no target takes it`},
		{"target has its own flag", "target=google", "", "option of its own"},
		{"url is not a parameter", "url=https://a.com", "", "belongs in the input rows"},
		{"prompt is not a parameter", "prompt=hi", "", "belongs in the input rows"},
		{"no =", "parse", "", "want KEY=VALUE"},
		{"an empty value", "geo=", "", "param geo: empty value"},
		{"headers must be a JSON object", "headers=x", "", "param headers: want a JSON object, got x"},
		{"headers cannot be an array", "headers=[1]", "", "param headers: want a JSON object, got an array"},
		{"an allowed name takes JSON as JSON", `new_flag={"b":[1, 2], "a":null}`, `{"new_flag":{"a":null,"b":[1,2]}}`, ""},
		{"an allowed name takes other text as a string", "render_js=yes please", `{"render_js":"yes please"}`, ""},
		{"an allowed name of the table is not checked", "xhr=sometimes", `{"xhr":"sometimes"}`, ""},
		{"an allowed name still needs a value", "new_flag=", "", "param new_flag: empty value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseParam(tt.kv, allow)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseParam(%q) = %q, %v; want an error with %q", tt.kv, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseParam(%q) = %q, %v; want %q", tt.kv, got, err, tt.want)
			}
		})
	}
}

// join merges ps from left to right, as run does with --param flags.
func join(ps ...Params) Params {
	var out Params
	for _, p := range ps {
		out = out.Merge(p)
	}
	return out
}

func TestMergeAndJoin(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		p, over   Params
		want      Params
		joinOrder []Params // when set, merging these in order must give want too
	}{
		{"empty with empty is empty", "", "", "", nil},
		{"over adds its keys in sorted order", `{"limit":5}`, `{"geo":"us"}`, `{"geo":"us","limit":5}`, nil},
		{"over wins on the same key", `{"geo":"us","parse":true}`, `{"geo":"de"}`, `{"geo":"de","parse":true}`, nil},
		{"empty over leaves p", `{"geo":"us"}`, "", `{"geo":"us"}`, nil},
		{"values are canonicalized", `{"headers": {"b":1, "a":"<&>"}}`, "", `{"headers":{"a":"<&>","b":1}}`, nil},
		{"merges go left to right", "", "", `{"geo":"fr","limit":1}`, []Params{`{"geo":"us"}`, `{"limit":1}`, `{"geo":"fr"}`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.p.Merge(tt.over)
			if tt.joinOrder != nil {
				got = join(tt.joinOrder...)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParamsAreCanonical proves the promise that equal parameters give
// equal Params whatever their source: a CSV row, a JSONL row in another
// key order, or --param defaults.
func TestParamsAreCanonical(t *testing.T) {
	t.Parallel()
	csvGot, err := readAll(t, "csv", "headers,geo,url,markdown,callback_url\n\"{\"\"b\"\":1,\"\"a\"\":\"\"x\"\"}\",\"a&b\",https://a.com,1,https://h.io/?a=1&b=2\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsonlGot, err := readAll(t, "jsonl", `{"markdown":true,"callback_url":"https://h.io/?a=1\u0026b=2","url":"https://a.com","geo":"a\u0026b","headers":{"a":"x","b":1}}`+"\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var defs []Params
	for _, kv := range []string{`headers={"a":"x", "b":1}`, "callback_url=https://h.io/?a=1&b=2", "markdown=true", "geo=a&b"} {
		p, err := ParseParam(kv, nil)
		if err != nil {
			t.Fatal(err)
		}
		defs = append(defs, p)
	}
	txtGot, err := readAll(t, "txt", "https://a.com\n", Options{Defaults: join(defs...)})
	if err != nil {
		t.Fatal(err)
	}
	want := `row 1 line 2: universal url=https://a.com {"callback_url":"https://h.io/?a=1&b=2","geo":"a&b","headers":{"a":"x","b":1},"markdown":true}`
	if len(csvGot) != 1 || csvGot[0] != want {
		t.Errorf("csv: got %q, want %q", csvGot, want)
	}
	want = strings.Replace(want, "line 2", "line 1", 1)
	if len(jsonlGot) != 1 || jsonlGot[0] != want {
		t.Errorf("jsonl: got %q, want %q", jsonlGot, want)
	}
	if len(txtGot) != 1 || txtGot[0] != want {
		t.Errorf("txt: got %q, want %q", txtGot, want)
	}
}

// TestSpaceIsTheTable proves that the names a reader knows are exactly
// the parameters of decodo's table, sorted, that every target defines a
// name alike (so that --param and defaults can be checked once, without a
// target), and that every Params written is valid JSON.
func TestSpaceIsTheTable(t *testing.T) {
	t.Parallel()
	defs := map[string]decodo.Param{}
	for _, tg := range decodo.Targets() {
		for _, p := range tg.Params {
			if q, ok := defs[p.Name]; ok && !reflect.DeepEqual(p, q) {
				t.Errorf("target %s defines %s as %+v, another target as %+v", tg.Name, p.Name, p, q)
			}
			defs[p.Name] = p
		}
	}
	var got []string
	for _, d := range known.defs {
		got = append(got, d.name)
		if d.allowed || d.param == nil || !reflect.DeepEqual(*d.param, defs[d.name]) {
			t.Errorf("%s: %+v, want the table's %+v", d.name, d, defs[d.name])
		}
	}
	want := slices.Sorted(maps.Keys(defs))
	if !slices.Equal(got, want) {
		t.Errorf("known names = %v\nwant the table's %v", got, want)
	}
	all := newParamSet(known)
	for i := range known.defs {
		all.put(i, slot{s: "v\"\x01\u2028"})
	}
	p := appendParams(nil, known.defs, &all, &paramSet{})
	var m map[string]string
	if err := json.Unmarshal(p, &m); err != nil || len(m) != len(known.defs) || m["geo"] != "v\"\x01\u2028" {
		t.Errorf("appendParams wrote %s: %v", p, err)
	}
}

// TestAppendJSONStringMatchesEncodingJSON proves the hand-written string
// escaper agrees with encoding/json (HTML escaping aside).
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "q\"b\\", "\n\r\t\x00\x1f\x7f", "<&>", "é😀", "\u2028\u2029", "bad\xffutf8"} {
		var back string
		if err := json.Unmarshal(jsonstr.Append(nil, s), &back); err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		want, _ := json.Marshal(s)
		var wantBack string
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q: round trip gives %q, encoding/json %q", s, back, wantBack)
		}
	}
}

// TestRowsShareParams proves the interning: rows with equal parameters get
// the very same string, so a batch of them holds one copy.
func TestRowsShareParams(t *testing.T) {
	t.Parallel()
	r, err := NewReader(strings.NewReader("url,geo\nhttps://a.com,us\nhttps://b.com,de\nhttps://c.com,us\n"), "x.csv", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ps []Params
	for range 3 {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, rec.Params)
	}
	if ps[0] != ps[2] || ps[0] == ps[1] {
		t.Fatalf("params %q", ps)
	}
	if unsafeData(ps[0]) != unsafeData(ps[2]) {
		t.Error("equal Params of two rows are two strings")
	}
}

func unsafeData(p Params) *byte { return unsafe.StringData(string(p)) }

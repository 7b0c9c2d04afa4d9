package records

import (
	"errors"
	"strings"
	"testing"

	"github.com/decodo-batch/decodo-batch/decodo"
)

// TestTargetsJSONL proves the rules of decodo's target table on JSONL rows:
// each target's own input field and parameters, and the reasons of rows
// that break them.
func TestTargetsJSONL(t *testing.T) {
	t.Parallel()
	runReadCases(t, "jsonl", []readCase{
		{
			name: "url, query, prompt and product_id rows across many targets read clean with parameters only the SDK lists",
			input: `{"url":"https://a.com","xhr":true}` + "\n" +
				`{"query":"coffee","target":"google_search","google_results_language":"de","google_nfpr":true}` + "\n" +
				`{"query":"cats","target":"youtube_search","hd":true,"4k":false,"upload_date":"today"}` + "\n" +
				`{"product_id":"123456","target":"walmart_product","delivery_zip":"10001","fulfillment_type":"pickup"}` + "\n" +
				`{"prompt":"What is Go?\nAnswer briefly.","target":"chatgpt","search":true}` + "\n" +
				`{"prompt":"hello","target":"gemini","geo":"de"}` + "\n" +
				`{"prompt":"why","target":"perplexity","markdown":true}` + "\n" +
				`{"product_id":"A-1","target":"target_product","target_store_id":"1234"}` + "\n" +
				`{"product_id":"1729","target":"tiktok_shop_product","country":"US"}` + "\n" +
				`{"target":"universal_ecommerce","callback_url":"https://h.io/cb"}` + "\n" +
				`{"url":"https://www.amazon.com/dp/X","target":"amazon","parse":true}` + "\n" +
				`{"query":"hotels","target":"google_travel_hotels","adults":2,"children":1,"stars":4}` + "\n" +
				`{"query":"B0","target":"amazon_product","autoselect_variant":true,"domain":"de"}` + "\n" +
				`{"query":"drill","target":"lowes_search","lowes_store_id":"1","delivery_today_tomorrow":true}` + "\n",
			want: []string{
				`row 1 line 1: universal url=https://a.com {"xhr":true}`,
				`row 2 line 2: google_search query=coffee {"google_nfpr":true,"google_results_language":"de"}`,
				`row 3 line 3: youtube_search query=cats {"4k":false,"hd":true,"upload_date":"today"}`,
				`row 4 line 4: walmart_product product_id=123456 {"delivery_zip":"10001","fulfillment_type":"pickup"}`,
				"row 5 line 5: chatgpt prompt=What is Go?\nAnswer briefly. {\"search\":true}",
				`row 6 line 6: gemini prompt=hello {"geo":"de"}`,
				`row 7 line 7: perplexity prompt=why {"markdown":true}`,
				`row 8 line 8: target_product product_id=A-1 {"target_store_id":"1234"}`,
				`row 9 line 9: tiktok_shop_product product_id=1729 {"country":"US"}`,
				`row 10 line 10: universal_ecommerce {"callback_url":"https://h.io/cb"}`,
				`row 11 line 11: amazon url=https://www.amazon.com/dp/X {"parse":true}`,
				`row 12 line 12: google_travel_hotels query=hotels {"adults":2,"children":1,"stars":4}`,
				`row 13 line 13: amazon_product query=B0 {"autoselect_variant":true,"domain":"de"}`,
				`row 14 line 14: lowes_search query=drill {"delivery_today_tomorrow":true,"lowes_store_id":"1"}`,
			},
		},
		{
			name: "a row fills exactly the field its target takes, and a reject says which one that is",
			input: `{"url":"https://a.com","target":"chatgpt"}` + "\n" +
				`{"prompt":"hi","target":"google_search"}` + "\n" +
				`{"query":"q","target":"walmart_product"}` + "\n" +
				`{"product_id":"1","target":"universal"}` + "\n" +
				`{"url":"https://a.com","target":"universal_ecommerce"}` + "\n" +
				`{"target":"chatgpt"}` + "\n" +
				`{"prompt":"hi"}` + "\n" +
				`{"product_id":"1"}` + "\n" +
				`{"prompt":"hi","query":"q","url":"https://a.com","target":"gemini"}` + "\n",
			want: []string{
				"row 1 line 1: ERROR target chatgpt takes a prompt, not a url",
				"row 2 line 2: ERROR target google_search takes a query, not a prompt",
				"row 3 line 3: ERROR target walmart_product takes a product_id, not a query",
				"row 4 line 4: ERROR target universal takes a url, not a product_id",
				"row 5 line 5: ERROR target universal_ecommerce takes no input, not a url",
				"row 6 line 6: ERROR row has no prompt, which target chatgpt takes",
				"row 7 line 7: ERROR prompt row has no target (none in the row and no default target)",
				"row 8 line 8: ERROR product_id row has no target (none in the row and no default target)",
				"row 9 line 9: ERROR row has url, query and prompt: a row fills one",
			},
		},
		{
			name:  "the default target serves prompt and product_id rows too",
			input: `{"prompt":"hi"}` + "\n" + `{"product_id":"1"}` + "\n" + `{"product_id":"1","target":"walmart_product"}` + "\n",
			opt:   Options{DefaultTarget: "target_product"},
			want: []string{
				"row 1 line 1: ERROR target target_product takes a product_id, not a prompt",
				"row 2 line 2: target_product product_id=1",
				"row 3 line 3: walmart_product product_id=1",
			},
		},
		{
			name: "a prompt is at most 8192 characters, line breaks allowed; a product_id is not blank and has no control characters",
			input: `{"prompt":"` + strings.Repeat("é", decodo.MaxPromptLen) + `","target":"chatgpt"}` + "\n" +
				`{"prompt":"` + strings.Repeat("é", decodo.MaxPromptLen+1) + `","target":"chatgpt"}` + "\n" +
				`{"prompt":" \n ","target":"chatgpt"}` + "\n" +
				`{"product_id":"  ","target":"walmart_product"}` + "\n" +
				`{"product_id":"12\t3","target":"walmart_product"}` + "\n",
			want: []string{
				"row 1 line 1: chatgpt prompt=" + strings.Repeat("é", decodo.MaxPromptLen),
				"row 2 line 2: ERROR prompt is longer than 8192 characters (8193)",
				"row 3 line 3: ERROR prompt is blank",
				"row 4 line 4: ERROR product_id is blank",
				`row 5 line 5: ERROR product_id contains a control character: "12\t3"`,
			},
		},
		{
			name: "a parameter the row's target does not take is a reject naming the nearest one it takes, or listing them",
			input: `{"query":"q","target":"google_shopping_search","google_tbm":"isch"}` + "\n" +
				`{"query":"q","target":"google_lens","xhr":true}` + "\n" +
				`{"url":"https://a.com","parse":true}` + "\n" +
				`{"target":"universal_ecommerce","geo":"us"}` + "\n",
			want: []string{
				"row 1 line 1: ERROR target google_shopping_search does not take google_tbm (did you mean google_tbs?)",
				"row 2 line 2: ERROR target google_lens does not take xhr (it takes callback_url, device_type, headless, markdown, parse, passthrough)",
				"row 3 line 3: ERROR target universal does not take parse (it takes callback_url, cookies, device_type, force_cookies, force_headers, geo, headers, headless, http_method, locale, markdown, passthrough, payload, proxy_pool, session_id, successful_status_codes, xhr)",
				"row 4 line 4: ERROR target universal_ecommerce does not take geo (it takes callback_url, passthrough)",
			},
		},
		{
			name: "a key no target takes is a reject naming the nearest known name",
			input: `{"query":"q","target":"google_search","google_results_langauge":"de"}` + "\n" +
				`{"url":"https://a.com","colour":"red"}` + "\n",
			want: []string{
				`row 1 line 1: ERROR unknown key "google_results_langauge" (did you mean google_results_language?)`,
				`row 2 line 2: ERROR unknown key "colour"`,
			},
		},
		{
			name:  "a default parameter the row's target does not take is a reject of that row only",
			input: `{"query":"q","target":"youtube_channel"}` + "\n" + `{"query":"q","target":"google_search"}` + "\n",
			opt:   Options{Defaults: `{"geo":"us"}`},
			want: []string{
				"row 1 line 1: ERROR target youtube_channel does not take geo (it takes callback_url, limit, markdown, parse, passthrough); geo is a default parameter",
				`row 2 line 2: google_search query=q {"geo":"us"}`,
			},
		},
		{
			name: "values are checked by the target's definition of the parameter",
			input: `{"query":"q","target":"google_travel_hotels","adults":4}` + "\n" +
				`{"query":"q","target":"google_travel_hotels","stars":"4"}` + "\n" +
				`{"query":"q","target":"youtube_search","hd":"yes"}` + "\n" +
				`{"query":"q","target":"google_search","google_results_language":1}` + "\n" +
				`{"url":"https://a.com","proxy_pool":"cheap"}` + "\n" +
				`{"url":"https://a.com","cookies":[{"n":"v"}]}` + "\n",
			want: []string{
				"row 1 line 1: ERROR adults: 4 is out of range 1-3",
				"row 2 line 2: ERROR stars: want a number, got a string",
				"row 3 line 3: ERROR hd: want true or false, got a string",
				"row 4 line 4: ERROR google_results_language: want a string, got a number",
				`row 5 line 5: ERROR proxy_pool: want one of standard, premium, got "cheap"`,
				`row 6 line 6: ERROR cookies: want a JSON object, got an array`,
			},
		},
		{
			name: "passtrough is read as passthrough; both in one row is a reject",
			input: `{"url":"https://a.com","passtrough":"x"}` + "\n" +
				`{"query":"q","target":"youtube_metadata","passthrough":"y"}` + "\n" +
				`{"url":"https://a.com","passtrough":"x","passthrough":"y"}` + "\n",
			want: []string{
				`row 1 line 1: universal url=https://a.com {"passthrough":"x"}`,
				`row 2 line 2: youtube_metadata query=q {"passthrough":"y"}`,
				"row 3 line 3: ERROR row has both passthrough and passtrough, which are one parameter",
			},
		},
		{
			name: "an allowed parameter passes through with its JSON value for every target, and an allowed table name is not checked",
			input: `{"url":"https://a.com","render_flag":{"b":1, "a":[true]}}` + "\n" +
				`{"prompt":"hi","target":"chatgpt","render_flag":"x","hd":"sometimes"}` + "\n" +
				`{"target":"universal_ecommerce","render_flag":null}` + "\n",
			opt: Options{AllowParams: []string{"render_flag", "hd"}, Defaults: `{"hd":1}`},
			want: []string{
				`row 1 line 1: universal url=https://a.com {"hd":1,"render_flag":{"a":[true],"b":1}}`,
				`row 2 line 2: chatgpt prompt=hi {"hd":"sometimes","render_flag":"x"}`,
				`row 3 line 3: universal_ecommerce {"hd":1}`,
			},
		},
	})
}

// TestTargetsCSV proves the same rules on CSV rows, where a column may
// hold a parameter some targets take and others do not.
func TestTargetsCSV(t *testing.T) {
	t.Parallel()
	runReadCases(t, "csv", []readCase{
		{
			name: "a mixed CSV of url, query, prompt and product_id rows; an empty cell of a parameter a target does not take is fine",
			input: "url,query,prompt,product_id,target,id,google_results_language,xhr,hd,delivery_zip,passtrough,google_tbm\n" +
				"https://a.com,,,,,u1,,true,,,,\n" +
				",coffee,,,google_search,q1,de,,,,,nws\n" +
				",cats,,,youtube_search,q2,,,1,,,\n" +
				",,,123,walmart_product,p1,,,,10001,,\n" +
				",,\"Write a haiku,\nplease\",,chatgpt,c1,,,,,p-1,\n" +
				",,,,universal_ecommerce,e1,,,,,,\n" +
				",coffee,,,google_shopping_search,bad1,,,,,,isch\n" +
				",,,,,bad2,,,,,,\n",
			want: []string{
				`row 1 line 2: universal url=https://a.com id=u1 {"xhr":true}`,
				`row 2 line 3: google_search query=coffee id=q1 {"google_results_language":"de","google_tbm":"nws"}`,
				`row 3 line 4: youtube_search query=cats id=q2 {"hd":true}`,
				`row 4 line 5: walmart_product product_id=123 id=p1 {"delivery_zip":"10001"}`,
				"row 5 line 6: chatgpt prompt=Write a haiku,\nplease id=c1 {\"passthrough\":\"p-1\"}",
				"row 6 line 8: universal_ecommerce id=e1",
				"row 7 line 9: ERROR target google_shopping_search does not take google_tbm (did you mean google_tbs?)",
				"row 8 line 10: ERROR row has no url, query, prompt or product_id",
			},
		},
		{
			name:  "an allowed column: JSON when the cell parses as JSON, else a string; case-insensitive like the others",
			input: "URL,Render_Flag\nhttps://a.com,\"[1, 2]\"\nhttps://b.com,plain text\nhttps://c.com,\n",
			opt:   Options{AllowParams: []string{"render_flag"}},
			want: []string{
				`row 1 line 2: universal url=https://a.com {"render_flag":[1,2]}`,
				`row 2 line 3: universal url=https://b.com {"render_flag":"plain text"}`,
				`row 3 line 4: universal url=https://c.com`,
			},
		},
		{
			name:  "a header of only a target column serves universal_ecommerce",
			input: "target,callback_url\nuniversal_ecommerce,https://h.io/cb\nuniversal,\n",
			want: []string{
				`row 1 line 2: universal_ecommerce {"callback_url":"https://h.io/cb"}`,
				"row 2 line 3: ERROR row has no url, which target universal takes",
			},
		},
		{
			name:  "a header of no input field or target serves a default target taking none",
			input: "id\nx\n",
			opt:   Options{DefaultTarget: "universal_ecommerce"},
			want:  []string{"row 1 line 2: universal_ecommerce id=x"},
		},
	})
}

// TestUnknownColumnIsFatal proves that a CSV column no target takes stops
// the whole file before any row is returned, naming the nearest known
// name, unless it is allowed.
func TestUnknownColumnIsFatal(t *testing.T) {
	t.Parallel()
	input := "url,xhr,googel_tbs\nhttps://a.com,true,\n"
	r, err := NewReader(strings.NewReader(input), "in.csv", Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Next()
	want := `in.csv: line 1: unknown column "googel_tbs" in the header (did you mean google_tbs?): no target takes it`
	if !errors.Is(err, ErrUnknownColumn) || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	got, err := readAll(t, "csv", input, Options{AllowParams: []string{"googel_tbs"}})
	if err != nil || len(got) != 1 || got[0] != `row 1 line 2: universal url=https://a.com {"xhr":true}` {
		t.Fatalf("allowed: got %q, %v", got, err)
	}
}

// TestOptionsAgainstTheTable proves that options no row could use fail
// once, up front, saying why.
func TestOptionsAgainstTheTable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, format string
		opt          Options
		want         string // in the error; "" for none
	}{
		{"an unknown default target names the nearest", "csv", Options{DefaultTarget: "google_serch"}, `default unknown target "google_serch" (did you mean google_search?)`},
		{"a txt input needs a default target taking a url", "txt", Options{DefaultTarget: "chatgpt"}, "a txt input holds urls, but target chatgpt takes a prompt"},
		{"a txt input's target must take the default parameters", "txt", Options{Defaults: `{"parse":true}`}, "target universal, which does not take the default parameter parse"},
		{"a default parameter no target takes names the nearest", "jsonl", Options{Defaults: `{"google_tbz":"x"}`}, `param "google_tbz": unknown parameter (did you mean google_tbm?)`},
		{"a default parameter may be allowed", "jsonl", Options{Defaults: `{"google_tbz":"x"}`, AllowParams: []string{"google_tbz"}}, ""},
		{"a default passtrough is passthrough", "jsonl", Options{Defaults: `{"passtrough":"x"}`}, ""},
		{"an input field cannot be allowed", "csv", Options{AllowParams: []string{"prompt"}}, "allowed parameter prompt: an input field"},
		{"a default value is checked by its type", "csv", Options{Defaults: `{"hd":"yes"}`}, "hd: want true or false, got a string"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opt.Format = tt.format
			_, err := NewReader(strings.NewReader(""), "in", tt.opt)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.want != "" && (!errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want ErrOptions with %q", err, tt.want)
			}
		})
	}
}

// TestRecordInput proves that Input names the one field a record fills.
func TestRecordInput(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rec  Record
		in   decodo.Input
		want string
	}{
		{Record{URL: "https://a.com"}, decodo.InputURL, "https://a.com"},
		{Record{Query: "q"}, decodo.InputQuery, "q"},
		{Record{Prompt: "p"}, decodo.InputPrompt, "p"},
		{Record{ProductID: "1"}, decodo.InputProductID, "1"},
		{Record{}, decodo.InputNone, ""},
	} {
		if in, v := tt.rec.Input(); in != tt.in || v != tt.want {
			t.Errorf("%+v: Input() = %v, %q; want %v, %q", tt.rec, in, v, tt.in, tt.want)
		}
	}
}

// TestRowErrorCarriesID proves that a bad row carries its id, whatever
// its fault and wherever the id is in the row.
func TestRowErrorCarriesID(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ format, input string }{
		{"jsonl", `{"url":"ftp://x","id":"k1"}`},
		{"jsonl", `{"aaa":1,"id":"k1","url":"https://a.com"}`},
		{"jsonl", `{"url":"https://a.com","id":"k1","parse":true}`},
		{"csv", "geo,url,id\n\"a\tb\",https://a.com,k1\n"},
		{"csv", "target,id,url\nnope,k1,https://a.com\n"},
	} {
		r, err := NewReader(strings.NewReader(tt.input), "x", Options{Format: tt.format})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Next()
		var re *RowError
		if !errors.As(err, &re) || re.ID != "k1" {
			t.Errorf("%s %q: got %v, want a RowError with id k1", tt.format, tt.input, err)
		}
	}
}

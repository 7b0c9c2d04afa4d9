package decodo

import (
	"slices"
	"strings"
	"testing"
)

// sdkInputs is the official SDK's target table (Decodo/sdk-go targets.go and
// the input field of each schema in request_schemas.go), written out
// independently of the table under test.
var sdkInputs = map[Input][]string{
	InputURL: {"universal", "google", "bing", "amazon", "ecommerce", "walmart", "target", "bbb", "autotrader",
		"mobile", "airbnb", "apple_app_store", "tiktok", "tiktok_post", "reddit_post", "reddit_subreddit", "reddit_user"},
	InputQuery: {"google_search", "google_ai_mode", "google_ads", "google_lens", "google_maps", "google_suggest",
		"google_shopping_search", "google_shopping_product", "google_travel_hotels", "google_trends_explore",
		"bing_search", "amazon_product", "amazon_pricing", "amazon_search", "amazon_sellers", "amazon_bestsellers",
		"walmart_search", "target_search", "lowes_search", "instagram_graphql_profile", "tiktok_shop_search",
		"youtube_video", "youtube_metadata", "youtube_search", "youtube_search_max", "youtube_subtitles",
		"youtube_transcript", "youtube_channel"},
	InputPrompt:    {"chatgpt", "gemini", "perplexity"},
	InputProductID: {"target_product", "walmart_product", "tiktok_shop_product"},
	InputNone:      {"universal_ecommerce"},
}

func TestEveryTargetOfTheSDKWithItsInput(t *testing.T) {
	t.Parallel()
	n := 0
	for in, names := range sdkInputs {
		for _, name := range names {
			n++
			tg, ok := LookupTarget(name)
			if !ok {
				t.Errorf("target %s missing", name)
				continue
			}
			if tg.Name != name || tg.Input != in {
				t.Errorf("target %s = %s taking %v, want %v", name, tg.Name, tg.Input, in)
			}
		}
	}
	all := Targets()
	if n != 52 || len(all) != 52 {
		t.Fatalf("%d targets in the SDK list, %d in the table; want 52 and 52", n, len(all))
	}
	if !slices.IsSortedFunc(all, func(a, b *Target) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("Targets() is not sorted by name")
	}
	all[0] = nil // the slice is the caller's
	if Targets()[0] == nil {
		t.Error("Targets() hands out the table's own slice")
	}
	for _, name := range []string{"", "Universal", "google-search", "no_such_target"} {
		if _, ok := LookupTarget(name); ok {
			t.Errorf("LookupTarget(%q) found a target", name)
		}
	}
}

func TestEveryTargetsParamsAreSortedAndShared(t *testing.T) {
	t.Parallel()
	for _, tg := range Targets() {
		names := make([]string, len(tg.Params))
		for i, p := range tg.Params {
			names[i] = p.Name
		}
		if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Errorf("%s: params %v not sorted or repeated", tg.Name, names)
		}
		for _, must := range []string{"callback_url", "passthrough"} {
			if _, ok := tg.Param(must); !ok {
				t.Errorf("%s lacks %s", tg.Name, must)
			}
		}
		for _, never := range []string{"target", "url", "query", "prompt", "product_id", "passtrough"} {
			if _, ok := tg.Param(never); ok {
				t.Errorf("%s lists %s as a parameter", tg.Name, never)
			}
		}
	}
	if tg, _ := LookupTarget("universal_ecommerce"); len(tg.Params) != 2 {
		t.Errorf("universal_ecommerce params %v, want callback_url and passthrough only", tg.Params)
	}
}

func TestParamSpotChecks(t *testing.T) {
	t.Parallel()
	type want struct {
		typ      ParamType
		enum     []string
		min, max float64 // both 0: no range
		integer  bool
	}
	str, boolean := want{typ: ParamString}, want{typ: ParamBool}
	tests := []struct {
		target string
		params map[string]want
		absent []string
	}{
		{"google_search", map[string]want{
			"google_results_language": str, "google_nfpr": boolean, "google_safe_search": boolean,
			"google_tbm": str, "google_tbs": str, "geo": str, "parse": boolean,
			"headless":   {typ: ParamString, enum: []string{"html", "png"}},
			"page_count": {typ: ParamNumber, min: 1, max: 10, integer: true},
			"page_from":  {typ: ParamNumber, min: 0, max: 100, integer: true},
		}, []string{"limit", "xhr_", "headers"}},
		{"universal", map[string]want{
			"xhr": boolean, "headers": {typ: ParamObject}, "cookies": {typ: ParamObject}, "http_method": str,
			"payload": str, "proxy_pool": {typ: ParamString, enum: []string{"standard", "premium"}},
			"successful_status_codes": {typ: ParamArray}, "force_headers": boolean, "force_cookies": boolean,
		}, []string{"parse", "page_count", "page_from", "limit", "domain"}},
		{"youtube_search", map[string]want{
			"hd": boolean, "4k": boolean, "360": boolean, "3d": boolean, "upload_date": str, "video_sort_by": str, "type": str,
		}, []string{"markdown", "geo"}},
		{"walmart_product", map[string]want{"delivery_zip": str, "fulfillment_type": str, "walmart_store_id": str, "parse": boolean}, []string{"geo"}},
		{"youtube_channel", map[string]want{"limit": {typ: ParamNumber, min: 0, max: 100, integer: true}}, nil},
		{"google_travel_hotels", map[string]want{
			"adults":   {typ: ParamNumber, min: 1, max: 3, integer: true},
			"children": {typ: ParamNumber, min: 1, max: 3, integer: true},
			"stars":    {typ: ParamNumber},
		}, nil},
		{"chatgpt", map[string]want{"search": boolean, "parse": boolean}, []string{"headless"}},
		{"google", map[string]want{"page_count": {typ: ParamNumber, min: 1, max: 10, integer: true}}, []string{"geo", "page_from"}},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			t.Parallel()
			tg, ok := LookupTarget(tt.target)
			if !ok {
				t.Fatalf("no target %s", tt.target)
			}
			for name, w := range tt.params {
				p, ok := tg.Param(name)
				if !ok {
					t.Errorf("%s lacks %s", tt.target, name)
					continue
				}
				if p.Name != name || p.Type != w.typ || !slices.Equal(p.Enum, w.enum) || p.Integer != w.integer {
					t.Errorf("%s.%s = %+v, want %+v", tt.target, name, *p, w)
				}
				ranged := w.min != 0 || w.max != 0
				if ranged != (p.Min != nil && p.Max != nil) || ranged && (*p.Min != w.min || *p.Max != w.max) {
					t.Errorf("%s.%s range %v..%v, want %v..%v", tt.target, name, p.Min, p.Max, w.min, w.max)
				}
			}
			for _, name := range tt.absent {
				if _, ok := tg.Param(name); ok {
					t.Errorf("%s takes %s; the schema does not list it", tt.target, name)
				}
			}
		})
	}
}

func TestInputFacts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in        Input
		str       string
		batchable bool
		maxLen    int
	}{
		{InputNone, "none", false, 0},
		{InputURL, "url", true, MaxURLLen},
		{InputQuery, "query", true, MaxQueryLen},
		{InputPrompt, "prompt", false, MaxPromptLen},
		{InputProductID, "product_id", false, 0},
	}
	for _, tt := range tests {
		if tt.in.String() != tt.str || tt.in.Batchable() != tt.batchable || tt.in.MaxLen() != tt.maxLen {
			t.Errorf("%d: %q batchable %v max %d; want %q %v %d", tt.in, tt.in, tt.in.Batchable(), tt.in.MaxLen(), tt.str, tt.batchable, tt.maxLen)
		}
	}
	if MaxURLLen != 2056 || MaxQueryLen != 2048 || MaxPromptLen != 8192 || MaxBatchItems != 3000 {
		t.Error("API limits changed")
	}
}

func TestParamRule(t *testing.T) {
	t.Parallel()
	rule := func(target, name string) string {
		tg, _ := LookupTarget(target)
		p, ok := tg.Param(name)
		if !ok {
			t.Fatalf("%s has no %s", target, name)
		}
		return p.Rule()
	}
	tests := []struct{ target, name, want string }{
		{"google_search", "page_count", "a whole number from 1 to 10"},
		{"google_search", "headless", "one of html, png"},
		{"google_search", "parse", "true or false"},
		{"google_search", "geo", "a string"},
		{"google_travel_hotels", "stars", "a number"},
		{"universal", "headers", "a JSON object"},
		{"universal", "successful_status_codes", "an array of numbers"},
	}
	for _, tt := range tests {
		if got := rule(tt.target, tt.name); got != tt.want {
			t.Errorf("%s.%s rule %q, want %q", tt.target, tt.name, got, tt.want)
		}
	}
}

func TestNearest(t *testing.T) {
	t.Parallel()
	gs, _ := LookupTarget("google_search")
	var params []string
	for _, p := range gs.Params {
		params = append(params, p.Name)
	}
	var targets []string
	for _, tg := range Targets() {
		targets = append(targets, tg.Name)
	}
	tests := []struct {
		name  string
		known []string
		want  string
	}{
		{"google_result_language", params, "google_results_language"},
		{"page_cout", params, "page_count"},
		{"pagecount", params, "page_count"},
		{"page-from", params, "page_from"},
		{"Geo", params, "geo"},
		{"goe", params, "geo"},           // a swap is one edit
		{"markdwon", params, "markdown"}, // idem
		{"geo", params, "geo"},           // a known name is its own nearest
		{"colour", params, ""},           // nothing close
		{"page", params, ""},             // a prefix is not enough
		{"", params, ""},
		{"googel_search", targets, "google_search"},
		{"youtube_transcripts", targets, "youtube_transcript"},
		{"walmart_products", targets, "walmart_product"},
		{"chatgtp", targets, "chatgpt"},
		{"xx", []string{"ab", "xa"}, "xa"},
		{"ab", []string{"ac", "aa"}, "aa"}, // a tie goes to the name that sorts first
		{"ab", nil, ""},
	}
	for _, tt := range tests {
		if got := Nearest(tt.name, tt.known); got != tt.want {
			t.Errorf("Nearest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

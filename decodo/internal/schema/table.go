package schema

import (
	"fmt"
	"slices"
	"strings"
)

// The table below is the official Go SDK's: Decodo/sdk-go request_schemas.go
// (one JSON schema per target), commit 4466495543a6191a47768ad946a4515af3a41b17,
// read 2026-12-02; the target names are that SDK's targets.go. Every schema
// there says "required": ["target"] and "additionalProperties": false, and
// gives one of url (maxLength 2056), query (2048), prompt (8192) or
// product_id (no limit), or none, as the input.
//
// A parameter name means the same thing in every schema that lists it, so
// each is defined once in params and targets name theirs. Every schema
// lists callback_url; none lists passthrough, which the API's documentation
// of asynchronous requests gives for every task: both are added to every
// target below, not written in each row.

// params are the parameters of the schemas, sorted by name.
var params = []Param{
	{Name: "360", Type: ParamBool},
	{Name: "3d", Type: ParamBool},
	{Name: "4k", Type: ParamBool},
	{Name: "adults", Type: ParamNumber, Min: new(1.0), Max: new(3.0), Integer: true},
	{Name: "autoselect_variant", Type: ParamBool},
	{Name: "callback_url", Type: ParamString},
	{Name: "category", Type: ParamString},
	{Name: "children", Type: ParamNumber, Min: new(1.0), Max: new(3.0), Integer: true},
	{Name: "cookies", Type: ParamObject},
	{Name: "country", Type: ParamString},
	{Name: "creative_commons", Type: ParamBool},
	{Name: "currency", Type: ParamString},
	{Name: "date_end", Type: ParamString},
	{Name: "date_range", Type: ParamString},
	{Name: "date_start", Type: ParamString},
	{Name: "delivery_today_tomorrow", Type: ParamBool},
	{Name: "delivery_type", Type: ParamString},
	{Name: "delivery_zip", Type: ParamString},
	{Name: "device_type", Type: ParamString},
	{Name: "domain", Type: ParamString},
	{Name: "duration", Type: ParamString},
	{Name: "force_cookies", Type: ParamBool},
	{Name: "force_headers", Type: ParamBool},
	{Name: "free_delivery", Type: ParamBool},
	{Name: "fulfillment_type", Type: ParamString},
	{Name: "geo", Type: ParamString},
	{Name: "google_nfpr", Type: ParamBool},
	{Name: "google_results_language", Type: ParamString},
	{Name: "google_safe_search", Type: ParamBool},
	{Name: "google_tbm", Type: ParamString},
	{Name: "google_tbs", Type: ParamString},
	{Name: "hd", Type: ParamBool},
	{Name: "hdr", Type: ParamBool},
	{Name: "headers", Type: ParamObject},
	{Name: "headless", Type: ParamString, Enum: []string{"html", "png"}},
	{Name: "hotel_occupancy", Type: ParamString},
	{Name: "http_method", Type: ParamString},
	{Name: "language_code", Type: ParamString},
	{Name: "limit", Type: ParamNumber, Min: new(0.0), Max: new(100.0), Integer: true},
	{Name: "live", Type: ParamBool},
	{Name: "locale", Type: ParamString},
	{Name: "location", Type: ParamBool},
	{Name: "lowes_store_id", Type: ParamString},
	{Name: "markdown", Type: ParamBool},
	{Name: "merchant", Type: ParamString},
	{Name: "page_count", Type: ParamNumber, Min: new(1.0), Max: new(10.0), Integer: true},
	{Name: "page_from", Type: ParamNumber, Min: new(0.0), Max: new(100.0), Integer: true},
	{Name: "parse", Type: ParamBool},
	{Name: "parser_type", Type: ParamString},
	{Name: "passthrough", Type: ParamString}, // in no schema: see above
	{Name: "payload", Type: ParamString},
	{Name: "pickup_today", Type: ParamBool},
	{Name: "proxy_pool", Type: ParamString, Enum: []string{"standard", "premium"}},
	{Name: "purchased", Type: ParamBool},
	{Name: "search", Type: ParamBool},
	{Name: "search_type", Type: ParamString},
	{Name: "session_id", Type: ParamString},
	{Name: "sort", Type: ParamString},
	{Name: "sort_by", Type: ParamString},
	{Name: "stars", Type: ParamNumber},
	{Name: "store_id", Type: ParamString},
	{Name: "subtitle_origin", Type: ParamString},
	{Name: "subtitles", Type: ParamBool},
	{Name: "successful_status_codes", Type: ParamArray},
	{Name: "target_store_id", Type: ParamString},
	{Name: "transcript_origin", Type: ParamString},
	{Name: "type", Type: ParamString},
	{Name: "upload_date", Type: ParamString},
	{Name: "user_agent_type", Type: ParamString},
	{Name: "video_sort_by", Type: ParamString},
	{Name: "vr180", Type: ParamBool},
	{Name: "walmart_store_id", Type: ParamString},
	{Name: "xhr", Type: ParamBool},
}

// targetRows are the targets, sorted by name: the input field each takes and
// its parameters besides target, the input, callback_url and passthrough.
var targetRows = [...]struct {
	name   string
	input  Input
	params string // names in params, separated by spaces
}{
	{"airbnb", InputURL, "device_type geo headless markdown xhr"},
	{"amazon", InputURL, "device_type geo headless markdown parse session_id xhr"},
	{"amazon_bestsellers", InputQuery, "category currency device_type domain geo markdown page_from parse session_id xhr"},
	{"amazon_pricing", InputQuery, "currency device_type domain geo headless markdown page_from parse session_id xhr"},
	{"amazon_product", InputQuery, "autoselect_variant currency device_type domain geo headless markdown parse session_id xhr"},
	{"amazon_search", InputQuery, "category currency device_type domain geo headless markdown merchant page_from parse session_id sort_by xhr"},
	{"amazon_sellers", InputQuery, "device_type domain geo headless locale markdown parse xhr"},
	{"apple_app_store", InputURL, "device_type geo headless markdown xhr"},
	{"autotrader", InputURL, "device_type geo headless markdown xhr"},
	{"bbb", InputURL, "device_type geo headless markdown xhr"},
	{"bing", InputURL, "device_type geo headless locale markdown page_from parse session_id xhr"},
	{"bing_search", InputQuery, "device_type domain geo headless locale markdown page_count page_from parse session_id xhr"},
	{"chatgpt", InputPrompt, "device_type geo markdown parse search xhr"},
	{"ecommerce", InputURL, "device_type geo headless locale parse parser_type"},
	{"gemini", InputPrompt, "geo parse xhr"},
	{"google", InputURL, "device_type headless locale markdown page_count parse session_id xhr"},
	{"google_ads", InputQuery, "device_type geo google_nfpr google_results_language google_tbm google_tbs headless locale markdown page_count page_from parse session_id xhr"},
	{"google_ai_mode", InputQuery, "device_type geo markdown parse session_id xhr"},
	{"google_lens", InputQuery, "device_type headless markdown parse"},
	{"google_maps", InputQuery, "date_range device_type geo google_nfpr google_results_language headless hotel_occupancy locale markdown page_from session_id"},
	{"google_search", InputQuery, "device_type geo google_nfpr google_results_language google_safe_search google_tbm google_tbs headless locale markdown page_count page_from parse session_id xhr"},
	{"google_shopping_product", InputQuery, "device_type geo google_results_language headless locale markdown page_from parse session_id xhr"},
	{"google_shopping_search", InputQuery, "device_type geo google_results_language google_tbs headless locale markdown page_from parse session_id"},
	{"google_suggest", InputQuery, "device_type geo locale session_id"},
	{"google_travel_hotels", InputQuery, "adults children date_range device_type headless locale markdown page_from session_id stars"},
	{"google_trends_explore", InputQuery, "date_end date_start device_type geo search_type"},
	{"instagram_graphql_profile", InputQuery, ""},
	{"lowes_search", InputQuery, "delivery_today_tomorrow delivery_zip free_delivery headless lowes_store_id pickup_today user_agent_type"},
	{"mobile", InputURL, "device_type geo headless markdown xhr"},
	{"perplexity", InputPrompt, "device_type geo markdown parse xhr"},
	{"reddit_post", InputURL, "geo locale"},
	{"reddit_subreddit", InputURL, "geo locale"},
	{"reddit_user", InputURL, "geo locale sort"},
	{"target", InputURL, "delivery_zip device_type headless target_store_id xhr"},
	{"target_product", InputProductID, "delivery_type delivery_zip device_type headless markdown parse target_store_id xhr"},
	{"target_search", InputQuery, "delivery_type delivery_zip device_type headless markdown parse target_store_id xhr"},
	{"tiktok", InputURL, "headless user_agent_type"},
	{"tiktok_post", InputURL, "xhr"},
	{"tiktok_shop_product", InputProductID, "country device_type headless markdown xhr"},
	{"tiktok_shop_search", InputQuery, "country device_type headless markdown"},
	{"universal", InputURL, "cookies device_type force_cookies force_headers geo headers headless http_method locale markdown payload proxy_pool session_id successful_status_codes xhr"},
	{"universal_ecommerce", InputNone, ""},
	{"walmart", InputURL, "device_type geo headless locale markdown store_id xhr"},
	{"walmart_product", InputProductID, "delivery_zip fulfillment_type headless markdown parse walmart_store_id xhr"},
	{"walmart_search", InputQuery, "delivery_zip fulfillment_type headless markdown parse walmart_store_id"},
	{"youtube_channel", InputQuery, "limit markdown parse"},
	{"youtube_metadata", InputQuery, ""},
	{"youtube_search", InputQuery, "360 3d 4k creative_commons duration hd hdr live location purchased subtitles type upload_date video_sort_by vr180"},
	{"youtube_search_max", InputQuery, "360 3d 4k creative_commons duration hd hdr live location markdown purchased subtitles type upload_date video_sort_by vr180"},
	{"youtube_subtitles", InputQuery, "language_code subtitle_origin"},
	{"youtube_transcript", InputQuery, "language_code transcript_origin"},
	{"youtube_video", InputQuery, "geo"},
}

var (
	all    []*Target          // sorted by name
	byName map[string]*Target // all, by name
)

func init() {
	defs := make(map[string]Param, len(params))
	for _, p := range params {
		defs[p.Name] = p
	}
	byName = make(map[string]*Target, len(targetRows))
	for _, r := range targetRows {
		t := &Target{Name: r.name, Input: r.input}
		for _, name := range append(strings.Fields(r.params), "callback_url", "passthrough") {
			p, ok := defs[name]
			if !ok {
				panic(fmt.Sprintf("schema: target %s names parameter %q, which params does not define", r.name, name))
			}
			t.Params = append(t.Params, p)
		}
		slices.SortFunc(t.Params, func(a, b Param) int { return strings.Compare(a.Name, b.Name) })
		if _, dup := byName[r.name]; dup {
			panic("schema: target " + r.name + " listed twice")
		}
		byName[r.name] = t
		all = append(all, t)
	}
	slices.SortFunc(all, func(a, b *Target) int { return strings.Compare(a.Name, b.Name) })
}

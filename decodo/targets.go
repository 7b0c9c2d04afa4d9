package decodo

// Kind says which input field a target takes.
type Kind uint8

// The kinds of input a target takes.
const (
	KindUnknown Kind = iota // a target this client does not know; the API decides
	KindURL                 // the target takes "url"
	KindQuery               // the target takes "query"
)

// String returns "url", "query" or "unknown".
func (k Kind) String() string {
	switch k {
	case KindURL:
		return "url"
	case KindQuery:
		return "query"
	}
	return "unknown"
}

// targetKinds is the official SDK's table of targets.
var targetKinds = map[string]Kind{}

func init() {
	for _, t := range []string{"universal", "google", "bing", "amazon", "ecommerce", "walmart", "target", "bbb",
		"autotrader", "mobile", "airbnb", "apple_app_store", "tiktok", "tiktok_post", "reddit_post",
		"reddit_subreddit", "reddit_user"} {
		targetKinds[t] = KindURL
	}
	for _, t := range []string{"google_search", "google_ai_mode", "google_ads", "google_lens", "google_maps",
		"google_suggest", "google_shopping_search", "google_shopping_product", "google_travel_hotels",
		"google_trends_explore", "bing_search", "amazon_product", "amazon_pricing", "amazon_search",
		"amazon_sellers", "amazon_bestsellers", "walmart_search", "target_search", "lowes_search",
		"instagram_graphql_profile", "tiktok_shop_search", "youtube_video", "youtube_metadata",
		"youtube_search", "youtube_search_max", "youtube_subtitles", "youtube_transcript", "youtube_channel"} {
		targetKinds[t] = KindQuery
	}
}

// TargetKind reports whether target takes a url or a query. A target missing
// from the SDK's table is [KindUnknown]: it is passed to the API, which decides.
func TargetKind(target string) Kind { return targetKinds[target] }

// Limits of the API: items in one batch, and the length of a url or query.
const (
	MaxBatchItems = 3000
	MaxURLLen     = 2056
	MaxQueryLen   = 2048
)

package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/decodo-batch/decodo-batch/io/jsonstr"
)

// targetTakesQuery is the official SDK's target table (Decodo/sdk-go targets.go): true
// for the targets that take a query, false for those that take a url.
var targetTakesQuery = map[string]bool{}

func init() {
	for _, t := range []string{"universal", "google", "bing", "amazon", "ecommerce", "walmart", "target",
		"bbb", "autotrader", "mobile", "airbnb", "apple_app_store", "tiktok", "tiktok_post", "reddit_post",
		"reddit_subreddit", "reddit_user"} {
		targetTakesQuery[t] = false
	}
	for _, t := range []string{"google_search", "google_ai_mode", "google_ads", "google_lens", "google_maps",
		"google_suggest", "google_shopping_search", "google_shopping_product", "google_travel_hotels",
		"google_trends_explore", "bing_search", "amazon_product", "amazon_pricing", "amazon_search",
		"amazon_sellers", "amazon_bestsellers", "walmart_search", "target_search", "lowes_search",
		"instagram_graphql_profile", "tiktok_shop_search", "youtube_video", "youtube_metadata",
		"youtube_search", "youtube_search_max", "youtube_subtitles", "youtube_transcript",
		"youtube_channel"} {
		targetTakesQuery[t] = true
	}
}

// taskDefaults are the parameters of the example task object, in its order,
// with their values when the request does not set them.
var taskDefaults = [...]struct{ key, value string }{
	{"page_from", "1"}, {"limit", "10"}, {"geo", "null"}, {"device_type", `"desktop"`},
	{"headless", "null"}, {"parse", "false"}, {"locale", "null"}, {"domain", `"com"`},
	{"output_schema", "null"}, {"page_count", "1"}, {"content_encoding", `"utf-8"`},
	{"http_method", `"get"`}, {"cookies", "[]"}, {"headers", "[]"}, {"session_id", "null"},
	{"successful_status_codes", "[]"}, {"force_headers", "false"}, {"force_cookies", "false"},
	{"follow_redirect", "null"}, {"payload", "null"}, {"store_id", "null"},
	{"headers_cookies_policy", "false"},
}

// notEchoed are request keys the task object spells out itself, or that are
// the server's to set.
var notEchoed = map[string]bool{
	"target": true, "url": true, "query": true, "id": true, "status": true,
	"created_at": true, "updated_at": true,
}

// submission is a validated request: the group its tasks share (without
// its creation time) and one input per task.
type submission struct {
	group  *group
	inputs []string
}

// serveSubmit handles POST /v3/task (batch false) and POST /v3/task/batch.
func (s *Server) serveSubmit(w http.ResponseWriter, r *http.Request, token string, batch bool) {
	rt := routeTask
	if batch {
		rt = routeBatch
	}
	// A batch arrives when its headers do (the handler runs then), and the
	// rate limit is decided then, in the order of arrival, as a gateway in
	// front of the API would: how long the body takes to upload or to be
	// read must not reorder two batches. A batch let through takes its slot
	// even if it is then refused (400). The body is read even when the
	// answer is 429, so that the connection stays reusable.
	arrived := s.now()
	var paced *apiError
	if batch {
		paced = s.pace(token, arrived)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.fail(w, r, rt, &apiError{status: http.StatusRequestEntityTooLarge, message: "request body too large"})
			return
		}
		s.count(r.Method, rt, statusCanceled)
		return
	}
	if batch {
		if paced != nil {
			s.fail(w, r, rt, paced)
			return
		}
		if s.cfg.BatchLatency > 0 {
			t := time.NewTimer(s.cfg.BatchLatency)
			select {
			case <-r.Context().Done():
				t.Stop()
				s.count(r.Method, rt, statusCanceled)
				return
			case <-t.C:
			}
		}
	}
	sub, e := s.parse(body, batch)
	if e != nil {
		s.fail(w, r, rt, e)
		return
	}
	first := s.create(arrived, sub, batch)
	n := len(sub.inputs)
	out := make([]byte, 0, 256+n*(900+len(sub.group.params)))
	created := sub.group.created
	switch {
	case !batch:
		out = appendTask(out, first, sub.group, sub.inputs[0], "pending", created)
	case s.cfg.ArrayResponse:
		out = append(out, '[')
		for i, in := range sub.inputs {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendTask(out, first+1+uint64(i), sub.group, in, "pending", created)
		}
		out = append(out, ']')
	default:
		// The batch id is a bare number above 2^53, as the API sends it.
		out = append(out, `{"id":`...)
		out = strconv.AppendUint(out, first, 10)
		out = append(out, `,"queries":[`...)
		for i, in := range sub.inputs {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendTask(out, first+1+uint64(i), sub.group, in, "pending", created)
		}
		out = append(out, `],"errors":[]}`...)
	}
	s.count(r.Method, rt, http.StatusOK)
	writeBody(w, http.StatusOK, out)
}

// pace answers 429 when a batch of token arriving at t comes too soon after
// the last one let through; else t becomes the last one let through.
func (s *Server) pace(token string, t time.Time) *apiError {
	if s.interval <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.lastBatch[token]
	// t.Sub(last) is negative for a batch whose handler started before the
	// last one's but took the lock after it: inside the interval too.
	wait := s.interval - t.Sub(last)
	if !ok || wait <= 0 {
		s.lastBatch[token] = t
		return nil
	}
	secs := int((wait + time.Second - 1) / time.Second)
	return &apiError{
		status:     http.StatusTooManyRequests,
		message:    fmt.Sprintf("Too many requests: at most 1 batch per %v; retry in %v", s.interval, wait.Round(time.Millisecond)),
		retryAfter: max(secs, 1),
	}
}

// parse validates a request body. Any bad item refuses the whole request,
// with every bad item named in the errors.
func (s *Server) parse(body []byte, batch bool) (*submission, *apiError) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, invalid("request body must be a JSON object", itemError{Field: "body", Message: "not a JSON object"})
	}
	target := "universal"
	if raw, ok := present(fields, "target"); ok {
		if err := json.Unmarshal(raw, &target); err != nil {
			return nil, invalid("target must be a string", itemError{Field: "target", Value: clip(string(raw)), Message: "not a string"})
		}
	}
	takesQuery, known := targetTakesQuery[target]
	if !known {
		return nil, invalid(fmt.Sprintf("unknown target %q", target), itemError{Field: "target", Value: clip(target), Message: "unknown target"})
	}
	urlRaw, hasURL := present(fields, "url")
	queryRaw, hasQuery := present(fields, "query")
	switch {
	case hasURL && hasQuery:
		return nil, invalid("url and query are mutually exclusive", itemError{Field: "query", Message: "set only one of url and query"})
	case !hasURL && !hasQuery:
		return nil, invalid("url or query is required", itemError{Field: "url", Message: "set one of url and query"})
	case hasURL && takesQuery:
		return nil, invalid(fmt.Sprintf("target %q takes a query, not a url", target), itemError{Field: "url", Message: "target " + target + " takes a query"})
	case hasQuery && !takesQuery:
		return nil, invalid(fmt.Sprintf("target %q takes a url, not a query", target), itemError{Field: "query", Message: "target " + target + " takes a url"})
	}
	field, raw := "url", urlRaw
	if hasQuery {
		field, raw = "query", queryRaw
	}

	var inputs []string
	if batch {
		if err := json.Unmarshal(raw, &inputs); err != nil {
			return nil, invalid(field+" must be an array of strings in a batch", itemError{Field: field, Message: "not an array of strings"})
		}
		if len(inputs) == 0 {
			return nil, invalid(field+" must not be empty", itemError{Field: field, Message: "empty"})
		}
		if len(inputs) > s.cfg.MaxItems {
			return nil, invalid(fmt.Sprintf("too many items: %d (at most %d)", len(inputs), s.cfg.MaxItems),
				itemError{Field: field, Value: strconv.Itoa(len(inputs)), Message: fmt.Sprintf("at most %d items", s.cfg.MaxItems)})
		}
	} else {
		var one string
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, invalid(field+" must be a string", itemError{Field: field, Value: clip(string(raw)), Message: "not a string"})
		}
		inputs = []string{one}
	}

	var errs []itemError
	for i, in := range inputs {
		msg := checkInput(hasQuery, in)
		if msg == "" {
			continue
		}
		name := field
		if batch {
			name = field + "[" + strconv.Itoa(i) + "]"
		}
		errs = append(errs, itemError{Field: name, Value: clip(in), Message: msg})
	}
	g, perrs := buildGroup(fields, target, hasQuery)
	errs = append(errs, perrs...)
	if len(errs) > 0 {
		return nil, &apiError{status: http.StatusBadRequest, message: summarize(errs), errors: errs}
	}
	return &submission{group: g, inputs: inputs}, nil
}

// present returns a field's raw value unless it is missing or null.
func present(fields map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	raw, ok := fields[key]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

func invalid(msg string, e itemError) *apiError {
	return &apiError{status: http.StatusBadRequest, message: msg, errors: []itemError{e}}
}

// summarize names the first few bad items in one message.
func summarize(errs []itemError) string {
	var b strings.Builder
	if len(errs) == 1 {
		b.WriteString("1 invalid field: ")
	} else {
		fmt.Fprintf(&b, "%d invalid fields: ", len(errs))
	}
	for i, e := range errs {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(errs)-3)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Field)
		if e.Value != "" {
			fmt.Fprintf(&b, " %q", e.Value)
		}
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// clip shortens a value quoted back in an error.
func clip(s string) string {
	const n = 200
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// checkInput returns why a url or query is refused, or "".
func checkInput(query bool, in string) string {
	if strings.Contains(in, invalidHook) {
		return "refused by the sandbox (the item contains " + invalidHook + ")"
	}
	n := utf8.RuneCountInString(in)
	if query {
		if strings.TrimSpace(in) == "" {
			return "query is empty"
		}
		if n > maxQueryLen {
			return fmt.Sprintf("query is %d characters long (at most %d)", n, maxQueryLen)
		}
		return ""
	}
	if n > maxURLLen {
		return fmt.Sprintf("url is %d characters long (at most %d)", n, maxURLLen)
	}
	return checkURL(in)
}

// checkURL returns why s is not an absolute http(s) URL with a host, or "".
func checkURL(s string) string {
	if s == "" {
		return "url is empty"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "not a valid url"
	}
	if sc := strings.ToLower(u.Scheme); sc != "http" && sc != "https" {
		return "url must start with http:// or https://"
	}
	if u.Hostname() == "" {
		return "url has no host"
	}
	return ""
}

// buildGroup validates the parameters shared by the tasks of a submission
// and renders them as the task object echoes them.
func buildGroup(fields map[string]json.RawMessage, target string, query bool) (*group, []itemError) {
	g := &group{target: target, query: query, pageCount: 1}
	var errs []itemError
	bad := func(key string, raw json.RawMessage, msg string) {
		errs = append(errs, itemError{Field: key, Value: clip(string(raw)), Message: msg})
	}
	for key, raw := range fields {
		if notEchoed[key] || string(raw) == "null" {
			continue
		}
		if msg := checkParam(key, raw); msg != "" {
			bad(key, raw, msg)
			continue
		}
		switch key {
		case "page_count":
			json.Unmarshal(raw, &g.pageCount) //nolint:errcheck // checked by checkParam
		case "parse":
			json.Unmarshal(raw, &g.parse) //nolint:errcheck
		case "markdown":
			json.Unmarshal(raw, &g.markdown) //nolint:errcheck
		case "callback_url":
			var cb string
			json.Unmarshal(raw, &cb) //nolint:errcheck
			g.callback = cb
		}
	}
	slices.SortFunc(errs, func(a, b itemError) int { return strings.Compare(a.Field, b.Field) })

	var p bytes.Buffer
	for _, d := range taskDefaults {
		p.WriteByte(',')
		p.Write(jsonstr.Append(nil, d.key))
		p.WriteByte(':')
		if raw, ok := present(fields, d.key); ok {
			json.Compact(&p, raw) //nolint:errcheck // raw came from the decoder
		} else {
			p.WriteString(d.value)
		}
	}
	// Keys outside the example object (markdown, callback_url, passthrough,
	// proxy_pool, or ones this sandbox does not know) are echoed as sent.
	var extra []string
	for key := range fields {
		if !notEchoed[key] && !isDefault(key) {
			extra = append(extra, key)
		}
	}
	slices.Sort(extra)
	for _, key := range extra {
		p.WriteByte(',')
		p.Write(jsonstr.Append(nil, key))
		p.WriteByte(':')
		json.Compact(&p, fields[key]) //nolint:errcheck
	}
	g.params = p.Bytes()
	return g, errs
}

func isDefault(key string) bool {
	for _, d := range taskDefaults {
		if d.key == key {
			return true
		}
	}
	return false
}

// checkParam returns why a documented parameter's value is refused, or "".
// Undocumented parameters pass: the real API's list is longer than ours.
func checkParam(key string, raw json.RawMessage) string {
	switch key {
	case "geo", "locale", "domain", "session_id", "device_type", "http_method":
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return "must be a string"
		}
	case "headless":
		return checkEnum(raw, "html", "png")
	case "proxy_pool":
		return checkEnum(raw, "standard", "premium")
	case "parse", "markdown", "force_headers", "force_cookies":
		var v bool
		if json.Unmarshal(raw, &v) != nil {
			return "must be true or false"
		}
	case "page_from":
		return checkInt(raw, 0, 100)
	case "limit":
		return checkInt(raw, 0, 100)
	case "page_count":
		return checkInt(raw, 1, 10)
	case "headers", "cookies":
		if c := firstByte(raw); c != '{' && c != '[' {
			return "must be an object or an array"
		}
	case "successful_status_codes":
		var v []int
		if json.Unmarshal(raw, &v) != nil {
			return "must be an array of numbers"
		}
	case "payload":
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return "must be a base64 string"
		}
		if _, err := base64.StdEncoding.DecodeString(v); err != nil {
			return "must be a base64 string"
		}
	case "callback_url":
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return "must be a string"
		}
		if msg := checkURL(v); msg != "" {
			return msg
		}
	}
	return ""
}

func checkEnum(raw json.RawMessage, allowed ...string) string {
	var v string
	if json.Unmarshal(raw, &v) != nil || !slices.Contains(allowed, v) {
		return "must be one of " + strings.Join(allowed, ", ")
	}
	return ""
}

func checkInt(raw json.RawMessage, lo, hi int) string {
	var v int
	if json.Unmarshal(raw, &v) != nil || v < lo || v > hi {
		return fmt.Sprintf("must be a whole number from %d to %d", lo, hi)
	}
	return ""
}

func firstByte(raw json.RawMessage) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// isLoopback reports whether a URL names this machine, the only place the
// sandbox sends callbacks to.
func isLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// create makes the tasks of a valid submission and returns the first id:
// the batch id for a batch (its tasks follow it), the task id for a single
// task.
func (s *Server) create(arrived time.Time, sub *submission, batch bool) uint64 {
	g := sub.group
	n := len(sub.inputs)
	skipCallback := g.callback != "" && !isLoopback(g.callback)
	if skipCallback {
		g.callback = ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if batch {
		s.st.batches++
		s.st.batchTimes = append(s.st.batchTimes, arrived)
	}
	if skipCallback {
		s.st.callbacksSkipped += n
	}
	now := s.now()
	g.created = now.UnixNano()
	g.createdAt = string(appendTime(nil, g.created))
	s.sweepLocked(g.created)
	s.st.advance(g.created) // keeps the heap to the pending tasks even if Stats is never called

	ids := n
	if batch {
		ids++ // the batch id comes first
	}
	first := s.nextIDs(now, ids)
	id := first
	if batch {
		id++
	}
	s.expiry = append(s.expiry, span{first: id, n: n, created: g.created})
	if s.st.firstCreated.IsZero() {
		s.st.firstCreated = now
	}
	for _, in := range sub.inputs {
		// Every task draws the same four numbers, whatever the rates, so
		// that a seed gives the same delays under any fault settings.
		d := s.cfg.Delay.sample(s.rand)
		faulted := s.rand.Float64() < s.cfg.FaultRate
		targetErr := s.rand.Float64() < s.cfg.TargetErrorRate
		alt := s.rand.IntN(2)
		t := task{group: g, input: in, due: g.created + int64(d), code: http.StatusOK, faulted: faulted}
		switch {
		case faulted:
			t.code = [2]int16{http.StatusBadRequest, http.StatusInternalServerError}[alt]
		case targetErr:
			t.code = [2]int16{http.StatusNotFound, http.StatusInternalServerError}[alt]
		}
		s.tasks[id] = t
		s.st.pushDue(t.due, faulted)
		if g.callback != "" && !s.closed {
			s.scheduleCallbackLocked(id, d)
		}
		id++
	}
	s.st.created += n
	return first
}

// nextIDs reserves n consecutive ids. Like the API's (the example id
// 7434928397127555073 is 2026-03-04 11:51:04 UTC in Unix milliseconds
// shifted left by 22 bits), they grow with the clock, so a sandbox started
// again does not hand out the ids of a previous run's tasks to new ones, and
// they have 19 digits until 2045.
func (s *Server) nextIDs(now time.Time, n int) uint64 {
	const least = 1_000_000_000_000_000_000 // 19 digits, far above 2^53
	id := max(uint64(now.UnixMilli())<<22, least)
	if id <= s.lastID {
		id = s.lastID + 1
	}
	s.lastID = id + uint64(n) - 1
	return id
}

// sweepLocked frees the tasks whose time to live is over. Submissions expire
// in the order they were created, so this costs only what it frees.
func (s *Server) sweepLocked(now int64) {
	if s.ttl <= 0 {
		return
	}
	i := 0
	for ; i < len(s.expiry) && now >= s.expiry[i].created+s.ttl; i++ {
		sp := s.expiry[i]
		for id := sp.first; id < sp.first+uint64(sp.n); id++ {
			delete(s.tasks, id)
		}
	}
	// Reslice rather than shift: the freed front goes when append next
	// reallocates.
	s.expiry = s.expiry[i:]
}

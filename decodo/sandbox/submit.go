package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/decodo-batch/decodo-batch/decodo/internal/schema"
	"github.com/decodo-batch/decodo-batch/io/jsonstr"
)

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

// inputKeys are the input fields of the targets, in the order errors name
// them.
var inputKeys = [...]string{"url", "query", "prompt", "product_id"}

// notEchoed are request keys the task object spells out itself.
var notEchoed = map[string]bool{"target": true, "url": true, "query": true, "prompt": true, "product_id": true}

// notItem are the parameters that say where and how a task's outcome is
// delivered, not what is scraped: two submissions differing only in them
// ask for the same item (see [Stats.DuplicateSubmissions]).
var notItem = map[string]bool{"callback_url": true, "passthrough": true, "passtrough": true}

// passtrough is the spelling of passthrough in Decodo's published callback
// example; the sandbox takes it for every target, like passthrough.
var passtrough = schema.Param{Name: "passtrough", Type: schema.ParamString}

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
	if batch && s.chance(s.cfg.Batch500AfterCreateRate) {
		s.mu.Lock()
		s.st.batch500s++
		s.mu.Unlock()
		s.fail(w, r, rt, &apiError{status: http.StatusInternalServerError, message: "sandbox: injected Internal Server Error after the tasks were created"})
		return
	}
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
	if batch && s.chance(s.cfg.TruncateBatchRate) {
		s.mu.Lock()
		s.st.truncated++
		s.countLocked(r.Method, rt, http.StatusOK)
		s.mu.Unlock()
		s.writeTruncated(w, s.indent(out), s.pick(2) == 0)
		return
	}
	s.count(r.Method, rt, http.StatusOK)
	s.answer(w, http.StatusOK, out)
}

// writeTruncated answers 200 with the first half of body: as a complete
// HTTP answer whose JSON stops short, or, when cut, announcing the whole
// length and closing the connection after the half.
func (s *Server) writeTruncated(w http.ResponseWriter, body []byte, cut bool) {
	half := body[:len(body)/2]
	if !cut {
		writeBody(w, http.StatusOK, half)
		return
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	// A handler that wrote less than the length it announced makes
	// net/http send what was written and close the connection: the client
	// reads half a body, then an unexpected EOF. Whatever wraps w.
	w.Write(half) //nolint:errcheck // the client is gone; nothing to do
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

// parse validates a request body against the target's entry in the table
// of targets. Any bad item or parameter refuses the whole request, with
// every bad item named in the errors.
func (s *Server) parse(body []byte, batch bool) (*submission, *apiError) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, invalid("request body must be a JSON object", itemError{Field: "body", Message: "not a JSON object"})
	}
	name := "universal"
	if raw, ok := present(fields, "target"); ok {
		if err := json.Unmarshal(raw, &name); err != nil {
			return nil, invalid("target must be a string", itemError{Field: "target", Value: clip(string(raw)), Message: "not a string"})
		}
	}
	tg, known := schema.Lookup(name)
	if !known {
		msg := "unknown target"
		if near := schema.Nearest(name, targetNames); near != "" {
			msg += "; did you mean " + near + "?"
		}
		return nil, invalid(fmt.Sprintf("unknown target %q", name), itemError{Field: "target", Value: clip(name), Message: msg})
	}
	field, raw, e := inputOf(fields, tg, batch)
	if e != nil {
		return nil, e
	}

	var inputs []string
	switch {
	case tg.Input == schema.InputNone:
		inputs = []string{""}
	case batch:
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
	default:
		var one string
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, invalid(field+" must be a string", itemError{Field: field, Value: clip(string(raw)), Message: "not a string"})
		}
		inputs = []string{one}
	}

	var errs []itemError
	if tg.Input != schema.InputNone {
		for i, in := range inputs {
			msg := checkInput(tg.Input, in)
			if msg == "" {
				continue
			}
			name := field
			if batch {
				name = field + "[" + strconv.Itoa(i) + "]"
			}
			errs = append(errs, itemError{Field: name, Value: clip(in), Message: msg})
		}
	}
	g, perrs := buildGroup(fields, tg, s.cfg.AllowUnknownParams)
	errs = append(errs, perrs...)
	if len(errs) > 0 {
		return nil, &apiError{status: http.StatusBadRequest, message: summarize(errs), errors: errs}
	}
	return &submission{group: g, inputs: inputs}, nil
}

// targetNames are the names of all targets, for "did you mean".
var targetNames = func() []string {
	var names []string
	for _, t := range schema.Targets() {
		names = append(names, t.Name)
	}
	return names
}()

// inputOf finds the input field of a request for target tg: exactly the one
// field tg takes (none for a target that takes none), and in a batch only a
// url or a query. It returns the field's name and raw value.
func inputOf(fields map[string]json.RawMessage, tg *schema.Target, batch bool) (string, json.RawMessage, *apiError) {
	var set []string
	for _, k := range inputKeys {
		if _, ok := present(fields, k); ok {
			set = append(set, k)
		}
	}
	want := tg.Input.String()
	switch {
	case len(set) > 1:
		return "", nil, invalid(set[0]+" and "+set[1]+" are mutually exclusive",
			itemError{Field: set[1], Message: "set only one of " + strings.Join(set, ", ")})
	case tg.Input == schema.InputNone && len(set) == 1:
		return "", nil, invalid(fmt.Sprintf("target %q takes no url, query, prompt or product_id", tg.Name),
			itemError{Field: set[0], Message: "target " + tg.Name + " takes no " + set[0]})
	case tg.Input != schema.InputNone && len(set) == 0:
		return "", nil, invalid(fmt.Sprintf("%s is required: target %q takes a %s", want, tg.Name, want),
			itemError{Field: want, Message: "target " + tg.Name + " takes a " + want})
	case len(set) == 1 && set[0] != want:
		return "", nil, invalid(fmt.Sprintf("target %q takes a %s, not a %s", tg.Name, want, set[0]),
			itemError{Field: set[0], Message: "target " + tg.Name + " takes a " + want})
	}
	if batch && !tg.Input.Batchable() {
		what := "a " + want
		if tg.Input == schema.InputNone {
			what = "no url or query"
		}
		msg := fmt.Sprintf("target %q takes %s: a batch takes only url or query arrays; submit each task with POST /v3/task", tg.Name, what)
		return "", nil, invalid(msg, itemError{Field: "target", Value: tg.Name, Message: "not batchable: the target takes " + what})
	}
	if tg.Input == schema.InputNone {
		return "", nil, nil
	}
	return want, fields[want], nil
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

// checkInput returns why the input of a task is refused, or "".
func checkInput(in schema.Input, s string) string {
	if strings.Contains(s, invalidHook) {
		return "refused by the sandbox (the item contains " + invalidHook + ")"
	}
	if in == schema.InputURL {
		if n := utf8.RuneCountInString(s); n > schema.MaxURLLen {
			return fmt.Sprintf("url is %d characters long (at most %d)", n, schema.MaxURLLen)
		}
		return checkURL(s)
	}
	if strings.TrimSpace(s) == "" {
		return in.String() + " is empty"
	}
	if limit := in.MaxLen(); limit > 0 {
		if n := utf8.RuneCountInString(s); n > limit {
			return fmt.Sprintf("%s is %d characters long (at most %d)", in, n, limit)
		}
	}
	return ""
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
// against tg's table and renders them as the task object echoes them.
// A parameter tg does not take is refused unless allowUnknown, and then
// echoed without a check or any effect.
func buildGroup(fields map[string]json.RawMessage, tg *schema.Target, allowUnknown bool) (*group, []itemError) {
	g := &group{target: tg.Name, input: tg.Input, pageCount: 1}
	var errs []itemError
	for key, raw := range fields {
		if notEchoed[key] || string(raw) == "null" {
			continue
		}
		p, known := tg.Param(key)
		if !known && key == passtrough.Name {
			p, known = &passtrough, true
		}
		if !known {
			if allowUnknown {
				continue
			}
			msg := "unknown parameter for target " + tg.Name
			if near := schema.Nearest(key, tg.ParamNames()); near != "" {
				msg += "; did you mean " + near + "?"
			}
			errs = append(errs, itemError{Field: key, Value: clip(string(raw)), Message: msg})
			continue
		}
		if msg := checkParam(p, raw); msg != "" {
			errs = append(errs, itemError{Field: key, Value: clip(string(raw)), Message: msg})
			continue
		}
		switch key {
		case "page_count":
			var f float64
			json.Unmarshal(raw, &f) //nolint:errcheck // checked by checkParam
			g.pageCount = int(f)
		case "parse":
			json.Unmarshal(raw, &g.parse) //nolint:errcheck
		case "markdown":
			json.Unmarshal(raw, &g.markdown) //nolint:errcheck
		case "headless":
			json.Unmarshal(raw, &g.headless) //nolint:errcheck
		case "callback_url":
			json.Unmarshal(raw, &g.callback) //nolint:errcheck
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
	// proxy_pool, a target's own, or unknown ones let through) are echoed
	// as sent, sorted.
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
	g.item, g.itemHash = itemOf(fields, tg)
	return g, errs
}

// itemOf returns what identifies the item of a submission besides its
// input: the target, the input field and the parameters that were set,
// other than those of delivery (notItem), as a JSON object with sorted
// keys; and a hash of it.
func itemOf(fields map[string]json.RawMessage, tg *schema.Target) (string, uint64) {
	keys := make([]string, 0, len(fields))
	for key, raw := range fields {
		if !notEchoed[key] && !notItem[key] && string(raw) != "null" {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	var b bytes.Buffer
	b.WriteString(tg.Name)
	b.WriteByte(' ')
	b.WriteString(tg.Input.String())
	b.WriteString(" {")
	for i, key := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(jsonstr.Append(nil, key))
		b.WriteByte(':')
		json.Compact(&b, fields[key]) //nolint:errcheck // raw came from the decoder
	}
	b.WriteByte('}')
	return b.String(), maphash.Bytes(itemSeed, b.Bytes())
}

// itemSeed seeds the hashes of items; they live only in this process.
var itemSeed = maphash.MakeSeed()

func isDefault(key string) bool {
	for _, d := range taskDefaults {
		if d.key == key {
			return true
		}
	}
	return false
}

// checkParam returns why a parameter's value breaks p's rule in the table,
// or "". Beyond the schemas' types the sandbox checks what the API would
// have to: a callback_url is an http(s) URL, a payload is base64.
func checkParam(p *schema.Param, raw json.RawMessage) string {
	bad := "must be " + p.Rule()
	switch p.Type {
	case schema.ParamString:
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return bad
		}
		if len(p.Enum) > 0 && !slices.Contains(p.Enum, v) {
			return bad
		}
		switch p.Name {
		case "callback_url":
			return checkURL(v)
		case "payload":
			if _, err := base64.StdEncoding.DecodeString(v); err != nil {
				return "must be a base64 string"
			}
		}
	case schema.ParamBool:
		var v bool
		if json.Unmarshal(raw, &v) != nil {
			return bad
		}
	case schema.ParamNumber:
		var v float64
		if json.Unmarshal(raw, &v) != nil || math.IsInf(v, 0) ||
			(p.Integer && v != math.Trunc(v)) ||
			(p.Min != nil && v < *p.Min) || (p.Max != nil && v > *p.Max) {
			return bad
		}
	case schema.ParamObject:
		// The API's own task object writes an empty one as [].
		if c := firstByte(raw); c != '{' && string(bytes.TrimSpace(raw)) != "[]" {
			return bad
		}
	case schema.ParamArray:
		var v []float64
		if firstByte(raw) != '[' || json.Unmarshal(raw, &v) != nil {
			return bad
		}
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
	} else {
		s.st.singles += n
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
		// Every task draws the same four numbers, and a task of several
		// pages one more, whatever the rates, so that a seed gives the same
		// delays under any fault settings.
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
		if g.pageCount > 1 {
			t.pages = pageFaults(s.rand.Uint64(), g.pageCount, s.cfg.PageErrorRate)
		}
		s.st.countItem(g, in)
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

// pageFaults draws, from one random number, which of n pages fail at rate:
// 2 bits a page, from the first, as [task.pages] keeps them.
func pageFaults(r uint64, n int, rate float64) uint32 {
	var pages uint32
	for i := range n {
		x := splitmix(r + uint64(i)*0x9e3779b97f4a7c15)
		if float64(x>>11)/(1<<53) < rate {
			pages |= uint32(1+x&1) << (2 * i) // 1: 404, 2: 500
		}
	}
	return pages
}

// splitmix is the finalizer of SplitMix64: a well-mixed function of x.
func splitmix(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
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

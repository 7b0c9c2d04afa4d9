package sandbox

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo/internal/schema"
	"github.com/decodo-batch/decodo-batch/io/jsonstr"
)

// serveTask handles GET /v3/task/{id} and GET /v3/task/{id}/results: the hot
// paths. The lock covers only the lookup and the counters; the answer is
// rendered into a pooled buffer without reflection.
func (s *Server) serveTask(w http.ResponseWriter, r *http.Request, rt route, idStr string) {
	id, err := strconv.ParseUint(idStr, 10, 64)
	now := s.now().UnixNano()

	s.mu.Lock()
	t, ok := s.tasks[id]
	if err != nil || !ok || (s.ttl > 0 && now >= t.group.created+s.ttl) {
		s.countLocked(r.Method, rt, http.StatusNotFound)
		s.mu.Unlock()
		s.writeNotFound(w, idStr)
		return
	}
	done := now >= t.due
	status := http.StatusOK
	switch {
	case rt == routeStatus:
	case !done:
		status = http.StatusNoContent
	case t.faulted && s.cfg.FaultMode == FaultNoContent:
		status = http.StatusNoContent
	case t.faulted:
		status = int(t.code)
	case !t.served:
		t.served = true
		s.tasks[id] = t
		s.st.waits = append(s.st.waits, now-t.due)
	}
	s.countLocked(r.Method, rt, status)
	s.mu.Unlock()

	switch {
	case status == http.StatusNoContent:
		w.WriteHeader(http.StatusNoContent)
		return
	case status != http.StatusOK:
		msg := "task " + idStr + " faulted"
		s.writeErrorBody(w, status, msg)
		return
	}

	bp := getBuf()
	b := *bp
	if rt == routeStatus {
		st, updated := "pending", t.group.created
		if done {
			st, updated = "done", t.due
			if t.faulted {
				st = "faulted"
			}
		}
		b = appendTask(b, id, t.group, t.input, st, updated)
	} else {
		b = s.appendResults(b, id, &t)
	}
	s.answer(w, http.StatusOK, b)
	*bp = b
	putBuf(bp)
}

func (s *Server) writeNotFound(w http.ResponseWriter, id string) {
	s.writeErrorBody(w, http.StatusNotFound, "task "+clip(id)+" not found")
}

// writeErrorBody writes an error answer without reflection; msg is plain
// ASCII text or is escaped here.
func (s *Server) writeErrorBody(w http.ResponseWriter, status int, msg string) {
	b := make([]byte, 0, 64+len(msg))
	b = append(b, `{"status":"error","message":`...)
	b = jsonstr.Append(b, msg)
	b = append(b, `,"errors":[]}`...)
	s.answer(w, status, b)
}

const timeLayout = "2006-01-02 15:04:05"

func appendTime(b []byte, ns int64) []byte {
	return time.Unix(0, ns).UTC().AppendFormat(b, timeLayout)
}

// appendTask renders a task object: the fields of the example object, the
// echoed parameters, and the given status and updated_at.
func appendTask(b []byte, id uint64, g *group, input, status string, updated int64) []byte {
	b = append(b, `{"id":"`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `","status":"`...)
	b = append(b, status...)
	b = append(b, `","target":`...)
	b = jsonstr.Append(b, g.target)
	// The example object has url and query whatever the target; a prompt
	// or a product_id comes after them.
	switch g.input {
	case schema.InputURL:
		b = append(b, `,"url":`...)
		b = jsonstr.Append(b, input)
		b = append(b, `,"query":""`...)
	case schema.InputQuery:
		b = append(b, `,"url":"","query":`...)
		b = jsonstr.Append(b, input)
	case schema.InputPrompt, schema.InputProductID:
		b = append(b, `,"url":"","query":"",`...)
		b = appendKey(b, g.input)
		b = jsonstr.Append(b, input)
	default:
		b = append(b, `,"url":"","query":""`...)
	}
	b = append(b, g.params...)
	b = append(b, `,"created_at":"`...)
	b = append(b, g.createdAt...)
	b = append(b, `","updated_at":"`...)
	b = appendTime(b, updated)
	return append(b, `"}`...)
}

// appendKey appends `"field":` for input field in.
func appendKey(b []byte, in schema.Input) []byte {
	b = append(b, '"')
	b = append(b, in.String()...)
	return append(b, `":`...)
}

// appendResults renders the results of a done task, one entry per page,
// each with its own status_code, headers and cookies. A task of several
// pages says which in a header and a cookie of each.
func (s *Server) appendResults(b []byte, id uint64, t *task) []byte {
	g := t.group
	ctype := `"text/html; charset=utf-8"`
	switch {
	case g.parse:
		ctype = `"application/json"`
	case g.headless == "png":
		ctype = `"image/png"`
	case g.markdown:
		ctype = `"text/markdown; charset=utf-8"`
	}
	b = append(b, `{"results":[`...)
	for page := 1; page <= g.pageCount; page++ {
		if page > 1 {
			b = append(b, ',')
		}
		b = append(b, `{"content":`...)
		b = s.appendContent(b, id, t, page)
		b = append(b, `,"status_code":`...)
		b = strconv.AppendInt(b, int64(t.pageCode(page)), 10)
		if g.input != schema.InputNone {
			b = append(b, ',')
			b = appendKey(b, g.input)
			b = jsonstr.Append(b, t.input)
		}
		b = append(b, `,"task_id":"`...)
		b = strconv.AppendUint(b, id, 10)
		b = append(b, `","headers":{"content-type":`...)
		b = append(b, ctype...)
		if g.pageCount > 1 {
			b = append(b, `,"x-sandbox-page":"`...)
			b = strconv.AppendInt(b, int64(page), 10)
			b = append(b, `"},"cookies":[{"key":"sandbox_page","value":"`...)
			b = strconv.AppendInt(b, int64(page), 10)
			b = append(b, `"}],"created_at":"`...)
		} else {
			b = append(b, `},"cookies":[],"created_at":"`...)
		}
		b = append(b, g.createdAt...)
		b = append(b, `","updated_at":"`...)
		b = appendTime(b, t.due)
		b = append(b, `"}`...)
	}
	return append(b, "]}"...)
}

// appendContent renders one page's content: HTML by default, markdown with
// markdown=true, a JSON object with parse=true. Each holds the task's input
// verbatim and is padded with the shared filler to about ContentSize bytes.
func (s *Server) appendContent(b []byte, id uint64, t *task, page int) []byte {
	g := t.group
	start := len(b)
	code := int64(t.pageCode(page))
	if g.parse {
		b = append(b, '{')
		if g.input != schema.InputNone {
			b = appendKey(b, g.input)
			b = jsonstr.Append(b, t.input)
			b = append(b, ',')
		}
		b = append(b, `"task_id":"`...)
		b = strconv.AppendUint(b, id, 10)
		b = append(b, `","page":`...)
		b = strconv.AppendInt(b, int64(page), 10)
		b = append(b, `,"status_code":`...)
		b = strconv.AppendInt(b, code, 10)
		b = append(b, `,"results":{"title":"Decodo sandbox","text":"`...)
		b = s.appendFiller(b, start, len(`"}},"parse_status_code":12000}`))
		return append(b, `"},"parse_status_code":12000}`...)
	}
	switch {
	case g.headless == "png":
		b = append(b, '"')
		b = append(b, s.png...)
		return append(b, '"')
	case s.html != nil && !g.markdown:
		b = append(b, '"')
		b = s.html.appendPage(b, s.cfg.ContentSize-2, id, page, t.input, code)
		return append(b, '"')
	}
	var suffix string
	if g.markdown {
		b = append(b, `"# Decodo sandbox\n\n`...)
		b = appendInString(b, t.input)
		b = append(b, `\n\ntask `...)
		b = strconv.AppendUint(b, id, 10)
		b = append(b, ` page `...)
		b = strconv.AppendInt(b, int64(page), 10)
		b = append(b, ` status `...)
		b = strconv.AppendInt(b, code, 10)
		b = append(b, `\n\n`...)
		suffix = `\n"`
	} else {
		b = append(b, `"<!doctype html><html><head><title>Decodo sandbox</title></head><body><h1>`...)
		b = appendInString(b, t.input)
		b = append(b, `</h1><p>task `...)
		b = strconv.AppendUint(b, id, 10)
		b = append(b, ` page `...)
		b = strconv.AppendInt(b, int64(page), 10)
		b = append(b, ` status `...)
		b = strconv.AppendInt(b, code, 10)
		b = append(b, `</p><p>`...)
		suffix = `</p></body></html>"`
	}
	b = s.appendFiller(b, start, len(suffix))
	return append(b, suffix...)
}

// appendFiller pads the content begun at start so that, with a suffix of
// the given length, it is ContentSize bytes long.
func (s *Server) appendFiller(b []byte, start, suffix int) []byte {
	if n := len(s.filler) - (len(b) - start) - suffix; n > 0 {
		b = append(b, s.filler[:n]...)
	}
	return b
}

// makeFiller returns n bytes of text that needs no escaping in JSON or HTML.
func makeFiller(n int) string {
	if n <= 0 {
		return ""
	}
	const words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua "
	return string(bytes.Repeat([]byte(words), n/len(words)+1)[:n])
}

// appendInString appends s escaped for the inside of a JSON string.
func appendInString(b []byte, s string) []byte {
	n := len(b)
	b = jsonstr.Append(b, s)
	return append(b[:n], b[n+1:len(b)-1]...) // without its quotes
}

// scheduleCallbackLocked arranges the callback of task id when it completes,
// d from now. The caller holds s.mu, so a timer that fires at once waits for
// the task to be stored.
func (s *Server) scheduleCallbackLocked(id uint64, d time.Duration) {
	// Four draws a callback whatever the rates: a seed gives the same
	// callbacks under any settings.
	lost := s.cbRand.Float64() < s.cfg.CallbackLossRate
	dup := s.cbRand.Float64() < s.cfg.CallbackDupRate
	extra := time.Duration(s.cbRand.Float64() * float64(s.cfg.CallbackDelay))
	later := time.Duration(s.cbRand.Float64() * float64(time.Second))
	if lost {
		s.st.callbacksLost++
		return
	}
	d += extra
	s.timers[id] = time.AfterFunc(d, func() { s.callback(id) })
	if dup {
		s.st.callbacksDuplicated++
		time.AfterFunc(d+later, func() { s.callback(id) }) // stopped by Close's closed flag
	}
}

// callback POSTs the completed task's object, with its passthrough, to its
// callback_url: one attempt, best effort, counted in [Stats].
func (s *Server) callback(id uint64) {
	s.mu.Lock()
	delete(s.timers, id)
	t, ok := s.tasks[id]
	if s.closed || !ok {
		s.mu.Unlock()
		return
	}
	s.cbWG.Add(1) // under s.mu while not closed, so never after Close's Wait began
	s.mu.Unlock()
	defer s.cbWG.Done()

	status := "done"
	if t.faulted {
		status = "faulted"
	}
	body := appendTask(nil, id, t.group, t.input, status, t.due)
	ctx, cancel := context.WithTimeout(s.cbCtx, callbackTimeout)
	defer cancel()
	ok = false
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.group.callback, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		var resp *http.Response
		if resp, err = s.cbClient.Do(req); err == nil {
			resp.Body.Close()
			ok = resp.StatusCode < 300
		}
	}
	s.mu.Lock()
	if ok {
		s.st.callbacksSent++
	} else {
		s.st.callbacksFailed++
	}
	s.mu.Unlock()
}

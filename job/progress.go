package job

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/decodo-batch/decodo-batch/io/records"
)

// The progress display is drawn here rather than with
// github.com/schollz/progressbar: that library computes its own rate (over
// the whole run, rows done in earlier sessions included: the 24,396 rows/s
// after a resume) and its own ETA, cannot show a percentage and counts from
// one snapshot of figures it does not hold, measures the width of stdout
// while the bar goes to stderr, and leaves a wrapped line behind whenever
// its description makes the line wider than the terminal. What would be
// left of it is the row of '=' signs.

// Screen is a terminal shared by log lines and one progress line at its
// bottom. A write (a log line) clears the progress line first and draws
// it again after, so that log lines never land on it; the progress line
// is drawn in place, never wider than the terminal, and cleared at the
// end. It is safe for concurrent use.
type Screen struct {
	mu   sync.Mutex
	w    io.Writer
	fd   int    // the terminal's file descriptor, -1 if w is no file
	line string // the progress line shown, "" for none
	buf  []byte
}

// NewScreen returns a Screen writing to w (stderr).
func NewScreen(w io.Writer) *Screen {
	s := &Screen{w: w, fd: -1}
	if f, ok := w.(*os.File); ok {
		s.fd = int(f.Fd())
	}
	return s
}

// Write writes p, a log line, above the progress line.
func (s *Screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.line == "" {
		return s.w.Write(p)
	}
	b := append(s.buf[:0], "\r\x1b[K"...)
	b = append(b, p...)
	if len(p) > 0 && p[len(p)-1] == '\n' {
		b = append(b, s.line...)
	} else {
		s.line = "" // a partial line: the progress line comes back at the next draw
	}
	s.buf = b
	if _, err := s.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Width returns the terminal's width in columns: its size, else $COLUMNS,
// else 80.
func (s *Screen) Width() int {
	if s.fd >= 0 {
		if w, _, err := term.GetSize(s.fd); err == nil && w > 0 {
			return w
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}

// show draws line as the progress line, in place.
func (s *Screen) show(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.line = line
	s.buf = append(append(append(s.buf[:0], '\r'), line...), "\x1b[K"...)
	s.w.Write(s.buf) //nolint:errcheck // a display: nothing to do
}

// clear removes the progress line.
func (s *Screen) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.line != "" {
		io.WriteString(s.w, "\r\x1b[K") //nolint:errcheck
		s.line = ""
	}
}

// progress shows how the run goes: a line redrawn in place on a terminal,
// a log line every 10 seconds otherwise, or nothing.
type progress struct {
	done chan struct{}
	end  chan struct{}
}

// Refresh periods of the display.
const (
	barEvery = 200 * time.Millisecond
	logEvery = 10 * time.Second
)

func newProgress(mode string, w io.Writer, log *slog.Logger, c *counts) *progress {
	p := &progress{done: make(chan struct{}), end: make(chan struct{})}
	if mode != "bar" && mode != "log" {
		close(p.end)
		return p
	}
	m := newMeter(c, time.Now())
	go func() {
		defer close(p.end)
		if mode == "bar" {
			sc, ok := w.(*Screen)
			if !ok {
				sc = NewScreen(w)
			}
			p.bar(sc, m)
		} else {
			p.log(log, m, logEvery)
		}
	}()
	return p
}

func (p *progress) stop() {
	close(p.done)
	<-p.end
}

func (p *progress) bar(sc *Screen, m *meter) {
	tick := time.NewTicker(barEvery)
	defer tick.Stop()
	// The first frame waits a tick: by then a file's rows are counted.
	for {
		select {
		case <-p.done:
			sc.clear()
			return
		case <-tick.C:
		}
		sc.show(barLine(m.read(time.Now()), sc.Width()-1))
	}
}

func (p *progress) log(log *slog.Logger, m *meter, every time.Duration) {
	// The meter samples every second, for its window; a line goes out
	// every period.
	tick := time.NewTicker(min(time.Second, every))
	defer tick.Stop()
	next := time.Now().Add(every)
	for {
		select {
		case <-p.done:
			return
		case now := <-tick.C:
			f := m.read(now)
			if now.Before(next) {
				continue
			}
			next = next.Add(every)
			log.Info("progress", f.attrs()...)
		}
	}
}

// countTotal counts the rows of a regular input file in a fast first pass,
// so that the display knows the total long before the reader reaches the
// end; the total the reader finds replaces it.
func countTotal(input, format string, c *counts) {
	if input == "-" {
		return
	}
	if fi, err := os.Stat(input); err != nil || !fi.Mode().IsRegular() {
		return
	}
	if format == "" {
		var err error
		if format, err = records.Sniff(input, ""); err != nil {
			return
		}
	}
	if n, err := records.CountRows(input, format); err == nil {
		c.total.CompareAndSwap(-1, n)
	}
}

// figures are what the display shows at one instant, all from one reading
// of the counts: done is results + failed + rejected, and the percentage
// is done / total of these very numbers.
type figures struct {
	results, failed, rejected, inFlight int64
	done, total                         int64         // total -1 while unknown
	rate                                float64       // rows/s over the window, this session only; 0 while unknown
	eta                                 time.Duration // -1 while unknown
	elapsed                             time.Duration
}

// permille returns done/total in tenths of a percent, rounded down (100.0%
// only when every row is done), or -1 while the total is unknown.
func (f *figures) permille() int64 {
	if f.total <= 0 {
		if f.total == 0 {
			return 1000
		}
		return -1
	}
	return f.done * 1000 / f.total
}

func (f *figures) percent() string {
	p := f.permille()
	if p < 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d%%", p/10, p%10)
}

// attrs are the figures as log attributes.
func (f *figures) attrs() []any {
	a := []any{"done", f.done, "total", f.total}
	if p := f.permille(); p >= 0 {
		a = append(a, "percent", float64(p)/10)
	}
	a = append(a, "results", f.results, "failed", f.failed, "rejected", f.rejected, "in_flight", f.inFlight,
		"rows_per_sec", math.Round(f.rate*10)/10)
	if f.eta >= 0 {
		a = append(a, "eta", f.eta.Round(time.Second).String())
	}
	return append(a, "elapsed", f.elapsed.Round(time.Second).String())
}

// Rate and ETA: the rate is over the last rateWindow of this session (rows
// done in earlier sessions are the starting point, not progress). The ETA
// counts down between readings and moves toward remaining/rate: quickly
// when that is sooner (etaFall), slowly when it is later (etaRise), so
// that a lull, such as the last slow tasks of a run, does not make it
// jump.
const (
	rateWindow  = 30 * time.Second
	rateMinSpan = 2 * time.Second // no rate before this much of the session
	etaFall     = 2 * time.Second
	etaRise     = 20 * time.Second
	etaRiseMax  = 0.5 // seconds of ETA per second
)

type sample struct {
	at   time.Time
	done int64
}

// meter turns readings of the counts into figures.
type meter struct {
	c       *counts
	start   time.Time
	samples []sample // oldest first, spanning up to rateWindow
	eta     float64  // smoothed, seconds; -1 unknown
	last    time.Time
}

func newMeter(c *counts, now time.Time) *meter {
	m := &meter{c: c, start: now, eta: -1}
	m.samples = append(m.samples, sample{now, c.results.Load() + c.failed.Load() + c.rejected.Load()})
	return m
}

func (m *meter) read(now time.Time) figures {
	f := figures{
		results: m.c.results.Load(), failed: m.c.failed.Load(), rejected: m.c.rejected.Load(),
		inFlight: m.c.inFlight.Load(), total: m.c.total.Load(), elapsed: now.Sub(m.start), eta: -1,
	}
	f.done = f.results + f.failed + f.rejected
	if f.total >= 0 && f.done > f.total {
		f.total = f.done // a first-pass count that missed a row; the reader's own replaces it
	}
	m.samples = append(m.samples, sample{now, f.done})
	i := 0
	for i < len(m.samples)-2 && now.Sub(m.samples[i+1].at) >= rateWindow {
		i++
	}
	m.samples = m.samples[i:]
	first := m.samples[0]
	if span := now.Sub(first.at); span >= rateMinSpan || now.Sub(m.start) >= rateMinSpan && span > 0 {
		f.rate = float64(f.done-first.done) / span.Seconds()
	}
	dt := now.Sub(m.last).Seconds()
	m.last = now
	switch remaining := f.total - f.done; {
	case f.total < 0:
		m.eta = -1
	case remaining == 0:
		m.eta = 0
	case f.rate <= 0:
		m.eta = -1
	case m.eta < 0 && f.done-first.done < max(10, f.total/200):
		// Too few rows yet for a first guess (one rejected row in two
		// seconds is no rate).
	default:
		raw := float64(remaining) / f.rate
		if m.eta < 0 {
			m.eta = raw
			break
		}
		predicted := max(m.eta-dt, 0)
		switch {
		case raw < predicted/2:
			m.eta = raw // the first results of a run, after the first guess
		case raw < predicted:
			m.eta = predicted + (raw-predicted)*(1-math.Exp(-dt/etaFall.Seconds()))
		default:
			// Later: by at most etaRiseMax seconds a second. A stall
			// shows in the rate; the last slow tasks of a run, which
			// bring the rate down, do not send the ETA up by minutes.
			m.eta = predicted + min((raw-predicted)*(1-math.Exp(-dt/etaRise.Seconds())), etaRiseMax*dt)
		}
	}
	if m.eta >= 0 {
		f.eta = time.Duration(m.eta * float64(time.Second))
	}
	return f
}

// barLine renders the figures in at most width columns: the longest of
// its forms that fits, shorter ones for 80 and 60 columns.
func barLine(f figures, width int) string {
	pct := f.percent()
	count := strconv.FormatInt(f.done, 10)
	if f.total >= 0 {
		count += "/" + strconv.FormatInt(f.total, 10)
	}
	rate := "-"
	if f.rate > 0 {
		rate = formatRate(f.rate)
	}
	eta := "ETA -"
	if f.eta >= 0 {
		eta = "ETA " + formatDuration(f.eta)
	}
	n := strconv.FormatInt
	var forms [][]string
	if f.total >= 0 {
		forms = [][]string{
			{pct, "[]", count + " rows", "results " + n(f.results, 10), "failed " + n(f.failed, 10), "rejected " + n(f.rejected, 10), "in flight " + n(f.inFlight, 10), rate + " rows/s", eta},
			{pct, "[]", count, n(f.inFlight, 10) + " in flight", n(f.failed, 10) + " failed", n(f.rejected, 10) + " rejected", rate + "/s", eta},
			{pct, "[]", count, n(f.inFlight, 10) + " in flight", n(f.failed, 10) + " failed", n(f.rejected, 10) + " rej", eta},
			{pct, count, n(f.inFlight, 10) + " in flight", n(f.failed, 10) + " failed", n(f.rejected, 10) + " rej", eta},
			{pct, count, "fl " + n(f.inFlight, 10), "fail " + n(f.failed, 10), "rej " + n(f.rejected, 10), eta},
			{pct, count, eta},
			{pct, count},
			{pct},
		}
	} else {
		forms = [][]string{
			{count + " rows done", "results " + n(f.results, 10), "failed " + n(f.failed, 10), "rejected " + n(f.rejected, 10), "in flight " + n(f.inFlight, 10), rate + " rows/s", "total not known yet"},
			{count + " done", n(f.inFlight, 10) + " in flight", n(f.failed, 10) + " failed", n(f.rejected, 10) + " rejected", rate + "/s"},
			{count + " done", n(f.inFlight, 10) + " in flight", n(f.failed, 10) + " failed"},
			{count + " done"},
		}
	}
	for _, form := range forms {
		if s, ok := render(form, f.total >= 0, f.permille(), width); ok {
			return s
		}
	}
	return truncate(count, width)
}

const (
	sep        = " · "
	minBar     = 10
	maxBar     = 40
	barOverlap = 2 // the brackets
)

// render joins the parts of a form; a part "[]" is the bar, as wide as the
// width leaves it (minBar to maxBar). With head, the percentage, the bar
// and the count are joined by spaces, the rest by sep. ok is false if it
// does not fit.
func render(parts []string, head bool, permille int64, width int) (string, bool) {
	seps := make([]string, len(parts))
	for i := 1; i < len(parts); i++ {
		seps[i] = sep
		if head && (i == 1 || parts[i-1] == "[]") {
			seps[i] = " "
		}
	}
	fixed, hasBar := 0, false
	for i, p := range parts {
		if p == "[]" {
			hasBar = true
			p = ""
		}
		fixed += utf8.RuneCountInString(p) + utf8.RuneCountInString(seps[i])
	}
	if hasBar {
		fixed += barOverlap
	}
	room := width - fixed
	if room < 0 || hasBar && room < minBar {
		return "", false
	}
	var b strings.Builder
	for i, p := range parts {
		b.WriteString(seps[i])
		if p == "[]" {
			b.WriteString(drawBar(min(room, maxBar), permille))
			continue
		}
		b.WriteString(p)
	}
	return b.String(), true
}

// drawBar draws a bar of n cells (plus brackets) filled to permille.
func drawBar(n int, permille int64) string {
	fill := int(int64(n) * max(permille, 0) / 1000)
	var b strings.Builder
	b.WriteByte('[')
	b.WriteString(strings.Repeat("=", fill))
	if fill < n {
		b.WriteByte('>')
		b.WriteString(strings.Repeat(" ", n-fill-1))
	}
	b.WriteByte(']')
	return b.String()
}

func truncate(s string, width int) string {
	if width <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	return string([]rune(s)[:width])
}

func formatRate(r float64) string {
	if r < 10 {
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return strconv.FormatFloat(r, 'f', 0, 64)
}

// formatDuration writes d as 3h05m, 4m10s or 42s.
func formatDuration(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s >= 3600:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	case s >= 60:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s == 0 && d > 0:
		return "<1s"
	}
	return fmt.Sprintf("%ds", s)
}

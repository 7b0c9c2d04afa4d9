package job

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

var frameRE = regexp.MustCompile(`^(\d+)\.(\d)% .*?(\d+)/(\d+)`)

// TestBarLineFits proves every frame fits its width, at 60, 80 and wide,
// and that its percentage is done/total of the counts it prints.
func TestBarLineFits(t *testing.T) {
	t.Parallel()
	cases := []figures{
		{results: 0, total: 20000, eta: -1},
		{results: 1939, failed: 3, rejected: 20, inFlight: 18000, total: 20000, rate: 1532.4, eta: 93 * time.Second},
		{results: 999_000, failed: 1000, rejected: 999, inFlight: 50_000, total: 1_000_000, rate: 2999, eta: 5 * time.Hour},
		{results: 14653, total: 20000, rate: 0.5, eta: 2*time.Minute + 3*time.Second},
		{results: 300, total: 300, eta: 0},
	}
	for _, f := range cases {
		f.done = f.results + f.failed + f.rejected
		for _, width := range []int{20, 40, 59, 60, 79, 80, 100, 120, 159, 160, 300} {
			line := barLine(f, width)
			if n := utf8.RuneCountInString(line); n > width {
				t.Errorf("width %d: %d columns: %q", width, n, line)
			}
			if width < 40 {
				continue
			}
			m := frameRE.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("width %d: no percentage and count in %q", width, line)
				continue
			}
			whole, _ := strconv.ParseInt(m[1], 10, 64)
			tenth, _ := strconv.ParseInt(m[2], 10, 64)
			done, _ := strconv.ParseInt(m[3], 10, 64)
			total, _ := strconv.ParseInt(m[4], 10, 64)
			if done != f.done || total != f.total || whole*10+tenth != done*1000/total {
				t.Errorf("width %d: %q: percentage is not done/total of the line", width, line)
			}
			if width >= 80 && !strings.Contains(line, "in flight") {
				t.Errorf("width %d: in flight missing: %q", width, line)
			}
		}
	}
	unknown := figures{results: 10, done: 10, total: -1, eta: -1}
	if line := barLine(unknown, 80); strings.Contains(line, "%") || !strings.Contains(line, "10 ") {
		t.Errorf("unknown total: %q", line)
	}
}

// TestMeterRateAndETA proves the rate leaves out rows done in earlier
// sessions, and that the ETA counts down steadily and does not jump up
// when the last tasks come slowly.
func TestMeterRateAndETA(t *testing.T) {
	t.Parallel()
	var c counts
	c.results.Store(14653) // from an earlier session
	c.total.Store(20000)
	t0 := time.Unix(1_800_000_000, 0)
	m := newMeter(&c, t0)
	var f figures
	for i := 1; i <= 50; i++ { // 10 s at 100 rows/s
		c.results.Add(20)
		f = m.read(t0.Add(time.Duration(i) * 200 * time.Millisecond))
	}
	if f.rate < 99 || f.rate > 101 {
		t.Fatalf("rate %.1f rows/s, want 100 (the 14653 rows of earlier sessions are no progress)", f.rate)
	}
	if want := time.Duration(float64(20000-f.done) / 100 * float64(time.Second)); f.eta < want*9/10 || f.eta > want*11/10 {
		t.Fatalf("ETA %v, want about %v", f.eta, want)
	}
	// The rate falls tenfold: the ETA may rise, but slowly.
	prev := f.eta
	at := t0.Add(10 * time.Second)
	for i := 1; i <= 200; i++ { // 40 s: the whole window slow
		c.results.Add(2)
		at = at.Add(200 * time.Millisecond)
		f = m.read(at)
		if f.eta > prev+100*time.Millisecond { // half a second a second at most
			t.Fatalf("ETA rose from %v to %v in 200ms", prev, f.eta)
		}
		prev = f.eta
	}
}

// TestScreenClearsForLogLines proves a log line written while the bar is
// shown clears the bar's line first and draws the bar again below it.
func TestScreenClearsForLogLines(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	sc := NewScreen(&b)
	sc.show("50.0% [====>    ] 1/2")
	fmt.Fprintf(sc, "level=WARN msg=stopping\n")
	sc.clear()
	want := "\r50.0% [====>    ] 1/2\x1b[K" + "\r\x1b[Klevel=WARN msg=stopping\n50.0% [====>    ] 1/2" + "\r\x1b[K"
	if b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}
}

// TestProgressLogLines proves the display without a terminal: a log line
// per period with the figures of the bar, its percentage done/total of
// its own counts.
func TestProgressLogLines(t *testing.T) {
	t.Parallel()
	var c counts
	c.results.Store(40)
	c.failed.Store(5)
	c.rejected.Store(5)
	c.inFlight.Store(30)
	c.total.Store(200)
	var b bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &b}, nil))
	p := &progress{done: make(chan struct{}), end: make(chan struct{})}
	go func() { defer close(p.end); p.log(log, newMeter(&c, time.Now()), 20*time.Millisecond) }()
	// Two periods at least, however slowly a loaded machine runs them.
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(b.String(), "\n")
	}
	for deadline := time.Now().Add(10 * time.Second); count() < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	p.stop()
	mu.Lock()
	defer mu.Unlock()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("%d progress lines in 10s at one per 20ms", len(lines))
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m["msg"] != "progress" || m["done"] != 50.0 || m["total"] != 200.0 || m["percent"] != 25.0 ||
		m["failed"] != 5.0 || m["rejected"] != 5.0 || m["in_flight"] != 30.0 {
		t.Errorf("progress line: %v", m)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

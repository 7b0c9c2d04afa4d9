package job

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows how the run goes: a bar on a terminal, a log line every
// 10 seconds otherwise, or nothing.
type progress struct {
	done chan struct{}
	end  chan struct{}
}

func newProgress(mode string, w io.Writer, log *slog.Logger, c *counts) *progress {
	p := &progress{done: make(chan struct{}), end: make(chan struct{})}
	if mode != "bar" && mode != "log" {
		close(p.end)
		return p
	}
	go func() {
		defer close(p.end)
		if mode == "bar" {
			p.bar(w, c)
		} else {
			p.log(log, c)
		}
	}()
	return p
}

func (p *progress) stop() {
	close(p.done)
	<-p.end
}

func (p *progress) bar(w io.Writer, c *counts) {
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("rows"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
	)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if t := c.total.Load(); t > 0 && bar.GetMax64() != t {
			bar.ChangeMax64(t)
		}
		done := c.results.Load() + c.failed.Load() + c.rejected.Load()
		bar.Describe(fmt.Sprintf("results %d, failed %d, rejected %d, in flight %d",
			c.results.Load(), c.failed.Load(), c.rejected.Load(), c.inFlight.Load()))
		_ = bar.Set64(done)
		select {
		case <-p.done:
			_ = bar.Finish()
			fmt.Fprintln(w)
			return
		case <-tick.C:
		}
	}
}

func (p *progress) log(log *slog.Logger, c *counts) {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
		log.Info("progress",
			"done", c.results.Load()+c.failed.Load()+c.rejected.Load(),
			"total", c.total.Load(),
			"results", c.results.Load(), "failed", c.failed.Load(), "rejected", c.rejected.Load(),
			"in_flight", c.inFlight.Load(), "elapsed", time.Since(start).Round(time.Second))
	}
}

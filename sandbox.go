package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/decodo-batch/decodo-batch/decodo/sandbox"
)

func sandboxCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8000", "address to serve on")
	cfg := sandbox.Config{Delay: sandbox.Delay{Kind: sandbox.Uniform, Min: 500 * time.Millisecond, Max: 3 * time.Second}}
	cfg.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: decodo-batch sandbox [flags]\n\nServes a simulated Decodo Scraper API (the four asynchronous endpoints)\nuntil interrupted. GET /_sandbox/stats shows its counters.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("sandbox takes no arguments, got %q", pos)
	}
	srv, bound, err := serveSandbox(*addr, cfg)
	if err != nil {
		return err
	}
	token := "any non-empty token"
	if len(cfg.Tokens) > 0 {
		token = cfg.Tokens[0]
	}
	fmt.Fprintf(stdout, "sandbox API on http://%s (token: %s; delay %s)\n", bound, token, cfg.Delay.String())
	fmt.Fprintf(stdout, "try: DECODO_TOKEN=sandbox decodo-batch run --endpoint http://%s examples/urls.csv -o out\n", bound)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

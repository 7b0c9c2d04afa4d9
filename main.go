// Command decodo-batch runs very large scraping jobs through the Decodo
// Scraper API's asynchronous batch endpoints: it reads a CSV, JSONL or TXT
// file of URLs or queries, submits them in batches of up to 3000 at the
// API's pace, collects the results into output files, and resumes from its
// checkpoint after a crash, a deadline or Ctrl-C.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/decodo-batch/decodo-batch/decodo"
	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/records"
	"github.com/decodo-batch/decodo-batch/io/results"
	"github.com/decodo-batch/decodo-batch/job"
)

// version may be set at build time with -ldflags "-X main.version=...";
// else it comes from the build info (the module version of a go install,
// or the VCS revision of a build from a clone).
var version = ""

// versionText returns the version, the VCS revision and its time when the
// build info has them, e.g. "v1.2.0" or "(devel) 3f9502d 2026-12-02T04:20:33Z".
func versionText() string {
	v := version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return cmp.Or(v, "(unknown)")
	}
	v = cmp.Or(v, bi.Main.Version)
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(len(s.Value), 12)]
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = " (modified)"
			}
		}
	}
	if rev != "" {
		v += " " + rev + " " + at + dirty
	}
	return v
}

// Exit codes, for cron and scripts; they are decided here only.
const (
	exitOK          = 0
	exitFatal       = 1
	exitUsage       = 2
	exitPartial     = 3
	exitLocked      = 4
	exitUnavailable = 69 // EX_UNAVAILABLE: nothing was lost, run again
	exitStopped     = 75
)

// usageError is a bad command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

func main() {
	if os.Getenv("GOGC") == "" {
		// A run allocates a little per request, thousands of requests a
		// second, with a small live heap: collecting half as often costs
		// some memory and saves CPU.
		debug.SetGCPercent(200)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		// After the first signal the default handlers are back: a second
		// signal ends the process at once (the checkpoint stays sound).
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(reportErr(err, os.Stderr))
}

// reportErr prints err to stderr, unless its exit code says it all (the run
// printed its own summary), and returns the exit code.
func reportErr(err error, stderr io.Writer) int {
	code := exitCode(err)
	var logged *loggedError
	if err != nil && code != exitOK && code != exitPartial && code != exitStopped && !errors.As(err, &logged) {
		fmt.Fprintln(stderr, "decodo-batch:", err)
	}
	if code == exitUsage {
		fmt.Fprintln(stderr, `Run "decodo-batch -h", or "decodo-batch COMMAND -h" for a command's flags.`)
	}
	return code
}

func exitCode(err error) int {
	var usage *usageError
	var locked *checkpoint.LockedError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &usage):
		return exitUsage
	case errors.As(err, &locked):
		return exitLocked
	case errors.Is(err, job.ErrStopped):
		return exitStopped
	case errors.Is(err, decodo.ErrUnavailable):
		return exitUnavailable
	case errors.Is(err, job.ErrPartial):
		return exitPartial
	}
	return exitFatal
}

// advise adds what the user can do about an error the libraries report
// without speaking of flags or the environment.
func advise(err error) error {
	var mismatch *checkpoint.MismatchError
	var logged *loggedError
	switch {
	case errors.As(err, &logged):
		return err // advised before it was logged
	case errors.As(err, &mismatch), errors.Is(err, results.ErrShorter), errors.Is(err, job.ErrStdinCheckpoint):
		return fmt.Errorf("%w; use the same input and options to resume, or --restart to discard the checkpoint and outputs and start over", err)
	case errors.Is(err, decodo.ErrAuth):
		return fmt.Errorf("%w; check DECODO_TOKEN (the Basic token from the Decodo dashboard), or DECODO_USERNAME and DECODO_PASSWORD, or --token-file", err)
	case errors.Is(err, records.ErrFormat):
		return fmt.Errorf("%w; give --format csv|jsonl|txt", err)
	case errors.Is(err, records.ErrUnknownColumn), errors.Is(err, records.ErrUnknownParam):
		return fmt.Errorf("%w (--allow-param NAME passes a parameter the tables do not list, unchecked; the target is --target)", err)
	case errors.Is(err, job.ErrForeignCheckpoint):
		return fmt.Errorf("%w; resume with the token and endpoint the job was started with, or use --restart to start over (it pays for the pending tasks again)", err)
	case errors.Is(err, decodo.ErrUnavailable):
		return fmt.Errorf("%w; nothing was lost: run the same command again to continue", err)
	}
	return err
}

const usageText = `decodo-batch runs large scraping jobs through the Decodo Scraper API.

Usage:
  decodo-batch run [flags] INPUT     the main job (INPUT "-", or none with
                                     a pipe: stdin)
  decodo-batch status [--json] OUT   what a checkpoint says, without the network
  decodo-batch sandbox [flags]       serve the simulated API on a local address
  decodo-batch version

Run "decodo-batch COMMAND -h" for the flags of a command.
`

// run dispatches a subcommand; it is main without os.Exit, for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return usagef("no command")
	}
	switch args[0] {
	case "run":
		return advise(runCmd(ctx, args[1:], stdout, stderr))
	case "status":
		return statusCmd(args[1:], stdout, stderr)
	case "sandbox":
		return sandboxCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		return versionCmd(args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText)
		return nil
	}
	return usagef("unknown command %q", args[0])
}

func versionCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: decodo-batch version\n\nPrints the version: the module version, and the VCS revision and its time\nwhen the binary was built from a clone.\n")
	}
	pos, err := parseArgs(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("version takes no arguments, got %q", pos)
	}
	fmt.Fprintln(stdout, "decodo-batch", versionText())
	return nil
}

// parseArgs parses flags that may come before or after the positional
// arguments ("run INPUT -o OUT" and "run -o OUT INPUT" both work). -h and
// --help print the command's usage to stdout; a bad flag is a usage error
// of one line.
func parseArgs(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	fs.SetOutput(io.Discard) // the flag package's own error print, and its usage after it
	args, err := splitShortFlags(fs, args)
	if err != nil {
		return nil, err
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stdout)
				fs.Usage()
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// splitShortFlags spells out combined one-letter boolean flags, as Unix
// tools take them: -qv is -q -v. Combined letters that are all flags, one
// of which takes a value (-qo), are a usage error saying so; any other
// argument is left to the flag package. Arguments after "--" are left
// alone.
func splitShortFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var out []string
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...), nil
		}
		name, ok := strings.CutPrefix(a, "-")
		if !ok || len(name) < 2 || name[0] == '-' || strings.Contains(name, "=") || fs.Lookup(name) != nil {
			out = append(out, a)
			continue
		}
		letters := make([]string, 0, len(name))
		for _, c := range name {
			if c != 'h' && fs.Lookup(string(c)) == nil {
				letters = nil // not all flags: the flag package says which
				break
			}
			letters = append(letters, "-"+string(c))
		}
		if letters == nil {
			out = append(out, a)
			continue
		}
		for _, c := range name {
			if fl := fs.Lookup(string(c)); fl != nil && !isBoolFlag(fl) {
				return nil, usagef("flags combined in %s: -%c takes a value; give it apart, as -%c VALUE", a, c, c)
			}
		}
		out = append(out, letters...)
	}
	return out, nil
}

func isBoolFlag(fl *flag.Flag) bool {
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// stdinPiped reports whether stdin is a pipe or a file, which INPUT then
// defaults to; not a terminal, and not a device such as /dev/null (cron).
func stdinPiped() bool {
	fi, err := os.Stdin.Stat()
	if err != nil {
		return false
	}
	m := fi.Mode()
	return m&os.ModeNamedPipe != 0 || m.IsRegular()
}

// loggedError is an error already written as a log line (with
// --log-format json): reportErr does not print it again.
type loggedError struct{ err error }

func (e *loggedError) Error() string { return e.err.Error() }
func (e *loggedError) Unwrap() error { return e.err }

// logError writes a fatal error of a run as a log line, with the advice
// and exit code it ends with, and marks it as written. Usage errors, and
// the ends that the summary tells, are left as they are.
func logError(log *slog.Logger, err error) error {
	switch code := exitCode(err); code {
	case exitOK, exitPartial, exitStopped, exitUsage:
		return err
	default:
		err = advise(err)
		log.Error(err.Error(), "exit", code)
		return &loggedError{err}
	}
}

// logSummary is printSummary as log lines, for --log-format json.
func logSummary(log *slog.Logger, s *job.Summary, out string) {
	attrs := []any{
		"rows", s.Rows, "results", s.Results, "failed", s.Failed, "rejected", s.Rejected, "pending", s.Pending,
		"batches", s.Batches, "seconds", math.Round(s.Seconds*10) / 10, "tasks_per_sec", math.Round(s.TasksPerSec*10) / 10,
		"gets_per_task", math.Round(s.GetsPerTask*100) / 100, "outcome", s.Outcome, "summary", filepath.Join(out, "summary.json"),
	}
	if s.Failed > 0 {
		attrs = append(attrs, "failed_file", filepath.Join(out, "failed.jsonl"))
	}
	if s.Rejected > 0 {
		attrs = append(attrs, "rejects_file", filepath.Join(out, "rejects.jsonl"))
	}
	log.Info("summary", attrs...)
	if s.Outcome == "stopped" {
		log.Warn("stopped: run the same command again to continue", "reason", s.Stopped)
	}
}

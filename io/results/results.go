// Package results writes the output files of a run: results.jsonl,
// failed.jsonl and rejects.jsonl (one JSON object a line), plain, gzip or
// zstd, results in rotated parts on request, each page's content in a file
// of its own under content/ on request, and summary.json.
//
// The files are written by one goroutine, with goroutines of the package
// beside it for compression and content files. Commit makes what was
// written durable and returns the file sizes reached, which the checkpoint
// records; on resume, Open cuts each file back to the size the checkpoint
// vouches for and removes the content files it does not, so a line or a
// file is never written twice.
package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/decodo-batch/decodo-batch/io/checkpoint"
	"github.com/decodo-batch/decodo-batch/io/durable"
	"github.com/decodo-batch/decodo-batch/io/jsonstr"
)

// File names in the output directory, before ".gz".
const (
	ResultsFile = "results.jsonl"
	FailedFile  = "failed.jsonl"
	RejectsFile = "rejects.jsonl"
	SummaryFile = "summary.json"
)

// ErrShorter is returned by [Open] when an output file is shorter than the
// checkpoint vouches for: it was changed outside the run.
var ErrShorter = errors.New("output file is shorter than the checkpoint vouches for")

// Row identifies an input row in an output line, with what it asked for:
// an output line is enough to redo the row (it reads as an input line).
type Row struct {
	Row    int64  // 1-based record index
	Line   int64  // line of the input where it starts
	ID     string // the user's key, may be empty
	Target string
	// Field and Input: the input field the row fills ("url", "query",
	// "prompt", "product_id"; "" for none) and its value.
	Field, Input string
	Params       string // the row's parameters, a JSON object; "" for none
	// DuplicateOf: the row asks what an earlier row asked, and shares its
	// task instead of paying for another (deduplicating runs); 0 if not.
	DuplicateOf int64
}

// Page is one page of a task's results: what the target site answered.
// Headers, Cookies and Content are raw JSON; empty means absent.
type Page struct {
	StatusCode int
	Headers    json.RawMessage
	Cookies    json.RawMessage
	Content    json.RawMessage
}

// Result is a line of results.jsonl: with one page, its status_code,
// headers, cookies and content; with more, "pages" holds them all and
// status_code is the highest, so that a filter on 2xx catches a failed
// page.
type Result struct {
	Row
	TaskID    string
	Pages     []Page
	Attempts  int
	FetchedAt time.Time
}

// Failure is a line of failed.jsonl.
type Failure struct {
	Row
	TaskID   string
	Class    string // faulted, expired, lost, unknown, budget
	Error    string
	Attempts int
}

// Reject is a line of rejects.jsonl: a bad input row or one the API refused.
type Reject struct {
	Row   int64
	Line  int64
	ID    string // the user's key, when the row has one
	Error string
	Input string
}

// Options say how the output files are written.
type Options struct {
	// Compress is the codec of the output files: "" (none), [Gzip] or
	// [Zstd]. Each commit ends a gzip member or zstd frame; an empty file
	// holds an empty stream, so every file decompresses.
	Compress string
	// RotateSize starts a new results part (results-00001.jsonl, ...) when
	// the current one passes this many bytes on disk; 0 never does.
	RotateSize int64
	// ContentDir writes each page's content to its own file under
	// content/ (see [ContentPath]), and the results line names it.
	ContentDir bool
	// Done reports whether the checkpoint says a row is done: with
	// ContentDir, Open removes the content files of every other row,
	// which no results line vouched for refers to. Nil: no row is done.
	Done func(row int64) bool
}

// countWriter writes to f and adds what it wrote to *n.
type countWriter struct {
	f *os.File
	n *int64
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	*c.n += int64(n)
	return n, err
}

// Writer owns the output files. It is not safe for concurrent use; it
// runs goroutines of its own for compression and content files.
//
// Its errors stick: after a failed write, flush or fsync, what reached the
// disk is unknown (on Linux a second fsync after a failed one succeeds,
// though the pages it failed to write are lost), so every later call
// returns the first error and nothing written after the last good Commit
// is ever vouched for.
type Writer struct {
	files   [3]*sink
	opt     Options
	content *contentWriter // nil without ContentDir
	line    []byte
	err     error

	committing bool        // a commit is in flight (CommitStart)
	committed  chan Commit // its outcome
	caughtUp   chan struct{}
}

// Open creates dir if needed and opens the output files for appending, cut
// back to at (the sizes the checkpoint vouches for): with rotation, the
// results part at.Part is cut back and later parts removed; with
// ContentDir, content files of rows opt.Done does not vouch for are
// removed. It returns an error naming the file when one cannot be opened
// or is shorter than at says, or for an unknown codec.
func Open(dir string, opt Options, at checkpoint.Offsets) (*Writer, error) {
	if opt.Compress != "" && opt.Compress != Gzip && opt.Compress != Zstd {
		return nil, fmt.Errorf("unknown compression %q: want gzip or zstd", opt.Compress)
	}
	if err := durable.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	w := &Writer{opt: opt, committed: make(chan Commit, 1), caughtUp: make(chan struct{}, 1)}
	for i, base := range [3]string{"results", "failed", "rejects"} {
		size, part, rotate := [3]int64{at.Results, at.Failed, at.Rejects}[i], int64(0), int64(0)
		if i == 0 {
			part, rotate = at.Part, opt.RotateSize
		}
		s, err := openSink(dir, base, opt.Compress, rotate, part, size, w.caughtUp)
		if err != nil {
			w.Close()
			return nil, err
		}
		w.files[i] = s
	}
	if opt.ContentDir {
		c, err := openContent(dir, opt.Done, w.caughtUp)
		if err != nil {
			w.Close()
			return nil, err
		}
		w.content = c
	}
	return w, nil
}

func openAt(path string, size int64) (*os.File, error) {
	f, err := durable.OpenFile(path, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open output: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open output: %w", err)
	}
	if st.Size() < size {
		f.Close()
		return nil, fmt.Errorf("%w: %s is %d bytes, the checkpoint vouches for %d: it was changed outside the run", ErrShorter, path, st.Size(), size)
	}
	if st.Size() > size {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, fmt.Errorf("cut back output %s: %w", path, err)
		}
	}
	if _, err := f.Seek(size, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("open output: %w", err)
	}
	return f, nil
}

func (w *Writer) write(i int, line []byte) error {
	if w.err != nil {
		return w.err
	}
	w.files[i].write(line)
	return nil
}

// Result writes a line to results.jsonl. With ContentDir, the pages'
// contents are written to their files by other goroutines first, and the
// line follows when they are (in the order of the calls).
func (w *Writer) Result(r *Result) error {
	if w.err != nil {
		return w.err
	}
	if w.content != nil {
		return w.content.add(w, r)
	}
	// Straight into the chunk: a page of content is copied once.
	sk := w.files[0]
	sk.used = true
	sk.cur = appendResult(sk.cur, r, nil)
	if len(sk.cur) >= chunkSize {
		sk.send()
	}
	return nil
}

// appendResult appends r's line; files, when not nil, holds the content
// file of each page, written in place of its content.
func appendResult(b []byte, r *Result, files []contentFile) []byte {
	b = appendRow(b, &r.Row)
	b = append(b, `,"task_id":`...)
	b = jsonstr.Append(b, r.TaskID)
	status := 0
	for _, p := range r.Pages {
		status = max(status, p.StatusCode)
	}
	b = append(b, `,"status_code":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	page := func(b []byte, i int) []byte {
		if files != nil {
			return appendPageFile(b, &r.Pages[i], &files[i])
		}
		return appendPage(b, &r.Pages[i])
	}
	switch len(r.Pages) {
	case 0:
		b = append(b, `,"content":null`...)
	case 1:
		b = page(b, 0)
	default:
		b = append(b, `,"pages":[`...)
		for i := range r.Pages {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"status_code":`...)
			b = strconv.AppendInt(b, int64(r.Pages[i].StatusCode), 10)
			b = page(b, i)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = append(b, `,"fetched_at":"`...)
	b = r.FetchedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

// appendPage writes a page's headers, cookies (when there are any) and
// content, each a compact JSON value.
func appendPage(b []byte, p *Page) []byte {
	if len(p.Headers) > 0 {
		b = append(b, `,"headers":`...)
		b = append(b, p.Headers...)
	}
	if len(p.Cookies) > 0 {
		b = append(b, `,"cookies":`...)
		b = append(b, p.Cookies...)
	}
	b = append(b, `,"content":`...)
	if len(p.Content) == 0 {
		return append(b, "null"...)
	}
	return append(b, p.Content...)
}

// Failed writes a line to failed.jsonl.
func (w *Writer) Failed(f *Failure) error {
	b := appendRow(w.line[:0], &f.Row)
	if f.TaskID != "" {
		b = append(b, `,"task_id":`...)
		b = jsonstr.Append(b, f.TaskID)
	}
	if f.Class != "" {
		b = append(b, `,"error_class":`...)
		b = jsonstr.Append(b, f.Class)
	}
	b = append(b, `,"error":`...)
	b = jsonstr.Append(b, f.Error)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(f.Attempts), 10)
	b = append(b, "}\n"...)
	w.line = b
	return w.write(1, b)
}

// Reject writes a line to rejects.jsonl.
func (w *Writer) Reject(r *Reject) error {
	b := append(w.line[:0], `{"row":`...)
	b = strconv.AppendInt(b, r.Row, 10)
	b = append(b, `,"line":`...)
	b = strconv.AppendInt(b, r.Line, 10)
	if r.ID != "" {
		b = append(b, `,"id":`...)
		b = jsonstr.Append(b, r.ID)
	}
	b = append(b, `,"error":`...)
	b = jsonstr.Append(b, r.Error)
	b = append(b, `,"input":`...)
	b = jsonstr.Append(b, r.Input)
	b = append(b, "}\n"...)
	w.line = b
	return w.write(2, b)
}

func appendRow(b []byte, r *Row) []byte {
	b = append(b, `{"row":`...)
	b = strconv.AppendInt(b, r.Row, 10)
	b = append(b, `,"line":`...)
	b = strconv.AppendInt(b, r.Line, 10)
	if r.ID != "" {
		b = append(b, `,"id":`...)
		b = jsonstr.Append(b, r.ID)
	}
	b = append(b, `,"target":`...)
	b = jsonstr.Append(b, r.Target)
	if r.Field != "" {
		b = append(b, ',')
		b = jsonstr.Append(b, r.Field)
		b = append(b, ':')
		b = jsonstr.Append(b, r.Input)
	}
	if r.Params != "" {
		b = append(b, `,"params":`...)
		b = append(b, r.Params...)
	}
	if r.DuplicateOf > 0 {
		b = append(b, `,"duplicate_of":`...)
		b = strconv.AppendInt(b, r.DuplicateOf, 10)
	}
	return b
}

// Commit makes everything written so far durable (content files written
// and fsynced with their directories, compressed streams ended, files
// flushed and fsynced) and returns the file sizes reached: CommitStart,
// then CommitEnd. After an error, every later Commit returns it.
func (w *Writer) Commit() (checkpoint.Offsets, error) {
	if err := w.CommitStart(); err != nil {
		return checkpoint.Offsets{}, err
	}
	return w.CommitEnd(<-w.Committed())
}

// Commit is the outcome of a commit begun by CommitStart.
type Commit struct {
	used    [3]bool
	replies [3]sinkReply
}

// CommitStart begins a commit of everything written so far (the group
// commit): content files are synced first, then each file's goroutine
// flushes and fsyncs what it was sent up to here, while the caller goes on
// writing. The outcome arrives on Committed, for CommitEnd. One commit is
// in flight at a time.
func (w *Writer) CommitStart() error {
	if w.err != nil {
		return w.err
	}
	if w.committing {
		panic("results: CommitStart while a commit is in flight")
	}
	if w.content != nil {
		if err := w.content.commit(w); err != nil {
			w.err = err
			return err
		}
	}
	var c Commit
	for i, s := range w.files {
		if s.used {
			s.commitStart()
			s.used = false // until written again
			c.used[i] = true
		}
	}
	w.committing = true
	go func() {
		for i, s := range w.files {
			if c.used[i] {
				c.replies[i] = <-s.out
			}
		}
		w.committed <- c
	}()
	return nil
}

// Committed delivers the outcome of the commit in flight.
func (w *Writer) Committed() <-chan Commit { return w.committed }

// CommitEnd takes the outcome of the commit in flight and returns the
// sizes it made durable.
func (w *Writer) CommitEnd(c Commit) (checkpoint.Offsets, error) {
	w.committing = false
	for i, s := range w.files {
		if !c.used[i] {
			continue
		}
		if r := c.replies[i]; r.err != nil {
			if w.err == nil {
				w.err = r.err
			}
		} else {
			s.last = r
		}
	}
	if w.err != nil {
		return checkpoint.Offsets{}, w.err
	}
	return w.Offsets(), nil
}

// Backlogged returns nil while the files' goroutines (and the content
// files' pool) keep up with what they are sent; else a channel that is
// ready when they may have caught up.
// The caller holds back what it would write meanwhile, so that it never
// waits on them itself.
func (w *Writer) Backlogged() <-chan struct{} {
	if c := w.content; c != nil {
		// Lines of the files written go out first; a full queue of
		// files would make Result wait.
		if c.drain(w, false) == nil && len(c.fifo) >= cap(c.jobs) {
			return w.caughtUp
		}
	}
	for _, s := range w.files {
		if s.queued.Load() > maxQueued {
			return w.caughtUp
		}
	}
	return nil
}

// Offsets returns the file sizes at the last commit's end.
func (w *Writer) Offsets() checkpoint.Offsets {
	r := w.files[0].last
	return checkpoint.Offsets{Results: r.size, Part: r.part, Failed: w.files[1].last.size, Rejects: w.files[2].last.size}
}

// Close ends a commit in flight, commits what was written since, and
// closes the files.
func (w *Writer) Close() error {
	if w.committing {
		w.CommitEnd(<-w.committed)
	}
	first := w.err
	used := w.content != nil && len(w.content.fifo) > 0
	for _, s := range w.files {
		used = used || s != nil && s.used
	}
	if used && w.err == nil {
		if _, err := w.Commit(); err != nil {
			first = err
		}
	}
	if w.content != nil {
		w.content.close()
	}
	for _, s := range w.files {
		if s == nil {
			continue
		}
		if err := s.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ReadSummary reads dir/summary.json into v. Errors: the file's (one
// matching [fs.ErrNotExist] when there is none), or its JSON's.
func ReadSummary(dir string, v any) error {
	data, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: %w", filepath.Join(dir, SummaryFile), err)
	}
	return nil
}

// WriteSummary writes v as dir/summary.json, durably and atomically (temp
// file, sync, rename, directory sync).
func WriteSummary(dir string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(dir, SummaryFile), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// Package results writes the output files of a run: results.jsonl,
// failed.jsonl and rejects.jsonl (one JSON object a line), and summary.json.
//
// The files are written by one goroutine. Commit makes what was written
// durable and returns the file sizes reached, which the checkpoint records;
// on resume, Open cuts each file back to the size the checkpoint vouches
// for, so a line is never written twice.
package results

import (
	"bufio"
	"compress/gzip"
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

type file struct {
	f    *os.File
	buf  *bufio.Writer
	gz   *gzip.Writer // nil until compressed output is written; reused for each member
	open bool         // a gzip member is open: the next commit ends it
	size int64        // bytes written to f (after the last commit)
	cw   countWriter
	used bool // written since the last commit
}

type countWriter struct {
	f *os.File
	n *int64
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	*c.n += int64(n)
	return n, err
}

// Writer owns the three output files. It is not safe for concurrent use.
//
// Its errors stick: after a failed write, flush or fsync, what reached the
// disk is unknown (on Linux a second fsync after a failed one succeeds,
// though the pages it failed to write are lost), so every later call
// returns the first error and nothing written after the last good Commit
// is ever vouched for.
type Writer struct {
	files    [3]*file
	compress bool
	line     []byte
	err      error
}

// Open creates dir if needed and opens the output files for appending, cut
// back to at (the sizes the checkpoint vouches for). It returns an error
// naming the file when one cannot be opened or is shorter than at says.
func Open(dir string, compress bool, at checkpoint.Offsets) (*Writer, error) {
	if err := durable.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	w := &Writer{compress: compress}
	for i, name := range [3]string{ResultsFile, FailedFile, RejectsFile} {
		if compress {
			name += ".gz"
		}
		size := [3]int64{at.Results, at.Failed, at.Rejects}[i]
		f, err := openAt(filepath.Join(dir, name), size)
		if err != nil {
			w.Close()
			return nil, err
		}
		fl := &file{f: f, size: size}
		fl.cw = countWriter{f: f, n: &fl.size}
		fl.buf = bufio.NewWriterSize(fl.cw, 256<<10)
		w.files[i] = fl
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
	fl := w.files[i]
	fl.used = true
	var err error
	if w.compress {
		switch {
		case fl.gz == nil:
			fl.gz, _ = gzip.NewWriterLevel(fl.buf, gzip.BestSpeed)
		case !fl.open:
			fl.gz.Reset(fl.buf) // a new member, without a new writer's buffers
		}
		fl.open = true
		_, err = fl.gz.Write(line)
	} else {
		_, err = fl.buf.Write(line)
	}
	if err != nil {
		w.err = fmt.Errorf("write %s: %w", fl.f.Name(), err)
	}
	return w.err
}

// Result writes a line to results.jsonl.
func (w *Writer) Result(r *Result) error {
	b := appendRow(w.line[:0], &r.Row)
	b = append(b, `,"task_id":`...)
	b = jsonstr.Append(b, r.TaskID)
	status := 0
	for _, p := range r.Pages {
		status = max(status, p.StatusCode)
	}
	b = append(b, `,"status_code":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	switch len(r.Pages) {
	case 0:
		b = append(b, `,"content":null`...)
	case 1:
		b = appendPage(b, &r.Pages[0])
	default:
		b = append(b, `,"pages":[`...)
		for i := range r.Pages {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"status_code":`...)
			b = strconv.AppendInt(b, int64(r.Pages[i].StatusCode), 10)
			b = appendPage(b, &r.Pages[i])
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = append(b, `,"fetched_at":"`...)
	b = r.FetchedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, "\"}\n"...)
	w.line = b
	return w.write(0, b)
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
	return b
}

// Commit makes everything written so far durable (ends the gzip member,
// flushes, fsyncs) and returns the file sizes reached. After an error,
// every later Commit returns it.
func (w *Writer) Commit() (checkpoint.Offsets, error) {
	if w.err != nil {
		return checkpoint.Offsets{}, w.err
	}
	for _, fl := range w.files {
		if !fl.used {
			continue
		}
		if fl.open {
			if err := fl.gz.Close(); err != nil {
				w.err = fmt.Errorf("write %s: %w", fl.f.Name(), err)
				return checkpoint.Offsets{}, w.err
			}
			fl.open = false
		}
		if err := fl.buf.Flush(); err != nil {
			w.err = fmt.Errorf("write %s: %w", fl.f.Name(), err)
			return checkpoint.Offsets{}, w.err
		}
		if err := durable.Sync(fl.f); err != nil {
			w.err = fmt.Errorf("sync %s: %w", fl.f.Name(), err)
			return checkpoint.Offsets{}, w.err
		}
		fl.used = false
	}
	return w.Offsets(), nil
}

// Offsets returns the file sizes at the last Commit.
func (w *Writer) Offsets() checkpoint.Offsets {
	return checkpoint.Offsets{Results: w.files[0].size, Failed: w.files[1].size, Rejects: w.files[2].size}
}

// Close commits and closes the files.
func (w *Writer) Close() error {
	first := w.err
	for _, fl := range w.files {
		if fl == nil {
			continue
		}
		if fl.used && w.err == nil {
			if _, err := w.Commit(); err != nil && first == nil {
				first = err
			}
		}
		if err := fl.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
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

// Package records reads the input of a run (CSV, JSONL or TXT, plain or
// gzip-compressed, from a file or stdin) as a stream of validated
// [Record]s. Each row is checked against its target's entry in decodo's
// target table: the input field it takes (url, query, prompt, product_id
// or none), the parameters it takes and their values. A bad row is
// reported as a [*RowError] and reading goes on; only an unreadable input
// or a CSV header it cannot use stops it. A line of decodo-batch's own
// output (results, failed, rejects) is a valid JSONL line: it reads back as
// the row it was, with its target and parameters.
//
// Reading streams: memory does not grow with the input, and a line or
// record longer than [MaxRecordLen] is a bad row, never a reason to buffer
// without bound.
package records

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/decodo-batch/decodo-batch/decodo"
)

// MaxRecordLen is the longest line (TXT, JSONL) or record (CSV) in bytes,
// line ends excluded. A longer one is a [*RowError].
const MaxRecordLen = 1 << 20

const (
	maxInput = 4 << 10  // RowError.Input is cut to this many bytes
	bufSize  = 64 << 10 // read buffer; lines longer than this are assembled
)

// Errors that stop reading, for errors.Is. They come wrapped with the file
// name, and the line when there is one.
var (
	// ErrFormat: the format is neither given nor told by the file name, or
	// is not csv, jsonl or txt.
	ErrFormat = errors.New("unknown input format")
	// ErrUnknownColumn: a CSV header names a column that is not url,
	// query, prompt, product_id, target, id, a parameter some target takes
	// or an allowed one. The message names it and the nearest known name.
	// ErrUnknownParam: a default parameter (ParseParam) that no target
	// takes, or that is not a parameter at all (target, the input fields,
	// id). The message names it, and the nearest known name.
	ErrUnknownParam  = errors.New("unknown parameter")
	ErrUnknownColumn = errors.New("unknown column")
	// ErrHeader: a CSV header that repeats a column, has no input field
	// (url, query, prompt, product_id) and no target column where rows
	// need one, or cannot be parsed.
	ErrHeader = errors.New("bad CSV header")
	// ErrEncoding: the input is UTF-16, or its CSV header is not UTF-8.
	ErrEncoding = errors.New("input is not UTF-8")
	// ErrOptions: Options that no row could satisfy (an unknown default
	// target, a bad default parameter or allowed name, a txt input whose
	// target takes no url or not the default parameters).
	ErrOptions = errors.New("bad reader options")
)

// Record is one valid input row.
type Record struct {
	Row    int64  // 1-based index of the data record in the input (header, blank and comment lines excluded)
	Line   int64  // 1-based line of the input file where the record starts
	ID     string // the user's own key ("id" column or key), echoed to the output; may be empty
	Target string // the row's target, else Options.DefaultTarget, else "universal" for a url row; never empty, always in decodo's table
	// URL, Query, Prompt and ProductID are the input fields: the one the
	// target takes is set, the others are empty; all are empty for a
	// target that takes none (universal_ecommerce). See [Record.Input].
	URL, Query, Prompt, ProductID string
	Params                        Params // every other task parameter, merged over Options.Defaults (the row wins)
}

// Input returns the input field the record fills, and its value; for a
// target that takes none, [decodo.InputNone] and "".
func (r *Record) Input() (decodo.Input, string) {
	switch {
	case r.URL != "":
		return decodo.InputURL, r.URL
	case r.Query != "":
		return decodo.InputQuery, r.Query
	case r.Prompt != "":
		return decodo.InputPrompt, r.Prompt
	case r.ProductID != "":
		return decodo.InputProductID, r.ProductID
	}
	return decodo.InputNone, ""
}

// RowError is a bad input row: it goes to rejects.jsonl and the run goes
// on. Row and Line are as in [Record]; a bad row takes a row number too.
type RowError struct {
	Row, Line int64
	ID        string // the row's id, when it was read before the fault; may be empty
	Input     string // the raw row text, cut to 4 KiB
	Reason    string // one line
}

// Error returns the line and the reason, like
// `line 12: url is not http(s): "ftp://x"`.
func (e *RowError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Options shape how rows are read.
type Options struct {
	Format        string // "csv", "jsonl" or "txt"; "" means from the file name ([FormatFromName]), else from the content ([Detect])
	DefaultTarget string // the target of a row that names none (--target)
	Defaults      Params // parameters of every row (--param); a row's own value wins
	// AllowParams are parameter names that pass unchecked for every
	// target (--allow-param), for parameters newer than decodo's table: a
	// JSONL value as its JSON text, a CSV cell as JSON when it parses,
	// else as a string. passtrough is passthrough.
	AllowParams []string
}

// Reader reads records from one input. It is not safe for concurrent use.
type Reader struct {
	name   string
	opt    Options
	format string
	br     *bufio.Reader
	gz     *gzip.Reader
	file   *os.File // closed by Close; nil for a reader handed in

	line int64 // physical lines consumed
	row  int64 // data records seen, good and bad
	err  error // sticky: a fatal error, or io.EOF

	space      *space   // the parameter names rows may have
	defaults   paramSet // Options.Defaults, checked
	defParams  Params   // Params of a row that sets no parameter
	intern     map[string]Params
	pbuf       []byte
	v          row
	lastTarget string
	lastInfo   *targetInfo // the table's entry of lastTarget
	lbuf       []byte      // assembles lines longer than the read buffer
	csv        *csvInput
	jmap       map[string]json.RawMessage // a JSONL line's keys and values, reused
	jkeys      []string
	pmap       map[string]json.RawMessage // the "params" of an output line (see decodeOutput)
	pkeys      []string
}

// Open opens the input at path for reading; "-" is stdin. The format is
// opt.Format, else the name's, else the content's (see [NewReader]). A
// gzip file (by its ".gz" name or its magic bytes) is decompressed.
// Errors name the file.
func Open(path string, opt Options) (*Reader, error) {
	if path == "-" {
		return NewReader(os.Stdin, "stdin", opt)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *fs.PathError names the file
	}
	r, err := NewReader(f, path, opt)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.file = f
	return r, nil
}

// NewReader returns a Reader of src; name is used to tell the format when
// opt.Format is "" and in errors. When neither tells it, the content does
// ([Detect]), and an input with no line to tell it by is [ErrEmpty]. A
// gzip stream is decompressed. It returns an error wrapping [ErrFormat] or
// [ErrOptions] for unusable options, or one from reading the start of src.
func NewReader(src io.Reader, name string, opt Options) (*Reader, error) {
	format := opt.Format
	if format == "" {
		format, _ = FormatFromName(name) // else "": told by the content below
	}
	r := &Reader{name: name, opt: opt, format: format, space: known, intern: make(map[string]Params)}
	if format != "" {
		if err := r.checkOptions(); err != nil {
			return nil, err
		}
	}
	if err := r.start(src); err != nil {
		return nil, err
	}
	if r.format == "" {
		head, err := r.br.Peek(sniffLen)
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if r.format = Detect(head); r.format == "" {
			return nil, fmt.Errorf("%s: %w: it is empty, or holds only blank and comment lines", name, ErrEmpty)
		}
		if err := r.checkOptions(); err != nil {
			return nil, err
		}
	}
	switch r.format {
	case "csv":
		r.csv = newCSVInput(r.br)
	case "jsonl":
		r.jmap = make(map[string]json.RawMessage)
	}
	return r, nil
}

// checkOptions checks the options against the format, which is known.
func (r *Reader) checkOptions() error {
	name, opt, format := r.name, r.opt, r.format
	switch format {
	case "csv", "jsonl", "txt":
	default:
		return fmt.Errorf("%s: %w %q (want csv, jsonl or txt)", name, ErrFormat, format)
	}
	if len(opt.AllowParams) > 0 {
		sp, err := newSpace(opt.AllowParams)
		if err != nil {
			return fmt.Errorf("%s: %w: %v", name, ErrOptions, err)
		}
		r.space = sp
	}
	r.v.params = newParamSet(r.space)
	var err error
	if r.defaults, err = defaultsSet(opt.Defaults, r.space); err != nil {
		return fmt.Errorf("%s: %w: %v", name, ErrOptions, err)
	}
	r.defParams = Params(appendParams(nil, r.space.defs, &paramSet{}, &r.defaults))
	if t := opt.DefaultTarget; t != "" {
		if _, reason := r.space.target(t); reason != "" {
			return fmt.Errorf("%s: %w: default %s", name, ErrOptions, reason)
		}
	}
	if format == "txt" {
		// Every row would be rejected: say it once.
		t := opt.DefaultTarget
		if t == "" {
			t = "universal"
		}
		ti, _ := r.space.target(t)
		if ti.t.Input != decodo.InputURL {
			return fmt.Errorf("%s: %w: a txt input holds urls, but target %s takes %s", name, ErrOptions, t, article(ti.t.Input))
		}
		if i, ok := r.defaults.set.firstNotIn(&ti.takes); ok {
			return fmt.Errorf("%s: %w: the rows of a txt input go to target %s, which does not take the default parameter %s", name, ErrOptions, t, r.space.defs[i].name)
		}
	}
	return nil
}

// start sets up reading src: gzip, a byte order mark.
func (r *Reader) start(src io.Reader) error {
	name := r.name
	r.br = bufio.NewReaderSize(src, bufSize)
	magic, err := r.br.Peek(2)
	if err != nil && err != io.EOF {
		return fmt.Errorf("%s: %w", name, err)
	}
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) || hasGzipExt(name) {
		r.gz, err = gzip.NewReader(r.br)
		if err == io.EOF { // an empty file: no rows
			r.br = bufio.NewReaderSize(strings.NewReader(""), 16)
		} else if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		} else {
			r.br = bufio.NewReaderSize(r.gz, bufSize)
		}
	}
	head, err := r.br.Peek(3)
	if err != nil && err != io.EOF {
		return fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case bytes.HasPrefix(head, []byte("\xef\xbb\xbf")):
		r.br.Discard(3)
	case bytes.HasPrefix(head, []byte("\xff\xfe")), bytes.HasPrefix(head, []byte("\xfe\xff")):
		return fmt.Errorf("%s: %w: it starts with a UTF-16 byte order mark; save it as UTF-8", name, ErrEncoding)
	}
	return nil
}

// Next returns the next valid record. For a bad row it returns a
// [*RowError]: call Next again for the rows after it. At the end of the
// input it returns io.EOF. Any other error is fatal (the input cannot be
// read, or a CSV header names an unknown column) and is returned again by
// every later call; it names the file, and the line when there is one.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	var rec Record
	var err error
	switch r.format {
	case "csv":
		rec, err = r.nextCSV()
	case "jsonl":
		rec, err = r.nextJSONL()
	default:
		rec, err = r.nextTXT()
	}
	if err != nil {
		if _, ok := err.(*RowError); !ok {
			r.err = err
		}
	}
	return rec, err
}

// Close releases the input. It closes the file that [Open] opened, never a
// reader handed to [NewReader].
func (r *Reader) Close() error {
	if r.err == nil {
		r.err = fmt.Errorf("%s: reader is closed", r.name)
	}
	var err error
	if r.gz != nil {
		err = r.gz.Close()
	}
	if r.file != nil {
		if cerr := r.file.Close(); err == nil {
			err = cerr
		}
		r.file = nil
	}
	return err
}

// FormatFromName tells the format of an input from its file name, after
// any ".gz": ".csv" is csv, ".jsonl" or ".ndjson" is jsonl, ".txt" is txt.
// Otherwise it returns an error wrapping [ErrFormat].
func FormatFromName(name string) (string, error) {
	base := name
	if hasGzipExt(base) {
		base = base[:len(base)-3]
	}
	switch strings.ToLower(filepath.Ext(base)) {
	case ".csv":
		return "csv", nil
	case ".jsonl", ".ndjson":
		return "jsonl", nil
	case ".txt":
		return "txt", nil
	}
	if name == "-" || name == "stdin" {
		return "", fmt.Errorf("stdin: %w: the format cannot be told from a name", ErrFormat)
	}
	return "", fmt.Errorf("%s: %w: cannot tell it from the name", name, ErrFormat)
}

func hasGzipExt(name string) bool {
	return len(name) > 3 && strings.EqualFold(name[len(name)-3:], ".gz")
}

// fatal wraps a read error with the file name and the line being read.
func (r *Reader) fatal(err error) error {
	return fmt.Errorf("%s: line %d: %w", r.name, r.line+1, err)
}

// rowError makes the RowError of the current row, whose id is id.
func (r *Reader) rowError(line int64, id string, raw []byte, reason string) *RowError {
	return &RowError{Row: r.row, Line: line, ID: id, Input: capInput(raw), Reason: reason}
}

// readLine returns the next physical line with its line end, valid until
// the next read. A line longer than MaxRecordLen is consumed whole but
// comes back cut to its first bytes, with tooLong set. It returns io.EOF
// after the last line.
func (r *Reader) readLine() (line []byte, tooLong bool, err error) {
	line, err = r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.lbuf = append(r.lbuf[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = r.br.ReadSlice('\n')
			if !tooLong {
				r.lbuf = append(r.lbuf, line...)
				if len(r.lbuf) > MaxRecordLen+2 {
					tooLong = true
					r.lbuf = r.lbuf[:maxInput]
				}
			}
		}
		line = r.lbuf
	}
	if len(line) > 0 {
		r.line++
		if err == io.EOF {
			err = nil
		}
	}
	if err != nil {
		if err == io.EOF {
			return nil, false, io.EOF
		}
		return nil, false, r.fatal(err)
	}
	if !tooLong && len(line) > MaxRecordLen && len(trimEOL(line)) > MaxRecordLen {
		tooLong = true
		line = line[:maxInput]
	}
	return line, tooLong, nil
}

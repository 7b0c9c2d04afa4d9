package records

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/decodo-batch/decodo-batch/decodo"
)

// A CSV input is read by one encoding/csv.Reader from the header to the
// end: it splits and unquotes the fields, tells the line a record starts
// on (FieldPos, ParseError.StartLine) and where it ends (InputOffset), and
// goes on after a bad record. Under it, a meter keeps the raw text of the
// current record, for RowError.Input, and cuts off a record longer than
// MaxRecordLen, which encoding/csv would otherwise gather whole.
//
// gocsv is not used here. Decoding each record into a struct with its
// Unmarshaller sets every cell through reflection, with six allocations a
// row against one: that alone costs more than this whole reader does, and
// it took the reading of a run below 400,000 rows/s. It also hides the
// record it read, so that a row with the wrong number of fields could not
// say how many it has. Columns are mapped once, from the header, instead.

// column is what a CSV column holds.
type column struct {
	kind  colKind
	in    decodo.Input // for colInput
	param int          // index in the reader's space, for colParam
}

type colKind uint8

const (
	colUnnamed colKind = iota // a column with an empty header: its cells must be empty
	colInput                  // url, query, prompt or product_id
	colTarget
	colID
	colParam
)

type csvInput struct {
	cr      *csv.Reader
	m       meter
	cols    []column // nil until the header is read
	idCol   int      // the index of the id column, or -1
	lineAdj int      // lines encoding/csv counted twice, one per cut (see skipCut)
}

func newCSVInput(src *bufio.Reader) *csvInput {
	c := &csvInput{m: meter{src: src, max: MaxRecordLen}}
	c.cr = csv.NewReader(&c.m)
	c.cr.ReuseRecord = true
	return c
}

// read reads the next record; start and end are its offsets in the input,
// blank lines before it included.
func (c *csvInput) read() (fields []string, start, end int64, err error) {
	start = c.m.inputOffset(c.cr.InputOffset())
	c.m.begin(start)
	fields, err = c.cr.Read()
	return fields, start, c.m.inputOffset(c.cr.InputOffset()), err
}

// line returns the input line encoding/csv gives as l.
func (c *csvInput) line(l int) int64 { return int64(l - c.lineAdj) }

// nextCSV reads the header first, then one record.
func (r *Reader) nextCSV() (Record, error) {
	c := r.csv
	if c.cols == nil {
		if err := r.readHeader(); err != nil {
			return Record{}, err
		}
	}
	fields, start, end, err := c.read()
	switch {
	case c.m.cut:
		return Record{}, r.skipCut(start, err)
	case err != nil:
		return Record{}, r.csvError(err, len(fields), start, end)
	}
	r.row++
	l, _ := c.cr.FieldPos(0)
	line := c.line(l)
	if c.tooLong(start, end) {
		return Record{}, r.csvRowError(line, "", start, end, tooLongReason("record"))
	}
	v := &r.v
	v.reset()
	if id := c.idCol; id >= 0 && id < len(fields) {
		v.id = strings.TrimSpace(fields[id])
		if !utf8.ValidString(v.id) {
			v.id = ""
		}
	}
	for i, f := range fields {
		if !utf8.ValidString(f) {
			return Record{}, r.csvRowError(line, v.id, start, end, notUTF8)
		}
		f = strings.TrimSpace(f)
		if f == "" {
			continue // an empty cell is "not set"
		}
		switch col := c.cols[i]; col.kind {
		case colInput:
			v.setInput(col.in, f)
		case colTarget:
			v.target = f
		case colID: // read above
		case colParam:
			v.params.put(col.param, slot{s: f, form: formCell})
		default:
			return Record{}, r.csvRowError(line, v.id, start, end, "a value in column "+strconv.Itoa(i+1)+", which has no name in the header")
		}
	}
	rec := Record{Row: r.row, Line: line}
	if reason := r.finish(v, &rec); reason != "" {
		return Record{}, r.csvRowError(line, v.id, start, end, reason)
	}
	return rec, nil
}

// tooLong reports whether the record from start to end is longer than
// the limit, blank lines before it and its line end left out.
func (c *csvInput) tooLong(start, end int64) bool {
	return end-start > c.m.max && int64(len(trimEOL(c.m.raw(start, end)))) > c.m.max
}

// csvError returns what a failed read of a record is: the end, a bad row
// for a *csv.ParseError (n is the number of fields read), or fatal.
func (r *Reader) csvError(err error, n int, start, end int64) error {
	c := r.csv
	var pe *csv.ParseError
	switch {
	case err == io.EOF:
		return io.EOF
	case !errors.As(err, &pe):
		return r.csvFatal(err)
	}
	r.row++
	line := c.line(pe.StartLine)
	reason := pe.Err.Error()
	switch {
	case c.tooLong(start, end):
		reason = tooLongReason("record")
	case errors.Is(pe.Err, csv.ErrFieldCount):
		reason = fmt.Sprintf("row has %d fields, the header has %d", n, len(c.cols))
	}
	return r.csvRowError(line, "", start, end, reason)
}

func (r *Reader) csvRowError(line int64, id string, start, end int64, reason string) *RowError {
	return &RowError{Row: r.row, Line: line, ID: id, Input: capInput(r.csv.m.raw(start, end)), Reason: reason}
}

// csvFatal wraps a read error with the file name and the line being read.
func (r *Reader) csvFatal(err error) error {
	return fmt.Errorf("%s: line %d: %w", r.name, r.csv.line(r.csv.m.lineNum+1), err)
}

// readHeader reads the header row and maps its columns. A column that no
// target takes, a repeated one, or a header with no input field and no
// target column where the rows need one is fatal. An input without a
// header is empty: io.EOF.
func (r *Reader) readHeader() error {
	c := r.csv
	names, _, _, err := c.read()
	if err == io.EOF {
		return io.EOF
	}
	var pe *csv.ParseError
	switch {
	case !errors.As(err, &pe) && err != nil:
		return r.csvFatal(err)
	case c.m.cut:
		return fmt.Errorf("%s: line %d: %w: longer than %d MiB", r.name, pe.StartLine, ErrHeader, MaxRecordLen>>20)
	case pe != nil:
		return fmt.Errorf("%s: line %d: %w: %v", r.name, pe.StartLine, ErrHeader, pe.Err)
	}
	line, _ := c.cr.FieldPos(0)
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s: line %d: %w: "+format, append([]any{r.name, line, ErrHeader}, a...)...)
	}
	cols := make([]column, len(names))
	seen := make(map[string]bool, len(names))
	idCol, hasInput, hasTarget := -1, false, false
	for i, n := range names {
		if !utf8.ValidString(n) {
			return fmt.Errorf("%s: line %d: %w", r.name, line, ErrEncoding)
		}
		n = strings.TrimSpace(n)
		lower := strings.ToLower(n)
		var canon string
		if in, ok := inputFields[lower]; ok {
			cols[i], canon, hasInput = column{kind: colInput, in: in}, lower, true
		} else if lower == keyTarget {
			cols[i], canon, hasTarget = column{kind: colTarget}, lower, true
		} else if lower == keyID {
			cols[i], canon, idCol = column{kind: colID}, lower, i
		} else if p, ok := r.columnParam(n, lower); ok {
			cols[i], canon = column{kind: colParam, param: p}, r.space.defs[p].name
		} else if n == "" {
			cols[i] = column{kind: colUnnamed}
			continue
		} else {
			hint := didYouMean(decodo.Nearest(lower, r.space.names)) + ": no target takes it"
			if strings.Contains(n, "://") || strings.Contains(n, ".") {
				hint = " (is the header row missing?)"
			}
			return fmt.Errorf("%s: line %d: %w %q in the header%s", r.name, line, ErrUnknownColumn, capString(names[i], 120), hint)
		}
		if seen[canon] {
			return fail("column %q appears twice", canon)
		}
		seen[canon] = true
	}
	if !hasInput && !hasTarget {
		// Every row would be rejected, unless the default target takes no
		// input field.
		ti, _ := r.space.target(r.opt.DefaultTarget)
		if ti == nil || ti.t.Input != decodo.InputNone {
			return fail("it has no url, query, prompt or product_id column")
		}
	}
	c.cols, c.idCol = cols, idCol
	return nil
}

// columnParam returns the index of the parameter a column named n (lower
// in lower case) holds: its exact name first, for an allowed name in
// upper case, then its name in lower case.
func (r *Reader) columnParam(n, lower string) (int, bool) {
	if i, ok := r.space.index[n]; ok {
		return i, true
	}
	i, ok := r.space.index[lower]
	return i, ok
}

// skipCut reads past the rest of a record the meter cut off (err is what
// encoding/csv made of the cut) and returns the RowError for it, or a
// fatal error.
//
// At the cut the meter hands encoding/csv the bytes x"x and then an error.
// A quote there is wrong wherever it lands, and encoding/csv says which
// way: ErrQuote if it was inside a quoted field, ErrBareQuote if inside an
// unquoted one. The meter cuts only where the rest of the record, read as
// a new record (after a quote, for a quoted field), is split just as the
// whole would have been and ends where it would have ended (see canCut).
// That new record is skipped, and cut again if it too is long. Each cut
// makes encoding/csv count the line of the cut twice, which lineAdj takes
// back. An error before the injected quote is the record's own:
// encoding/csv ends such a record at the end of its line, and so does
// skipCut.
func (r *Reader) skipCut(start int64, err error) error {
	c := r.csv
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return r.csvFatal(err)
	}
	r.row++
	re := &RowError{Row: r.row, Line: c.line(pe.StartLine), Input: capInput(c.m.raw(start, c.m.off)), Reason: tooLongReason("record")}
	for c.m.cut {
		if pe.Column != c.m.cutCol || pe.Line != c.m.cutLine {
			if err := c.m.skipLine(); err != nil {
				return r.csvFatal(err)
			}
			break
		}
		switch {
		case errors.Is(pe.Err, csv.ErrQuote):
			c.m.resume(`"`)
		case errors.Is(pe.Err, csv.ErrBareQuote):
			c.m.resume("")
		default:
			return r.csvFatal(fmt.Errorf("unexpected %w after a cut", pe))
		}
		c.lineAdj++
		if _, _, _, err = c.read(); err != nil && err != io.EOF && !errors.As(err, &pe) {
			return r.csvFatal(err)
		}
	}
	return re
}

// errCut is what the meter returns to encoding/csv at a cut.
var errCut = errors.New("record cut off")

// maxCutSearch bounds how far past the limit the meter looks for a place
// to cut, in a record of nothing but quotes and line ends.
const maxCutSearch = 64 << 10

// meter is the reader under encoding/csv. It counts and keeps what it
// hands over, and hands over no more than MaxRecordLen bytes (and a line
// end) of one record: at that limit it cuts the record off (see skipCut).
// Offsets are of the input, the BOM excluded, unless they are said to be
// encoding/csv's, which count the bytes the meter makes up at a cut and
// not those it skips.
type meter struct {
	src    *bufio.Reader
	off    int64 // input bytes handed over or skipped
	csvOff int64 // bytes handed over, made-up ones included
	last   byte  // the last input byte handed over

	// The line encoding/csv is on: its encoding/csv offset, and how many
	// lines encoding/csv has read before it.
	lineStart int64
	lineNum   int

	max          int64 // MaxRecordLen; less in tests
	start, limit int64 // the current record's start, and where it is cut
	hist         []byte
	histOff      int64 // hist holds the input from histOff to off

	inject  []byte // made-up bytes to hand over next
	cut     bool   // the current record was cut off; errCut after inject
	cutCol  int    // the column and line encoding/csv gives the injected quote
	cutLine int
	err     error // sticky: a read error of the input
}

// inputOffset returns the input offset of the encoding/csv offset csvOff,
// one encoding/csv has read up to: made-up bytes and skipped ones come
// only at a cut, after which encoding/csv has read all it was handed.
func (m *meter) inputOffset(csvOff int64) int64 { return csvOff + m.off - m.csvOff }

// begin starts a record at start, which encoding/csv has not yet read
// past; hist is dropped up to there once enough of it has gathered.
func (m *meter) begin(start int64) {
	m.start, m.limit = start, start+m.max+2
	if d := start - m.histOff; d > 32<<10 {
		m.hist = append(m.hist[:0], m.hist[d:]...)
		m.histOff = start
	}
}

// raw returns the input from start to end, blank lines at the start left
// out, as far as the meter kept it.
func (m *meter) raw(start, end int64) []byte {
	b := m.hist[start-m.histOff : end-m.histOff]
	for {
		switch {
		case bytes.HasPrefix(b, []byte("\n")):
			b = b[1:]
		case bytes.HasPrefix(b, []byte("\r\n")):
			b = b[2:]
		default:
			return b
		}
	}
}

func (m *meter) Read(p []byte) (int, error) {
	if len(m.inject) > 0 {
		n := copy(p, m.inject)
		m.inject = m.inject[n:]
		m.csvOff += int64(n)
		if len(m.inject) == 0 && m.cut {
			return n, errCut
		}
		return n, nil
	}
	if m.err != nil {
		return 0, m.err
	}
	if m.cut {
		return 0, errCut
	}
	if m.off >= m.limit {
		// Blank lines before a record are not part of it.
		if s := m.off - int64(len(m.raw(m.start, m.off))); s > m.start {
			m.start, m.limit = s, s+m.max+2
		}
	}
	if m.off < m.limit {
		if rest := m.limit - m.off; int64(len(p)) > rest {
			p = p[:rest]
		}
		n, err := m.src.Read(p)
		m.took(p[:n])
		if err != nil && err != io.EOF {
			m.err = err
		}
		return n, err
	}
	// At the limit: cut at the first place from here on where it can be
	// done (see canCut).
	look, err := m.src.Peek(min(len(p), m.src.Size()))
	if len(look) == 0 {
		if err == io.EOF {
			return 0, io.EOF // the record ends with the input
		}
		m.err = err
		return 0, err
	}
	prev := m.last
	for i, c := range look {
		if canCut(prev, c) {
			if i > 0 {
				n := copy(p, look[:i])
				m.src.Discard(n)
				m.took(p[:n])
				return n, nil
			}
			m.cut = true
			m.inject = append(m.inject[:0], `x"x`...)
			m.cutCol = int(m.csvOff-m.lineStart) + 2
			m.cutLine = m.lineNum + 1
			return m.Read(p)
		}
		prev = c
	}
	if m.off-m.limit > maxCutSearch {
		m.err = fmt.Errorf("a record runs on for more than %d MiB with no place to cut it off", MaxRecordLen>>20)
		return 0, m.err
	}
	n := copy(p, look)
	m.src.Discard(n)
	m.took(p[:n])
	return n, nil
}

// canCut reports whether a record can be cut between the bytes prev and
// next such that the rest, read as a new record (after a quote if the cut
// is inside a quoted field), is split as the whole would have been:
//   - not after a quote, which may end a quoted field or be half of "";
//   - anywhere after a line end, which a record can only be past inside a
//     quoted field, where a quote starting the rest reads the same;
//   - not before a line end, which would end the rest of an unquoted field
//     as a blank line, nor before a quote, which would start a quoted field
//     in the rest where the whole has a bare quote, unless after a comma,
//     where the whole starts a quoted field too.
func canCut(prev, next byte) bool {
	switch {
	case prev == '"':
		return false
	case prev == '\n':
		return true
	case next == '\n' || next == '\r':
		return false
	case next == '"':
		return prev == ','
	}
	return true
}

// took records the input bytes b as handed over.
func (m *meter) took(b []byte) {
	if len(b) == 0 {
		return
	}
	if n := bytes.Count(b, []byte("\n")); n > 0 {
		m.lineNum += n
		m.lineStart = m.csvOff + int64(bytes.LastIndexByte(b, '\n')) + 1
	}
	m.off += int64(len(b))
	m.csvOff += int64(len(b))
	m.last = b[len(b)-1]
	m.hist = append(m.hist, b...)
}

// resume goes on after a cut with prefix, then the input from the cut, as
// a new line of encoding/csv.
func (m *meter) resume(prefix string) {
	m.cut = false
	m.inject = append(m.inject[:0], prefix...)
	m.lineStart = m.csvOff
	m.lineNum++
}

// skipLine goes on after a cut with the next line of the input.
func (m *meter) skipLine() error {
	m.cut = false
	for {
		b, err := m.src.ReadSlice('\n')
		m.off += int64(len(b))
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && err != io.EOF {
			m.err = err
			return err
		}
		break
	}
	m.hist, m.histOff = m.hist[:0], m.off
	m.lineStart = m.csvOff
	m.lineNum++
	m.last = '\n'
	return nil
}

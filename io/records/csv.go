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

	"github.com/gocarina/gocsv"
)

// The CSV input is read in two steps. The framing (where a record starts
// and ends, across quoted line breaks) is done here, line by line, so that
// a record's line number and raw text are known and one longer than
// MaxRecordLen is skipped without being held in memory. Each record's bytes
// are then handed to an encoding/csv.Reader, driven through gocsv's
// SimpleDecoder, which splits and unquotes the fields.
//
// gocsv's struct unmarshalling (NewUnmarshaller, Read) was measured at
// about 4.5 times the cost of the plain row decode and 7 allocations a row
// (BenchmarkCSVGocsvUnmarshaller); columns are instead mapped to fields
// once, from the header.

// column is what a CSV column holds.
type column struct {
	kind  colKind
	param int // index in specs, for colParam
}

type colKind uint8

const (
	colUnnamed colKind = iota // a column with an empty header: its cells must be empty
	colURL
	colQuery
	colTarget
	colID
	colParam
)

type csvInput struct {
	feed    feeder
	cr      *csv.Reader
	dec     gocsv.SimpleDecoder
	cols    []column // nil until the header is read
	rec     []byte   // assembles records that span reads
	resyncs int      // records encoding/csv framed unlike we did; 0 unless there is a bug
}

func newCSVInput() *csvInput {
	c := &csvInput{}
	c.reset(0)
	return c
}

// reset starts a new encoding/csv reader, dropping anything the old one
// buffered.
func (c *csvInput) reset(fields int) {
	c.feed.b = nil
	c.cr = csv.NewReader(&c.feed)
	c.cr.ReuseRecord = true
	c.cr.FieldsPerRecord = fields // 0: set from the header
	c.dec = gocsv.NewSimpleDecoderFromCSVReader(c.cr)
}

// feeder hands encoding/csv exactly one record at a time.
type feeder struct{ b []byte }

func (f *feeder) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// decode splits the raw record b into fields. A *csv.ParseError is a bad
// row (a bare or missing quote, a wrong number of fields).
func (c *csvInput) decode(b []byte) ([]string, error) {
	start := c.cr.InputOffset()
	c.feed.b = b
	fields, err := c.dec.GetCSVRow()
	if c.cr.InputOffset()-start != int64(len(b)) || len(c.feed.b) != 0 {
		// encoding/csv saw the record end elsewhere than csvScan did: it
		// would carry the rest into the next row. Start it afresh.
		c.resyncs++
		c.reset(len(c.cols))
		return nil, errors.New("malformed CSV record")
	}
	return fields, err
}

// nextCSV reads the header first, then one record.
func (r *Reader) nextCSV() (Record, error) {
	c := r.csv
	if c.cols == nil {
		if err := r.readHeader(); err != nil {
			return Record{}, err
		}
	}
	b, line, tooLong, err := r.csvRecord()
	if err != nil {
		return Record{}, err
	}
	r.row++
	if tooLong {
		return Record{}, r.rowError(line, b, tooLongReason("record"))
	}
	if !utf8.Valid(b) {
		return Record{}, r.rowError(line, b, notUTF8)
	}
	fields, err := c.decode(b)
	if err != nil {
		var pe *csv.ParseError
		switch {
		case errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount):
			return Record{}, r.rowError(line, b, fmt.Sprintf("row has %d fields, the header has %d", len(fields), len(c.cols)))
		case errors.As(err, &pe):
			return Record{}, r.rowError(line, b, pe.Err.Error())
		}
		return Record{}, r.rowError(line, b, err.Error())
	}
	v := &r.v
	v.reset()
	for i, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" {
			continue // an empty cell is "not set"
		}
		switch col := c.cols[i]; col.kind {
		case colURL:
			v.url, v.hasURL = f, true
		case colQuery:
			v.query, v.hasQuery = f, true
		case colTarget:
			v.target = f
		case colID:
			v.id = f
		case colParam:
			s, reason := parseCell(&specs[col.param], f)
			if reason != "" {
				return Record{}, r.rowError(line, b, reason)
			}
			v.params.put(col.param, s)
		default:
			return Record{}, r.rowError(line, b, "a value in column "+strconv.Itoa(i+1)+", which has no name in the header")
		}
	}
	rec := Record{Row: r.row, Line: line}
	if reason := r.finish(v, &rec); reason != "" {
		return Record{}, r.rowError(line, b, reason)
	}
	return rec, nil
}

// readHeader reads the header row and maps its columns. An unknown or
// repeated column, or one naming neither url nor query, is fatal. An
// input without a header is empty: io.EOF.
func (r *Reader) readHeader() error {
	c := r.csv
	b, line, tooLong, err := r.csvRecord()
	if err != nil {
		return err
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s: line %d: %w: "+format, append([]any{r.name, line, ErrHeader}, a...)...)
	}
	if tooLong {
		return fail("longer than %d MiB", MaxRecordLen>>20)
	}
	if !utf8.Valid(b) {
		return fmt.Errorf("%s: line %d: %w", r.name, line, ErrEncoding)
	}
	names, err := c.decode(b)
	if err != nil {
		return fail("%v", err)
	}
	cols := make([]column, len(names))
	seen := make(map[string]bool, len(names))
	hasURL, hasQuery := false, false
	for i, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		switch n {
		case "":
			cols[i] = column{kind: colUnnamed}
			continue
		case "url":
			cols[i], hasURL = column{kind: colURL}, true
		case "query":
			cols[i], hasQuery = column{kind: colQuery}, true
		case "target":
			cols[i] = column{kind: colTarget}
		case "id":
			cols[i] = column{kind: colID}
		default:
			p, ok := specIndex[n]
			if !ok {
				hint := ""
				if strings.Contains(n, "://") || strings.Contains(n, ".") {
					hint = " (is the header row missing?)"
				}
				return fmt.Errorf("%s: line %d: %w %q in the header%s; known columns: url, query, target, id, %s",
					r.name, line, ErrUnknownColumn, capString(names[i], 120), hint, paramNames())
			}
			cols[i] = column{kind: colParam, param: p}
		}
		if seen[n] {
			return fail("column %q appears twice", n)
		}
		seen[n] = true
	}
	if !hasURL && !hasQuery {
		return fail("it has neither a url nor a query column")
	}
	c.cols = cols
	c.cr.FieldsPerRecord = len(cols)
	return nil
}

// States of csvScan, which follows encoding/csv's reading of quotes (with
// LazyQuotes off) just far enough to find where a record ends.
const (
	sFieldStart  = iota // at the start of a field
	sUnquoted           // in a field that did not start with a quote
	sQuoted             // in a quoted field
	sQuoteSeen          // just after a quote in a quoted field: its end, or half of ""
	sQuoteSeenCR        // a \r after that quote: fine only before the \n
	sBad                // encoding/csv will fail this record at the end of the line
	sEnd                // the record ended at a \n
)

// csvScan advances the state st over b, a line or the part of one.
func csvScan(st int, b []byte) int {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch st {
		case sFieldStart:
			switch c {
			case '"':
				st = sQuoted
			case ',':
			case '\n':
				st = sEnd
			default:
				st = sUnquoted
			}
		case sUnquoted:
			switch c {
			case ',':
				st = sFieldStart
			case '"':
				st = sBad
			case '\n':
				st = sEnd
			}
		case sQuoted:
			j := bytes.IndexByte(b[i:], '"')
			if j < 0 {
				return st
			}
			i += j
			st = sQuoteSeen
		case sQuoteSeen:
			switch c {
			case '"':
				st = sQuoted
			case ',':
				st = sFieldStart
			case '\n':
				st = sEnd
			case '\r':
				st = sQuoteSeenCR
			default:
				st = sBad
			}
		case sQuoteSeenCR:
			if c == '\n' {
				st = sEnd
			} else {
				st = sBad
			}
		case sBad:
			if c == '\n' {
				st = sEnd
			}
		}
	}
	return st
}

// csvRecord returns the raw bytes of the next record, valid until the next
// read, and the line it starts on. Blank lines between records are skipped,
// as encoding/csv skips them. A record longer than MaxRecordLen is consumed
// whole but comes back cut to its first bytes, with tooLong set. It returns
// io.EOF after the last record.
func (r *Reader) csvRecord() (rec []byte, line int64, tooLong bool, err error) {
	c := r.csv
	c.rec = c.rec[:0]
	started := false
	st := sFieldStart
	size := 0
	for {
		chunk, err := r.br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return nil, 0, false, r.fatal(err)
		}
		if len(chunk) == 0 { // io.EOF
			if !started {
				return nil, 0, false, io.EOF
			}
			break
		}
		if !started {
			if err == nil && (len(chunk) == 1 || len(chunk) == 2 && chunk[0] == '\r') ||
				err == io.EOF && len(chunk) == 1 && chunk[0] == '\r' {
				r.line++ // a blank line
				continue
			}
			started = true
			line = r.line + 1
			if err == nil && bytes.IndexByte(chunk, '"') < 0 {
				// The common record: one line, no quotes. No copy.
				r.line++
				// A chunk is at most the buffer's size, far below MaxRecordLen.
				return chunk, line, false, nil
			}
		}
		st = csvScan(st, chunk)
		size += len(chunk)
		if size <= MaxRecordLen+2 {
			c.rec = append(c.rec, chunk...)
		}
		if err == io.EOF {
			r.line++
			break
		}
		if err == nil {
			r.line++
			if st == sEnd {
				break
			}
		}
	}
	// c.rec holds the whole record unless it is longer than the limit.
	if size > MaxRecordLen+2 || len(trimEOL(c.rec)) > MaxRecordLen {
		tooLong = true
		c.rec = c.rec[:min(len(c.rec), maxInput)]
	}
	return c.rec, line, tooLong, nil
}

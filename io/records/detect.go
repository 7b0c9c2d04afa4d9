package records

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Errors of an input that holds nothing to run, for errors.Is. They come
// wrapped with the file name.
var (
	// ErrEmpty: the input holds no rows (no bytes, only blank or comment
	// lines, or a CSV header alone).
	ErrEmpty = errors.New("the input has no rows")
	// ErrNoHeader: a CSV input whose first line is data, not a header.
	ErrNoHeader = errors.New("the CSV has no header line")
)

// sniffLen is how much of an input [Sniff] and [Detect] look at.
const sniffLen = 64 << 10

// Detect tells the format of an input from its first bytes (decompressed):
// "jsonl" if its first line that is neither blank nor a # comment starts
// with '{', "csv" if that line is a CSV header naming a known column (an
// input field, target, id or a parameter), else "txt" (a list of URLs). It
// returns "" when head holds no such line.
func Detect(head []byte) string {
	line := firstLine(head)
	switch {
	case line == nil:
		return ""
	case line[0] == '{':
		return "jsonl"
	case knownHeader(line):
		return "csv"
	}
	return "txt"
}

// firstLine returns the first line of head that is neither blank nor a #
// comment, trimmed, or nil.
func firstLine(head []byte) []byte {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			return t
		}
	}
	return nil
}

// headerFields parses line as one CSV record.
func headerFields(line []byte) []string {
	cr := csv.NewReader(bytes.NewReader(line))
	cr.FieldsPerRecord = -1
	fields, err := cr.Read()
	if err != nil {
		return nil
	}
	return fields
}

// knownHeader reports whether the CSV record line names a column a header
// may have.
func knownHeader(line []byte) bool {
	for _, f := range headerFields(line) {
		lower := strings.ToLower(strings.TrimSpace(f))
		if _, ok := inputFields[lower]; ok || lower == keyTarget || lower == keyID {
			return true
		}
		if _, ok := known.index[lower]; ok {
			return true
		}
	}
	return false
}

// looksLikeData reports whether a CSV first line that names no known
// column is a row of data (a URL, a host, a sentence) rather than a
// header with a misspelt column.
func looksLikeData(line []byte) bool {
	for _, f := range headerFields(line) {
		f = strings.TrimSpace(f)
		if strings.Contains(f, "://") || strings.Contains(f, ".") || strings.Contains(f, " ") {
			return true
		}
	}
	return false
}

// openRaw opens path, decompressed when it is gzip (by its magic bytes or
// its ".gz" name).
func openRaw(path string) (io.Reader, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(f, bufSize)
	magic, _ := br.Peek(2)
	if !bytes.Equal(magic, []byte{0x1f, 0x8b}) && !hasGzipExt(path) {
		return br, f.Close, nil
	}
	gz, err := gzip.NewReader(br)
	if err == io.EOF {
		return strings.NewReader(""), f.Close, nil
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return gz, func() error { gz.Close(); return f.Close() }, nil
}

// Sniff looks at the start of the input file at path and returns its
// format: format when it is given, else the one its name tells
// ([FormatFromName]), else the one its content tells ([Detect]). It returns
// an error wrapping [ErrEmpty] for an input with no rows, [ErrNoHeader] for
// a CSV whose first line is data, or one from opening or reading it; each
// names the file.
func Sniff(path, format string) (string, error) {
	src, closeFn, err := openRaw(path)
	if err != nil {
		return "", err
	}
	defer closeFn()
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(src, head)
	atEOF := err == io.EOF || err == io.ErrUnexpectedEOF
	if err != nil && !atEOF {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	head = head[:n]
	if format == "" {
		if format, err = FormatFromName(path); err != nil {
			format = Detect(head)
		}
	}
	if firstLine(head) == nil && atEOF {
		return "", fmt.Errorf("%s: %w: it is empty, or holds only blank and comment lines", path, ErrEmpty)
	}
	if format == "csv" {
		line := firstLine(head)
		if line != nil && !knownHeader(line) && looksLikeData(line) {
			return "", fmt.Errorf("%s: %w: its first line %q is data; add a header line naming the columns, e.g. \"url\" or \"query,target\"", path, ErrNoHeader, capString(string(line), 80))
		}
		if atEOF {
			if rows, _ := countRows(bytes.NewReader(head), format); rows == 0 {
				return "", fmt.Errorf("%s: %w: it has a header line and nothing after it", path, ErrEmpty)
			}
		}
	}
	if format == "" {
		format = "txt"
	}
	return format, nil
}

// CountRows counts the rows of the input at path, of the given format, as
// [Reader] numbers them (data records, good and bad; a CSV header, blank
// and comment lines excluded), without parsing or validating them: a fast
// first pass for a progress display. A CSV with malformed quoting, or a
// record cut for its length, may be counted differently from the reader.
func CountRows(path, format string) (int64, error) {
	src, closeFn, err := openRaw(path)
	if err != nil {
		return 0, err
	}
	defer closeFn()
	n, err := countRows(src, format)
	if err != nil {
		return n, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

func countRows(src io.Reader, format string) (int64, error) {
	var c rowCounter
	c.csv = format == "csv"
	c.comments = format == "txt"
	c.fieldStart = true
	buf := make([]byte, 256<<10)
	first := true
	for {
		n, err := src.Read(buf)
		b := buf[:n]
		if first && n > 0 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
			first = false
		}
		if c.csv {
			c.feedCSV(b)
		} else {
			c.feedLines(b)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return c.rows, err
		}
	}
	c.end()
	if c.csv {
		c.rows = max(c.rows-1, 0) // the header
	}
	return c.rows, nil
}

// rowCounter counts rows across the chunks of an input.
type rowCounter struct {
	rows     int64
	csv      bool
	comments bool // a line starting with # is no row (txt)

	// txt and jsonl: the first character of the current line that is not
	// a space, 0 until there is one.
	first byte

	// csv: where the scan is in the current record.
	fieldStart, inQuote, quoteSeen, content bool
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

// feedLines counts the lines of b that are neither blank nor comments.
func (c *rowCounter) feedLines(b []byte) {
	for len(b) > 0 {
		if c.first == 0 {
			i := 0
			for i < len(b) && isSpace(b[i]) {
				i++
			}
			b = b[i:]
			if len(b) == 0 {
				return
			}
			if b[0] == '\n' {
				b = b[1:]
				continue
			}
			c.first = b[0]
		}
		j := bytes.IndexByte(b, '\n')
		if j < 0 {
			return // the line goes on in the next chunk
		}
		c.endLine()
		b = b[j+1:]
	}
}

func (c *rowCounter) endLine() {
	if c.first != 0 && !(c.comments && c.first == '#') {
		c.rows++
	}
	c.first = 0
}

// feedCSV counts the records of b as encoding/csv splits them: a newline
// inside a quoted field does not end the record, an empty line is none.
// A line without a quote, outside a quoted field, is taken whole.
func (c *rowCounter) feedCSV(b []byte) {
	for len(b) > 0 {
		if c.inQuote {
			b = c.feedCSVBytes(b)
			continue
		}
		seg := b
		j := bytes.IndexByte(b, '\n')
		if j >= 0 {
			seg = b[:j]
		}
		if bytes.IndexByte(seg, '"') >= 0 {
			b = c.feedCSVBytes(b)
			continue
		}
		if len(bytes.Trim(seg, "\r")) > 0 {
			c.content = true
			c.fieldStart = seg[len(seg)-1] == ','
		}
		if j < 0 {
			return
		}
		if c.content {
			c.rows++
		}
		c.content, c.fieldStart = false, true
		b = b[j+1:]
	}
}

// feedCSVBytes scans b a byte at a time, and returns after the
// first newline that ends a record, with the rest of b.
func (c *rowCounter) feedCSVBytes(b []byte) []byte {
	for i, ch := range b {
		if c.inQuote {
			if !c.quoteSeen {
				c.quoteSeen = ch == '"'
				continue
			}
			c.quoteSeen = false
			if ch == '"' { // "" is a quote inside the field
				continue
			}
			c.inQuote = false
		}
		switch ch {
		case '\n':
			if c.content {
				c.rows++
			}
			c.content, c.fieldStart = false, true
			return b[i+1:]
		case '\r':
		case ',':
			c.content, c.fieldStart = true, true
		case '"':
			c.inQuote = c.fieldStart
			c.content, c.fieldStart = true, false
		default:
			c.content, c.fieldStart = true, false
		}
	}
	return nil
}

func (c *rowCounter) end() {
	if c.csv {
		if c.content {
			c.rows++
		}
		return
	}
	c.endLine()
}

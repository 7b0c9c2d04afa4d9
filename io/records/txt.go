package records

import (
	"bytes"
	"strconv"
	"unicode/utf8"

	"github.com/decodo-batch/decodo-batch/decodo"
)

// nextTXT reads one URL per line; blank lines and lines starting with #
// are skipped, spaces around a URL trimmed.
func (r *Reader) nextTXT() (Record, error) {
	for {
		line, tooLong, err := r.readLine()
		if err != nil {
			return Record{}, err
		}
		if tooLong {
			r.row++
			return Record{}, r.rowError(r.line, "", line, tooLongReason("line"))
		}
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		r.row++
		if !utf8.Valid(t) {
			return Record{}, r.rowError(r.line, "", line, notUTF8)
		}
		v := &r.v
		v.reset()
		v.setInput(decodo.InputURL, string(t))
		rec := Record{Row: r.row, Line: r.line}
		if reason := r.finish(v, &rec); reason != "" {
			return Record{}, r.rowError(r.line, "", line, reason)
		}
		return rec, nil
	}
}

const notUTF8 = "row is not valid UTF-8 (is the file in another encoding?)"

func tooLongReason(what string) string {
	return what + " is longer than " + strconv.Itoa(MaxRecordLen>>20) + " MiB"
}

package checkpoint

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// grownHeader is testHeader after rows were appended to the input.
var grownHeader = Header{InputName: testHeader.InputName, InputSize: testHeader.InputSize + 500,
	InputHash: strings.Repeat("b", 64), Shape: testHeader.Shape}

// growFP is the fingerprint of an input that is now h, whose first bytes
// (as many as asked) hash to prefixHash; it records the sizes it is asked.
func growFP(h Header, prefixHash string, asked *[]int64) Fingerprinter {
	return func(prefix int64) (Header, string, error) {
		*asked = append(*asked, prefix)
		return h, prefixHash, nil
	}
}

// finished writes a journal of testHeader whose 10 rows are all done.
func finished(t *testing.T, path string) {
	t.Helper()
	j := mustOpen(t, path, testHeader, false)
	must(t, j.Submit(t0, 1, tasks(1, 10, 100)))
	must(t, j.Finish(t0, OutcomeResult, rows(1, 10), Offsets{Results: 1000}))
	must(t, j.InputEnd(10))
	must(t, j.Close())
}

// TestGrownInputResumes proves that an input that only grew at its end
// resumes: the journal takes the new size and hash, forgets the number of
// rows until the new end is read, keeps every row done, and keeps the new
// fingerprint through a reopen and a compaction; the old fingerprint is then
// refused like any other input.
func TestGrownInputResumes(t *testing.T) {
	t.Parallel()
	path := journalPath(t)
	finished(t, path)

	var asked []int64
	j, err := OpenGrowing(path, growFP(grownHeader, testHeader.InputHash, &asked), false)
	if err != nil {
		t.Fatalf("OpenGrowing an input that grew: %v", err)
	}
	if len(asked) != 1 || asked[0] != testHeader.InputSize {
		t.Errorf("fingerprint asked for prefixes %v, want [%d]", asked, testHeader.InputSize)
	}
	st := j.State()
	if st.Header != grownHeader || st.Rows != -1 || st.DoneCount() != 10 || !st.Done(10) || st.Offsets.Results != 1000 {
		t.Fatalf("after growing: header %+v rows %d done %d; want the new header, rows -1, 10 done", st.Header, st.Rows, st.DoneCount())
	}
	must(t, j.Finish(t0, OutcomeResult, rows(11, 12), Offsets{Results: 1200}))
	must(t, j.Close())

	st = mustRead(t, path)
	if st.Header != grownHeader || st.Rows != -1 || st.DoneCount() != 12 {
		t.Fatalf("replayed: header %+v rows %d done %d", st.Header, st.Rows, st.DoneCount())
	}

	// A compaction rewrites the header from the state: the grown one.
	j = mustOpen(t, path, grownHeader, false)
	must(t, j.InputEnd(15))
	must(t, j.Compact())
	must(t, j.Close())
	data, _ := os.ReadFile(path)
	s, err := decodeHeader(mustPayload(t, data))
	if err != nil || s.Header != grownHeader {
		t.Fatalf("compacted header %+v (%v), want %+v", s.Header, err, grownHeader)
	}
	st = mustRead(t, path)
	if st.Header != grownHeader || st.Rows != 15 || st.DoneCount() != 12 {
		t.Fatalf("compacted: header %+v rows %d done %d", st.Header, st.Rows, st.DoneCount())
	}

	// The old input is now another input.
	_, err = Open(path, testHeader, false)
	var me *MismatchError
	if !errors.As(err, &me) || me.Field != "input size" {
		t.Fatalf("Open with the old fingerprint: %v, want a MismatchError on the input size", err)
	}
}

// TestChangedInputRefused proves that a grown input whose first bytes
// changed, a shrunk one, one grown under other options, and one whose
// prefix cannot be vouched for are all refused, and the journal is left as
// it was.
func TestChangedInputRefused(t *testing.T) {
	t.Parallel()
	shrunk := testHeader
	shrunk.InputSize -= 10
	otherShape := grownHeader
	otherShape.Shape = "target=bing\n"
	tests := []struct {
		name       string
		now        Header
		prefixHash string
		field      string
	}{
		{"grew, but its first bytes changed", grownHeader, strings.Repeat("c", 64), "input size"},
		{"grew, but the prefix did not end a line", grownHeader, "", "input size"},
		{"shrank", shrunk, "", "input size"},
		{"grew under other options", otherShape, testHeader.InputHash, "shape"},
		{"same size, other bytes", Header{InputSize: testHeader.InputSize, InputHash: strings.Repeat("d", 64), Shape: testHeader.Shape}, "", "input hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := journalPath(t)
			finished(t, path)
			before, _ := os.ReadFile(path)
			var asked []int64
			_, err := OpenGrowing(path, growFP(tt.now, tt.prefixHash, &asked), false)
			var me *MismatchError
			if !errors.As(err, &me) || me.Field != tt.field {
				t.Fatalf("err = %v, want a MismatchError on %s", err, tt.field)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("a refused Open changed the journal")
			}
			if tt.field == "input size" && tt.now.InputSize > testHeader.InputSize && !strings.Contains(err.Error(), "may grow at its end") {
				t.Errorf("message %q does not say an input may grow at its end", err)
			}
			// The lock was released.
			j := mustOpen(t, path, testHeader, false)
			must(t, j.Close())
		})
	}
}

// TestFingerprintErrorReturned proves that fp's error is Open's, and that
// a new journal asks fp for no prefix.
func TestFingerprintErrorReturned(t *testing.T) {
	t.Parallel()
	boom := errors.New("read input: boom")
	_, err := OpenGrowing(journalPath(t), func(int64) (Header, string, error) { return Header{}, "", boom }, false)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want fp's", err)
	}
	var asked []int64
	j, err := OpenGrowing(journalPath(t), growFP(testHeader, "", &asked), false)
	must(t, err)
	must(t, j.Close())
	if len(asked) != 1 || asked[0] != -1 {
		t.Errorf("a new journal asked fp for prefixes %v, want [-1]", asked)
	}
}

// TestGrowCrashAnywhere cuts the journal of a grown resume at every byte
// after the old journal's end: each cut replays either to the old input
// (with its rows count) or to the grown one (rows unknown), never to a
// mixture; and a resume from each cut finds the input grown again or
// already grown.
func TestGrowCrashAnywhere(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint")
	finished(t, path)
	old, _ := os.ReadFile(path)
	var asked []int64
	j, err := OpenGrowing(path, growFP(grownHeader, testHeader.InputHash, &asked), false)
	must(t, err)
	must(t, j.Finish(t0, OutcomeResult, rows(11, 11), Offsets{Results: 1100}))
	must(t, j.Close())
	full, _ := os.ReadFile(path)
	if !bytes.HasPrefix(full, old) {
		t.Fatal("the grown journal does not extend the old one")
	}
	for cut := len(old); cut <= len(full); cut++ {
		p := filepath.Join(dir, "cut")
		must(t, os.WriteFile(p, full[:cut], 0o644))
		st := mustRead(t, p)
		switch {
		case st.Header == testHeader && st.Rows == 10:
		case st.Header == grownHeader && st.Rows == -1:
		default:
			t.Fatalf("cut at %d: header %+v rows %d: neither the old input nor the grown one", cut, st.Header, st.Rows)
		}
		j, err := OpenGrowing(p, growFP(grownHeader, testHeader.InputHash, &asked), false)
		if err != nil {
			t.Fatalf("cut at %d: resume: %v", cut, err)
		}
		if s := j.State(); s.Header != grownHeader || s.Rows != -1 || s.DoneCount() < 10 {
			t.Fatalf("cut at %d: resumed header %+v rows %d done %d", cut, s.Header, s.Rows, s.DoneCount())
		}
		must(t, j.Close())
	}
}

// TestGrowRecordDamaged proves the grow record is decoded as
// written, and a damaged one is the end of the journal like any record.
func TestGrowRecordDamaged(t *testing.T) {
	t.Parallel()
	st := newState()
	st.Header = testHeader
	p := []byte{recGrow}
	if st.apply(append(p, 0x80), new(applier), false) == nil {
		t.Error("a grow record with a torn varint applied")
	}
	if st.Header != testHeader {
		t.Error("a damaged grow record changed the header")
	}
}

func mustPayload(t *testing.T, data []byte) []byte {
	t.Helper()
	r := newReader(bytes.NewReader(data), int64(len(data)))
	p, ok := r.next()
	if !ok {
		t.Fatal("no record")
	}
	return append([]byte(nil), p...)
}

package results

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/decodo-batch/decodo-batch/io/durable"
)

// Taking failed rows back to work (retrying them) rewrites the failed file
// without their lines. The rewrite is written beside it, named with a
// random token; then the journal records the rows taken with the new
// file's size and the token, which is the commit point; then the rewrite
// is renamed into place. [RecoverRetake], before [Open], finishes or
// undoes one that a crash interrupted.
const retakeSuffix = ".retake-"

// FailedPath returns the path of the failed file in dir for codec.
func FailedPath(dir, codec string) string {
	return filepath.Join(dir, "failed.jsonl"+Ext(codec))
}

// Retake writes a copy of the first size bytes of dir's failed file (the
// bytes the checkpoint vouches for) without the lines whose row and error
// class take says to take back, under the retake name, synced. It returns
// the rows taken, the copy's size, and the token that names it, for the journal; when no
// row is taken it writes nothing and returns no rows. The caller journals
// them, then calls [CommitRetake].
func Retake(dir, codec string, size int64, take func(FailedLine) bool) (rows []int64, newSize int64, token string, err error) {
	path := FailedPath(dir, codec)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && size == 0 {
		return nil, 0, "", nil
	}
	if err != nil {
		return nil, 0, "", fmt.Errorf("retry failed rows: %w", err)
	}
	defer f.Close()
	var nonce [8]byte
	rand.Read(nonce[:])
	token = hex.EncodeToString(nonce[:])
	tmp := path + retakeSuffix + token + ".tmp"
	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, 0, "", fmt.Errorf("retry failed rows: %w", err)
	}
	defer os.Remove(tmp) // gone once renamed
	defer out.Close()
	var written int64
	bw := bufio.NewWriterSize(countWriter{f: out, n: &written}, 256<<10)
	var keep io.Writer = bw
	enc := newEncoder(codec)
	if enc != nil {
		enc.Reset(bw)
		keep = enc
	}
	rows, err = split(io.LimitReader(f, size), codec, keep, take)
	if err != nil {
		return nil, 0, "", fmt.Errorf("retry failed rows: read %s: %w", path, err)
	}
	if len(rows) == 0 {
		return nil, 0, "", nil
	}
	if enc != nil {
		err = enc.Close() // a whole stream, empty or not
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = durable.Sync(out)
	}
	if err == nil {
		err = os.Rename(tmp, path+retakeSuffix+token)
	}
	if err == nil {
		err = durable.SyncDir(dir) // the journal will name it
	}
	if err != nil {
		return nil, 0, "", fmt.Errorf("retry failed rows: %w", err)
	}
	return rows, written, token, nil
}

// FailedLine is what taking failed rows back reads of a failed.jsonl line.
type FailedLine struct {
	Row         int64  `json:"row"`
	Class       string `json:"error_class"`
	DuplicateOf int64  `json:"duplicate_of"` // the row follows another's task (dedupe)
}

// ScanFailed calls fn with each line of the
// first size bytes of dir's failed file (the bytes the checkpoint vouches
// for).
func ScanFailed(dir, codec string, size int64, fn func(FailedLine)) error {
	f, err := os.Open(FailedPath(dir, codec))
	if errors.Is(err, fs.ErrNotExist) && size == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = split(io.LimitReader(f, size), codec, io.Discard, func(l FailedLine) bool {
		fn(l)
		return false
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", FailedPath(dir, codec), err)
	}
	return nil
}

// split copies the lines of the (codec-compressed) stream r to keep, but
// for those take says to take back, whose rows it returns.
func split(r io.Reader, codec string, keep io.Writer, take func(FailedLine) bool) ([]int64, error) {
	switch codec {
	case Gzip:
		zr, err := gzip.NewReader(r)
		if err == io.EOF {
			return nil, nil // no stream at all
		}
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	case Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	var rows []int64
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			var l FailedLine
			if jerr := json.Unmarshal(line, &l); jerr != nil || l.Row < 1 {
				return nil, fmt.Errorf("a line that is not a failed row: %.100q", line)
			}
			if take(l) {
				rows = append(rows, l.Row)
			} else if _, err := keep.Write(line); err != nil {
				return nil, err
			}
		}
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// CommitRetake renames the rewrite of [Retake] named token into place,
// durably.
func CommitRetake(dir, codec, token string) error {
	path := FailedPath(dir, codec)
	if err := os.Rename(path+retakeSuffix+token, path); err != nil {
		return fmt.Errorf("retry failed rows: %w", err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("retry failed rows: %w", err)
	}
	return nil
}

// RecoverRetake finishes or undoes a rewrite that a crash interrupted: the
// rewrite named want (the journal recorded it) is renamed into place; any
// other is removed (the journal never vouched for it).
func RecoverRetake(dir, codec, want string) error {
	prefix := filepath.Base(FailedPath(dir, codec)) + retakeSuffix
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recover retried rows: %w", err)
	}
	removed := false
	for _, e := range entries {
		token, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		name := filepath.Join(dir, e.Name())
		if want != "" && token == want {
			if err := CommitRetake(dir, codec, token); err != nil {
				return err
			}
			continue
		}
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("recover retried rows: %w", err)
		}
		removed = true
	}
	if removed {
		return durable.SyncDir(dir)
	}
	return nil
}

package results

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/decodo-batch/decodo-batch/io/durable"
)

// ContentDirName is the directory of content files in the output
// directory.
const ContentDirName = "content"

// rowsPerDir is how many rows share a directory of content files: a
// thousand rows (up to ten pages each) per directory, a thousand
// directories per parent, so that no directory grows large.
const rowsPerDir = 1000

// ContentPath returns the path, relative to the output directory, of the
// content file of a row's page (1-based; 0 for a task of one page), with
// id in the name when it is a safe file name, and ext (".html", ...):
//
//	content/000/123/123456.html
//	content/000/123/123456-sku-42.p2.html
func ContentPath(row int64, id string, page int, ext string) string {
	b := make([]byte, 0, 64)
	b = append(b, ContentDirName+"/"...)
	b = appendDirs(b, row)
	b = strconv.AppendInt(b, row, 10)
	if safeID(id) {
		b = append(b, '-')
		b = append(b, id...)
	}
	if page > 0 {
		b = append(b, ".p"...)
		b = strconv.AppendInt(b, int64(page), 10)
	}
	return string(append(b, ext...))
}

// appendDirs appends "AAA/BBB/", the directories of row's content files.
func appendDirs(b []byte, row int64) []byte {
	d := row / rowsPerDir
	return fmt.Appendf(b, "%03d/%03d/", d/1000, d%1000)
}

// safeID reports whether id can be part of a file name as it is: short,
// and only letters, digits, '.', '_' and '-', not first a '.' or '-'.
func safeID(id string) bool {
	if id == "" || len(id) > 64 || id[0] == '.' || id[0] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// contentFile is what a results line says of a page's content file.
type contentFile struct {
	path   string // relative to the output directory; "" when the content is null
	bytes  int64
	sha256 [sha256.Size]byte
}

// appendPageFile writes a page as appendPage does, with its content file
// in place of the content.
func appendPageFile(b []byte, p *Page, cf *contentFile) []byte {
	if cf.path == "" {
		return appendPage(b, p)
	}
	if len(p.Headers) > 0 {
		b = append(b, `,"headers":`...)
		b = append(b, p.Headers...)
	}
	if len(p.Cookies) > 0 {
		b = append(b, `,"cookies":`...)
		b = append(b, p.Cookies...)
	}
	b = append(b, `,"content_file":"`...)
	b = append(b, cf.path...) // safe in JSON: see ContentPath
	b = append(b, `","content_bytes":`...)
	b = strconv.AppendInt(b, cf.bytes, 10)
	b = append(b, `,"content_sha256":"`...)
	b = hex.AppendEncode(b, cf.sha256[:])
	return append(b, '"')
}

// contentWriter writes content files with a pool of goroutines: a file is
// decoded, hashed, written and fsynced there, and its row's results line
// built; the owner writes the lines in the order of its calls as they
// become ready. Commit waits for every file, then fsyncs the directories
// that got new names, before the results file is committed: a content file
// is durable before the line that names it is vouched for.
type contentWriter struct {
	dir  string // the output directory
	jobs chan *contentJob
	wg   sync.WaitGroup
	fifo []*contentJob

	caughtUp chan<- struct{} // signalled as each job is done (see Writer.Backlogged)

	mu    sync.Mutex
	known map[string]bool     // directories that exist
	dirty map[string]struct{} // directories with new names since the last commit
}

type contentJob struct {
	r    Result
	line []byte
	err  error
	done chan struct{}
}

// openContent creates dir/content and removes every content file whose
// row done does not vouch for (written after the last commit of a run
// that was killed), with the directories' syncs.
func openContent(dir string, done func(int64) bool, caughtUp chan<- struct{}) (*contentWriter, error) {
	root := filepath.Join(dir, ContentDirName)
	if err := durable.MkdirAll(root); err != nil {
		return nil, fmt.Errorf("create content directory: %w", err)
	}
	if done == nil {
		done = func(int64) bool { return false }
	}
	if err := sweep(root, done); err != nil {
		return nil, err
	}
	c := &contentWriter{dir: dir, jobs: make(chan *contentJob, 64), caughtUp: caughtUp,
		known: make(map[string]bool), dirty: make(map[string]struct{})}
	// Writing a file is mostly waiting for its fsync: more goroutines than
	// cores keep the disk busy.
	n := max(16, 4*runtime.GOMAXPROCS(0))
	c.wg.Add(n)
	for range n {
		go c.work()
	}
	return c, nil
}

// sweep removes the files under root of rows that are not done. A
// directory whose every row is done is not even listed.
func sweep(root string, done func(int64) bool) error {
	tops, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("read content directory: %w", err)
	}
	for _, top := range tops {
		a, aerr := strconv.ParseInt(top.Name(), 10, 64)
		if !top.IsDir() || aerr != nil {
			continue // not ours
		}
		mid := filepath.Join(root, top.Name())
		leaves, err := os.ReadDir(mid)
		if err != nil {
			return fmt.Errorf("read content directory: %w", err)
		}
		for _, leaf := range leaves {
			b, berr := strconv.ParseInt(leaf.Name(), 10, 64)
			if !leaf.IsDir() || berr != nil {
				continue
			}
			first := (a*1000 + b) * rowsPerDir
			all := true
			for r := max(first, 1); r < first+rowsPerDir && all; r++ {
				all = done(r)
			}
			if all {
				continue
			}
			if err := sweepDir(filepath.Join(mid, leaf.Name()), done); err != nil {
				return err
			}
		}
	}
	return nil
}

func sweepDir(dir string, done func(int64) bool) error {
	names, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read content directory: %w", err)
	}
	removed := false
	for _, e := range names {
		name := e.Name()
		end := 0
		for end < len(name) && '0' <= name[end] && name[end] <= '9' {
			end++
		}
		row, err := strconv.ParseInt(name[:end], 10, 64)
		if err == nil && done(row) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove content file not vouched for: %w", err)
		}
		removed = true
	}
	if removed {
		// Else a power cut could bring a removed file back beside the
		// row's new one.
		if err := durable.SyncDir(dir); err != nil {
			return fmt.Errorf("remove content file not vouched for: %w", err)
		}
	}
	return nil
}

// add hands r's pages to the pool and writes the lines that are ready.
func (c *contentWriter) add(w *Writer, r *Result) error {
	j := &contentJob{r: *r, done: make(chan struct{})}
	c.jobs <- j
	c.fifo = append(c.fifo, j)
	return c.drain(w, false)
}

// drain writes the lines of the jobs that are done, in order; with wait,
// of every job.
func (c *contentWriter) drain(w *Writer, wait bool) error {
	for len(c.fifo) > 0 {
		j := c.fifo[0]
		if wait {
			<-j.done
		} else {
			select {
			case <-j.done:
			default:
				return w.err
			}
		}
		c.fifo[0] = nil
		c.fifo = c.fifo[1:]
		if j.err != nil && w.err == nil {
			w.err = j.err
		}
		if w.err != nil {
			continue
		}
		w.write(0, j.line)
	}
	return w.err
}

// commit waits for every content file and syncs the directories that got
// new names.
func (c *contentWriter) commit(w *Writer) error {
	if err := c.drain(w, true); err != nil {
		return err
	}
	c.mu.Lock()
	dirs := make([]string, 0, len(c.dirty))
	for d := range c.dirty {
		dirs = append(dirs, d)
	}
	clear(c.dirty)
	c.mu.Unlock()
	// Deepest first: a new directory's name is synced in its parent after
	// the names inside it.
	for _, d := range sortDeepFirst(dirs) {
		if err := durable.SyncDir(d); err != nil {
			return fmt.Errorf("sync content directory %s: %w", d, err)
		}
	}
	return nil
}

func sortDeepFirst(dirs []string) []string {
	depth := func(s string) int { return strings.Count(s, string(filepath.Separator)) }
	for i := 1; i < len(dirs); i++ {
		for k := i; k > 0 && depth(dirs[k]) > depth(dirs[k-1]); k-- {
			dirs[k], dirs[k-1] = dirs[k-1], dirs[k]
		}
	}
	return dirs
}

func (c *contentWriter) close() {
	for _, j := range c.fifo {
		<-j.done
	}
	c.fifo = nil
	close(c.jobs)
	c.wg.Wait()
}

func (c *contentWriter) work() {
	defer c.wg.Done()
	var buf []byte
	for j := range c.jobs {
		files := make([]contentFile, len(j.r.Pages))
		for i := range j.r.Pages {
			page := 0
			if len(j.r.Pages) > 1 {
				page = i + 1
			}
			var err error
			buf, err = c.writePage(buf, &j.r, page, &j.r.Pages[i], &files[i])
			if err != nil {
				j.err = err
				break
			}
		}
		if j.err == nil {
			j.line = appendResult(nil, &j.r, files)
		}
		j.r.Pages = nil // the contents are on disk: let them go
		close(j.done)
		select {
		case c.caughtUp <- struct{}{}:
		default:
		}
	}
}

// writePage writes a page's content to its file, durably, and says what
// the line should tell of it. buf is scratch space, returned for reuse.
func (c *contentWriter) writePage(buf []byte, r *Result, page int, p *Page, cf *contentFile) ([]byte, error) {
	data, ext, buf, err := decodeContent(buf, p.Content, r.Params)
	if err != nil {
		return buf, fmt.Errorf("row %d: content: %w", r.Row.Row, err)
	}
	if ext == "" {
		return buf, nil // null content: no file
	}
	cf.path = ContentPath(r.Row.Row, r.ID, page, ext)
	cf.bytes = int64(len(data))
	cf.sha256 = sha256.Sum256(data)
	path := filepath.Join(c.dir, filepath.FromSlash(cf.path))
	if err := c.mkdir(filepath.Dir(path)); err != nil {
		return buf, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return buf, fmt.Errorf("write content file: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = durable.Sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return buf, fmt.Errorf("write content file %s: %w", path, err)
	}
	return buf, nil
}

// mkdir creates a content directory the first time one is needed, and
// marks what must be synced at the commit: the directory (its new names),
// and the parents of what it created.
func (c *contentWriter) mkdir(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty[dir] = struct{}{}
	if c.known[dir] {
		return nil
	}
	mid := filepath.Dir(dir)
	if _, err := os.Stat(dir); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create content directory: %w", err)
		}
		c.dirty[mid] = struct{}{}
		c.dirty[filepath.Dir(mid)] = struct{}{}
	}
	c.known[dir] = true
	return nil
}

// decodeContent returns the bytes of a content file for a page's raw JSON
// content, and its extension: a JSON string is written decoded (.png
// decoded from base64 when it is a PNG, as headless=png returns; .md with
// markdown=true; .html when it starts with '<'; else .txt), any other JSON
// value as it is (.json, from parse=true). Null content has no file (""
// extension). buf is scratch space, returned for reuse.
func decodeContent(buf []byte, raw []byte, params string) (data []byte, ext string, _ []byte, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, "", buf, nil
	}
	if raw[0] != '"' {
		return raw, ".json", buf, nil
	}
	data, buf, err = unquote(buf, raw)
	if err != nil {
		return nil, "", buf, err
	}
	if bytes.HasPrefix(data, []byte(pngBase64)) {
		png := make([]byte, base64.StdEncoding.DecodedLen(len(data)))
		if n, err := base64.StdEncoding.Decode(png, data); err == nil && bytes.HasPrefix(png[:n], []byte(pngMagic)) {
			return png[:n], ".png", buf, nil
		}
	}
	if param(params, "markdown") {
		return data, ".md", buf, nil
	}
	if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '<' {
		return data, ".html", buf, nil
	}
	return data, ".txt", buf, nil
}

// The PNG signature, and how base64 starts it.
const (
	pngMagic  = "\x89PNG\r\n\x1a\n"
	pngBase64 = "iVBORw0KGgo"
)

// param reports whether the row's parameters set name to true.
func param(params, name string) bool {
	if !strings.Contains(params, `"`+name+`"`) {
		return false
	}
	var m map[string]any
	if json.Unmarshal([]byte(params), &m) != nil {
		return false
	}
	switch v := m[name].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// unquote decodes the JSON string raw (with its quotes) as encoding/json
// does: without a copy when it holds no escape, else into buf.
func unquote(buf, raw []byte) ([]byte, []byte, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, buf, errors.New("not a JSON string")
	}
	s := raw[1 : len(raw)-1]
	i := bytes.IndexByte(s, '\\')
	if i < 0 && utf8.Valid(s) {
		return s, buf, nil
	}
	if i < 0 {
		i = 0
	}
	b := append(buf[:0], s[:i]...)
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return nil, b, errors.New("bad escape in JSON string")
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := hex4(s[i+2:])
				if !ok {
					return nil, b, errors.New("bad \\u escape in JSON string")
				}
				i += 6
				if utf16.IsSurrogate(r) {
					r2, ok := rune(-1), false
					if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
						r2, ok = hex4(s[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				return nil, b, errors.New("bad escape in JSON string")
			}
			i += 2
		case c < utf8.RuneSelf:
			j := i + 1
			for j < len(s) && s[j] != '\\' && s[j] < utf8.RuneSelf {
				j++
			}
			b = append(b, s[i:j]...)
			i = j
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\ufffd"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return b, b, nil
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

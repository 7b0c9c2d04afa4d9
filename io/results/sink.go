package results

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/decodo-batch/decodo-batch/io/durable"
)

// Codecs of [Options.Compress].
const (
	Gzip = "gzip"
	Zstd = "zstd"
)

// Ext returns the file name extension of codec: ".gz", ".zst", or "" for
// none. It panics on an unknown codec, which [Open] refuses first.
func Ext(codec string) string {
	switch codec {
	case "":
		return ""
	case Gzip:
		return ".gz"
	case Zstd:
		return ".zst"
	}
	panic("results: unknown codec " + codec)
}

// chunkSize is how many bytes of lines the owner gathers before it hands
// them to the file's writer goroutine: large enough that the hand-over
// costs nothing, small enough to keep a few in flight.
const chunkSize = 1 << 20

// maxQueued is how many bytes sent to a file's goroutine may wait to be
// compressed and written before the writer is backlogged (see
// Writer.Backlogged): a few dozen chunks, so that a wave of results keeps
// every core compressing, and the sender never blocks on the channel.
const maxQueued = 32 * chunkSize

// encoder is a compressed stream: gzip members and zstd frames both end
// with Close and start again on Reset, and concatenated they decompress as
// one.
type encoder interface {
	io.WriteCloser
	Reset(io.Writer)
}

func newEncoder(codec string) encoder {
	switch codec {
	case Gzip:
		w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // the level is valid
		return w
	case Zstd:
		w, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1)) // valid options
		return w
	}
	return nil
}

// sink is one output file (for results, a series of parts), written by a
// goroutine of its own so that compression and write system calls run
// beside the owner, not in its way. The owner gathers whole lines in cur
// and sends them in chunks. A compressed file gets each chunk as a whole
// gzip member or zstd frame, compressed on every core at once (see frame)
// and written in order; a commit waits for them, flushes and fsyncs, and
// answers with the size reached, always at the end of a whole stream. A
// part is closed, whole, before the next one starts, and only at a line
// boundary (chunks hold whole lines).
type sink struct {
	// Owner side.
	cur  []byte
	used bool // written since the last CommitStart
	in   chan sinkMsg
	out  chan sinkReply // commit replies
	done chan struct{}  // closed when the goroutine has ended
	free chan []byte
	last sinkReply // at the last commit

	// Both sides: bytes sent and not yet written; below maxQueued again,
	// the goroutine signals caughtUp.
	queued   atomic.Int64
	caughtUp chan<- struct{}

	// Goroutine side, after start.
	dir, base string // base: "results", "failed", "rejects"
	codec     string
	rotate    int64 // start a new part past this size; 0: never
	part      int64
	f         *os.File
	size      int64 // bytes written to f
	bw        *bufio.Writer
	enc       encoder    // nil: plain; else it writes a new file's empty stream
	syncing   chan error // the commit's fsync in flight, or nil
	pending   sinkReply  // its reply
	err       error

	// Compressed files: chunks are compressed in parallel (see frame).
	frames []*frame
	sem    chan struct{}
	zstd   *zstd.Encoder
	gzips  sync.Pool
}

type sinkMsg struct {
	data   []byte
	commit bool
}

type sinkReply struct {
	size, part int64
	err        error
}

// name returns the file name of part n: results.jsonl for part 0,
// results-00001.jsonl and on for the others.
func (s *sink) name(n int64) string {
	name := s.base
	if n > 0 {
		name += fmt.Sprintf("-%05d", n)
	}
	return filepath.Join(s.dir, name+".jsonl"+Ext(s.codec))
}

// openSink opens the file (or current part) for appending at size, cut back
// to it; with rotation, parts after part are removed (nothing in them is
// vouched for). A compressed file that is empty gets an empty stream, so
// that it decompresses.
func openSink(dir, base, codec string, rotate, part, size int64, caughtUp chan<- struct{}) (*sink, error) {
	s := &sink{dir: dir, base: base, codec: codec, rotate: rotate, part: part, caughtUp: caughtUp}
	if rotate > 0 && part == 0 && size == 0 {
		// A new rotated job starts at part 1; a results.jsonl of an earlier
		// run that vouched for nothing goes.
		if err := os.Remove(s.name(0)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open output: %w", err)
		}
		s.part = 1
	}
	removed := false
	for n := s.part + 1; ; n++ {
		err := os.Remove(s.name(n))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("remove output part not vouched for: %w", err)
		}
		removed = true
	}
	if removed {
		if err := durable.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("remove output part not vouched for: %w", err)
		}
	}
	f, err := openAt(s.name(s.part), size)
	if err != nil {
		return nil, err
	}
	s.f, s.size = f, size
	s.bw = bufio.NewWriterSize(countWriter{f: f, n: &s.size}, 256<<10)
	s.enc = newEncoder(codec)
	if s.enc != nil && size == 0 {
		if err := s.emptyStream(); err == nil {
			err = s.flushSync()
		}
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	s.last = sinkReply{size: s.size, part: s.part}
	s.sem = make(chan struct{}, compressors)
	if codec == Zstd {
		s.zstd, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(compressors)) // valid options
	}
	// Room for every chunk maxQueued allows and the commits between them:
	// the owner holds results back before it would block here (but for
	// one event that writes many lines, such as a leader's followers).
	// Half as many chunks are kept for reuse: 16 MB at most, past a burst.
	s.in = make(chan sinkMsg, 2*maxQueued/chunkSize+4)
	s.out = make(chan sinkReply, 1) // a file answers without waiting for the others' replies to be read
	s.done = make(chan struct{})
	s.free = make(chan []byte, maxQueued/chunkSize/2)
	go s.run()
	return s, nil
}

// write queues a whole line.
func (s *sink) write(line []byte) {
	s.used = true
	s.cur = append(s.cur, line...)
	if len(s.cur) >= chunkSize {
		s.send()
	}
}

func (s *sink) send() {
	if len(s.cur) == 0 {
		return
	}
	s.queued.Add(int64(len(s.cur)))
	s.in <- sinkMsg{data: s.cur}
	select {
	case b := <-s.free:
		s.cur = b[:0]
	default:
		s.cur = make([]byte, 0, chunkSize+64<<10)
	}
}

// commitStart sends what is gathered and asks for a commit, whose reply
// comes on out (see Writer.CommitStart).
func (s *sink) commitStart() {
	s.send()
	s.in <- sinkMsg{commit: true}
}

// close stops the goroutine and closes the file; a commit first is the
// caller's business.
func (s *sink) close() error {
	close(s.in)
	<-s.done
	return s.f.Close()
}

// run writes what the owner sends, in order. A commit flushes what came
// before it, then fsyncs on a goroutine of its own while the writes that
// follow go on (the disk writes one while the page cache takes the other);
// the reply, with the size flushed, goes out when the fsync has ended.
// One fsync is in flight at a time: the owner starts no commit before the
// last one's reply.
func (s *sink) run() {
	defer close(s.done)
	in := s.in
	for in != nil || s.syncing != nil {
		select {
		case err := <-s.syncing:
			s.synced(err)
		case m, ok := <-in:
			switch {
			case !ok:
				in = nil
				s.writeFrames(true)
			case m.commit:
				if s.syncing != nil { // not so: the owner waits for each commit
					s.synced(<-s.syncing)
				}
				s.writeFrames(true)
				if s.err == nil {
					if err := s.bw.Flush(); err != nil {
						s.fail("write", err)
					}
				}
				if s.err != nil {
					s.out <- sinkReply{err: s.err}
					continue
				}
				s.pending = sinkReply{size: s.size, part: s.part}
				s.syncing = make(chan error, 1)
				go func(f *os.File, done chan<- error) { done <- durable.Sync(f) }(s.f, s.syncing)
			case s.enc != nil && s.err == nil:
				s.compress(m.data)
			default:
				if s.err == nil {
					s.writeData(m.data)
				}
				s.recycle(m.data)
			}
		}
	}
}

// synced ends the commit whose fsync returned err, and answers it.
func (s *sink) synced(err error) {
	s.syncing = nil
	if err != nil {
		s.fail("sync", err)
	}
	r := s.pending
	r.err = s.err
	s.out <- r
}

// recycle takes back a chunk that is written (or dropped after an error).
func (s *sink) recycle(b []byte) {
	if n := s.queued.Add(-int64(len(b))); n <= maxQueued && n+int64(len(b)) > maxQueued {
		select {
		case s.caughtUp <- struct{}{}:
		default:
		}
	}
	select {
	case s.free <- b:
	default:
	}
}

// frame is a chunk of lines being compressed into a whole gzip member or
// zstd frame, by a goroutine of its own: the chunks of a file are
// compressed on every core at once, and written in their order.
type frame struct {
	in, out []byte
	err     error
	done    chan struct{}
}

// compressors bounds the chunks being compressed at once, per file.
var compressors = runtime.GOMAXPROCS(0)

// compress starts compressing chunk b and writes the frames that are done.
func (s *sink) compress(b []byte) {
	f := &frame{in: b, done: make(chan struct{})}
	s.sem <- struct{}{}
	go func() {
		defer close(f.done)
		f.out, f.err = s.encodeAll(f.in)
		<-s.sem
	}()
	s.frames = append(s.frames, f)
	s.writeFrames(len(s.frames) > 2*compressors)
}

// encodeAll compresses b into one whole stream.
func (s *sink) encodeAll(b []byte) ([]byte, error) {
	if s.codec == Zstd {
		return s.zstd.EncodeAll(b, make([]byte, 0, len(b)/4)), nil
	}
	var buf bytes.Buffer
	buf.Grow(len(b) / 4)
	zw, _ := s.gzips.Get().(*gzip.Writer)
	if zw == nil {
		zw, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed) // the level is valid
	} else {
		zw.Reset(&buf)
	}
	_, err := zw.Write(b)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	s.gzips.Put(zw)
	return buf.Bytes(), err
}

// writeFrames writes the compressed frames that are done, in order; with
// wait, every frame.
func (s *sink) writeFrames(wait bool) {
	for len(s.frames) > 0 {
		f := s.frames[0]
		if wait {
			<-f.done
		} else {
			select {
			case <-f.done:
			default:
				return
			}
		}
		s.frames[0] = nil
		s.frames = s.frames[1:]
		s.recycle(f.in)
		if s.err != nil {
			continue
		}
		if f.err != nil {
			s.fail("compress", f.err)
			continue
		}
		if s.rotate > 0 && s.size+int64(s.bw.Buffered()) >= s.rotate && s.nextPart() != nil {
			continue
		}
		if _, err := s.bw.Write(f.out); err != nil {
			s.fail("write", err)
		}
	}
}

func (s *sink) fail(what string, err error) error {
	if s.err == nil {
		s.err = fmt.Errorf("%s %s: %w", what, s.name(s.part), err)
	}
	return s.err
}

func (s *sink) writeData(b []byte) {
	// A part is closed when it has passed the size, before the next chunk,
	// so that no part is ever left empty.
	if s.rotate > 0 && s.size+int64(s.bw.Buffered()) >= s.rotate {
		if s.nextPart() != nil {
			return
		}
	}
	if _, err := s.bw.Write(b); err != nil {
		s.fail("write", err)
	}
}

// emptyStream writes a whole compressed stream of nothing, so that a file
// without a line still decompresses.
func (s *sink) emptyStream() error {
	s.enc.Reset(s.bw)
	if err := s.enc.Close(); err != nil {
		return s.fail("write", err)
	}
	return nil
}

func (s *sink) flushSync() error {
	if err := s.bw.Flush(); err != nil {
		return s.fail("write", err)
	}
	if err := durable.Sync(s.f); err != nil {
		return s.fail("sync", err)
	}
	return nil
}

// nextPart closes the current part whole and durable, and opens the next.
// The journal still vouches for the old part until the next commit; a
// crash in between cuts the old part back and removes the new one.
func (s *sink) nextPart() error {
	if s.syncing != nil {
		if s.synced(<-s.syncing); s.err != nil { // the file is closed below
			return s.err
		}
	}
	if s.flushSync() != nil {
		return s.err
	}
	if err := s.f.Close(); err != nil {
		return s.fail("close", err)
	}
	s.part++
	f, err := durable.OpenFile(s.name(s.part), 0o644)
	if err == nil {
		err = f.Truncate(0)
	}
	if err != nil {
		s.err = fmt.Errorf("open output part: %w", err) // f may be nil: nothing is written after an error
	}
	s.f, s.size = f, 0
	s.bw.Reset(countWriter{f: f, n: &s.size})
	return s.err
}

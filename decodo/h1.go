package decodo

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// h1 is a lean HTTP/1.1 client for the GETs that come by the thousand a
// second (task results and statuses). net/http spends two goroutines, their
// channel hand-offs, a Request and a Response with header maps on each
// request; measured against the sandbox that was about 20 µs of CPU per GET,
// as much as the tool's own work. Here the caller's goroutine writes the
// request in one write and reads the answer itself, on a keep-alive
// connection of its own.
//
// It speaks what an API answer needs: Content-Length, chunked or
// read-to-close bodies, gzip, Connection: close, 1xx answers skipped, a
// keep-alive connection the server closed while idle retried once on a new
// one. It does no proxies, redirects, cookies or HTTP/2: [New] uses it only
// when no proxy applies to the endpoint, and only for GETs.
type h1 struct {
	addr    string      // host:port to dial
	tls     *tls.Config // nil for http
	header  []byte      // the request's header lines after the request line, and the blank line
	timeout time.Duration
	dialer  net.Dialer

	mu      sync.Mutex
	idle    []*h1Conn // most recently used last
	maxIdle int

	// Cancellation: one context.AfterFunc per context rather than per
	// request. live holds the connections in an exchange; when a watched
	// context is done, those of its exchanges have their deadline set in
	// the past, which wakes them.
	wmu     sync.Mutex
	watched []<-chan struct{} // Done channels with an AfterFunc, at most maxWatched
	live    []*h1Conn
}

const maxWatched = 8

type h1Conn struct {
	nc    net.Conn
	br    *bufio.Reader
	wb    []byte
	lr    io.LimitedReader
	used  bool            // it has carried a whole exchange before
	fresh bool            // no byte of the current answer has been read
	done  <-chan struct{} // the exchange's context's, while in h1.live
	slot  int             // index in h1.live

	idleSince time.Time // when it went back to the pool
	line      []byte    // a header line longer than br's buffer
}

const (
	h1MaxHeader   = 64 << 10 // bytes of status line and header lines
	h1MaxBody     = 1 << 30  // an answer bigger than this is refused
	h1ReadBufSize = 16 << 10
)

// h1ProtocolError is an answer that is not HTTP/1.1 as read here.
type h1ProtocolError struct{ msg string }

func (e *h1ProtocolError) Error() string { return "malformed HTTP answer: " + e.msg }

func newH1(scheme, host, port string, tlsConf *tls.Config, headers [][2]string, timeout time.Duration, maxIdle int) *h1 {
	h := &h1{addr: net.JoinHostPort(host, port), timeout: timeout, maxIdle: maxIdle}
	h.dialer = net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if scheme == "https" {
		c := tlsConf.Clone()
		if c == nil {
			c = &tls.Config{}
		}
		if c.ServerName == "" {
			c.ServerName = host
		}
		c.NextProtos = []string{"http/1.1"}
		if c.ClientSessionCache == nil {
			c.ClientSessionCache = tls.NewLRUClientSessionCache(64) // reconnects resume
		}
		h.tls = c
	}
	hostHeader := host
	if strings.Contains(host, ":") { // an IPv6 literal, without its zone
		if i := strings.IndexByte(host, '%'); i >= 0 {
			hostHeader = host[:i]
		}
		hostHeader = "[" + hostHeader + "]"
	}
	if (scheme == "http" && port != "80") || (scheme == "https" && port != "443") {
		hostHeader += ":" + port
	}
	var b bytes.Buffer
	b.WriteString("Host: " + hostHeader + "\r\n")
	for _, kv := range headers {
		b.WriteString(kv[0] + ": " + kv[1] + "\r\n")
	}
	b.WriteString("Accept-Encoding: gzip\r\n\r\n")
	h.header = b.Bytes()
	return h
}

// get sends GET path and reads the answer's body into buf. It returns the
// status and the Retry-After header.
func (h *h1) get(ctx context.Context, path string, buf *bytes.Buffer) (status int, retryAfter string, err error) {
	if err := ctx.Err(); err != nil {
		return 0, "", err
	}
	// One deadline bounds the whole request: dial, handshake, the exchange
	// and its one retry.
	deadline := time.Now().Add(h.timeout)
	for attempt := 0; ; attempt++ {
		c, err := h.conn(ctx, deadline, attempt > 0)
		if err != nil {
			return 0, "", err
		}
		status, retryAfter, keep, err := h.exchange(ctx, c, path, buf, deadline)
		if err == nil {
			if keep {
				h.put(c)
			} else {
				c.nc.Close()
			}
			return status, retryAfter, nil
		}
		c.nc.Close()
		if ctx.Err() != nil {
			return 0, "", ctx.Err()
		}
		// A kept connection the server closed while it was idle: nothing of
		// the answer came. A GET may be sent again, once, on a new one; not
		// after a timeout, which says the server is slow, not gone.
		var ne net.Error
		if attempt == 0 && c.used && c.fresh && !(errors.As(err, &ne) && ne.Timeout()) {
			continue
		}
		return 0, "", err
	}
}

// idleCheck is how long a connection may sit idle before it is checked,
// when taken again, for bytes or a close the server sent meanwhile.
const idleCheck = time.Second

// conn returns an idle connection that is still sound, or dials one (always
// when dial is set).
func (h *h1) conn(ctx context.Context, deadline time.Time, dial bool) (*h1Conn, error) {
	for !dial {
		h.mu.Lock()
		n := len(h.idle)
		if n == 0 {
			h.mu.Unlock()
			break
		}
		c := h.idle[n-1]
		h.idle[n-1] = nil
		h.idle = h.idle[:n-1]
		h.mu.Unlock()
		if time.Since(c.idleSince) < idleCheck || c.sound() {
			return c, nil
		}
		c.nc.Close()
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	nc, err := h.dialer.DialContext(dctx, "tcp", h.addr)
	if err != nil {
		return nil, err
	}
	if h.tls != nil {
		tc := tls.Client(nc, h.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	return &h1Conn{nc: nc, br: bufio.NewReaderSize(nc, h1ReadBufSize)}, nil
}

// sound reports whether an idle connection has received nothing since its
// last answer: no close, no stray bytes (a server may send a 408 before it
// closes an idle connection). It waits a millisecond for the read.
func (c *h1Conn) sound() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.nc.SetReadDeadline(time.Now().Add(time.Millisecond)) != nil {
		return false
	}
	_, err := c.br.Peek(1)
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (h *h1) put(c *h1Conn) {
	if c.br.Buffered() > 0 { // bytes after the answer: the next would be misread
		c.nc.Close()
		return
	}
	c.used = true
	c.idleSince = time.Now()
	h.mu.Lock()
	if len(h.idle) < h.maxIdle {
		h.idle = append(h.idle, c)
		c = nil
	}
	h.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

// closeIdle closes the idle connections.
func (h *h1) closeIdle() {
	h.mu.Lock()
	idle := h.idle
	h.idle = nil
	h.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// aLongTimeAgo is a deadline in the past: it wakes a blocked read or write.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes the request on c and reads the answer. keep reports
// whether c may carry another request.
func (h *h1) exchange(ctx context.Context, c *h1Conn, path string, buf *bytes.Buffer, deadline time.Time) (status int, retryAfter string, keep bool, err error) {
	c.fresh = true
	if err := c.nc.SetDeadline(deadline); err != nil {
		return 0, "", false, err
	}
	if done := ctx.Done(); done != nil {
		if h.watch(ctx, done, c) {
			defer h.unwatch(c)
		} else {
			stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
			defer func() {
				if !stop() {
					// The hook ran, or is running: it may yet set a
					// deadline in the past, so the connection is not
					// kept for another request.
					keep = false
				}
			}()
		}
		if err := ctx.Err(); err != nil { // done before the watch began
			return 0, "", false, err
		}
	}
	c.wb = append(append(append(c.wb[:0], "GET "...), path...), " HTTP/1.1\r\n"...)
	c.wb = append(c.wb, h.header...)
	if _, err := c.nc.Write(c.wb); err != nil {
		return 0, "", false, err
	}
	return readAnswer(c, buf)
}

// watch puts c in live for ctx, whose Done channel is done; it reports
// false if too many contexts are watched already.
func (h *h1) watch(ctx context.Context, done <-chan struct{}, c *h1Conn) bool {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if !slices.Contains(h.watched, done) {
		if len(h.watched) >= maxWatched {
			return false
		}
		h.watched = append(h.watched, done)
		context.AfterFunc(ctx, func() { h.cancelled(done) })
	}
	c.done, c.slot = done, len(h.live)
	h.live = append(h.live, c)
	return true
}

func (h *h1) unwatch(c *h1Conn) {
	h.wmu.Lock()
	last := len(h.live) - 1
	h.live[c.slot] = h.live[last]
	h.live[c.slot].slot = c.slot
	h.live[last] = nil
	h.live = h.live[:last]
	c.done = nil
	h.wmu.Unlock()
}

// cancelled wakes the exchanges of a context that is done.
func (h *h1) cancelled(done <-chan struct{}) {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	for _, c := range h.live {
		if c.done == done {
			_ = c.nc.SetDeadline(aLongTimeAgo)
		}
	}
	h.watched = slices.DeleteFunc(h.watched, func(d <-chan struct{}) bool { return d == done })
}

// readAnswer reads one answer to a GET from c.br: the body goes into buf
// (decompressed if it came gzipped).
func readAnswer(c *h1Conn, buf *bytes.Buffer) (status int, retryAfter string, keep bool, err error) {
	var hd h1Header
	for {
		if hd, err = readHeader(c); err != nil {
			return 0, "", false, err
		}
		// 1xx answers come before the real one (101 is not asked for).
		if hd.status >= 200 || hd.status == 101 {
			break
		}
	}
	keep = hd.keep
	buf.Reset()
	switch {
	case hd.status == 204 || hd.status == 304:
		// no body, whatever the headers say
	case hd.chunked:
		err = readChunked(c, buf)
	case hd.length >= 0:
		err = readN(c, buf, hd.length)
	default: // to the end of the connection
		keep = false
		c.lr = io.LimitedReader{R: c.br, N: h1MaxBody + 1}
		_, err = buf.ReadFrom(&c.lr)
		if err == nil && buf.Len() > h1MaxBody {
			err = &h1ProtocolError{"answer over 1 GiB"}
		}
	}
	if err != nil {
		return 0, "", false, err
	}
	if hd.gzip && buf.Len() > 0 {
		if err := gunzip(buf); err != nil {
			return 0, "", false, fmt.Errorf("gzip answer: %w", err)
		}
	}
	return hd.status, hd.retryAfter, keep, nil
}

type h1Header struct {
	status     int
	length     int64 // -1 if none
	chunked    bool
	gzip       bool
	keep       bool
	retryAfter string
}

// readLine returns the next line without its CR LF; the slice is valid
// until the next read.
func readLine(c *h1Conn, budget *int) ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if len(line) > 0 {
		c.fresh = false
	}
	if err == bufio.ErrBufferFull { // longer than the buffer: gather it
		c.line = append(c.line[:0], line...)
		for err == bufio.ErrBufferFull && len(c.line) <= *budget {
			line, err = c.br.ReadSlice('\n')
			c.line = append(c.line, line...)
		}
		line = c.line
		if err == bufio.ErrBufferFull {
			return nil, &h1ProtocolError{"header too long"}
		}
	}
	if err != nil {
		if err == io.EOF && !c.fresh {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if *budget -= len(line); *budget < 0 {
		return nil, &h1ProtocolError{"header too long"}
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func readHeader(c *h1Conn) (h1Header, error) {
	hd := h1Header{length: -1}
	budget := h1MaxHeader
	line, err := readLine(c, &budget)
	if err != nil {
		return hd, err
	}
	// HTTP/1.x SP 3DIGIT [SP reason]
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return hd, &h1ProtocolError{fmt.Sprintf("status line %q", clip(line))}
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return hd, &h1ProtocolError{fmt.Sprintf("status line %q", clip(line))}
		}
		hd.status = hd.status*10 + int(d-'0')
	}
	if hd.status < 100 {
		return hd, &h1ProtocolError{fmt.Sprintf("status line %q", clip(line))}
	}
	http10 := line[7] == '0'
	hd.keep = !http10 // HTTP/1.1 keeps the connection unless told; 1.0 only if told
	for {
		line, err := readLine(c, &budget)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return hd, err
		}
		if len(line) == 0 {
			return hd, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return hd, &h1ProtocolError{fmt.Sprintf("header line %q", clip(line))}
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (hd.length >= 0 && n != hd.length) {
				return hd, &h1ProtocolError{fmt.Sprintf("Content-Length %q", clip(value))}
			}
			if n > h1MaxBody {
				return hd, &h1ProtocolError{"answer over 1 GiB"}
			}
			hd.length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("chunked")) {
				return hd, &h1ProtocolError{fmt.Sprintf("Transfer-Encoding %q", clip(value))}
			}
			hd.chunked = !http10 // HTTP/1.0 has no transfer codings (as net/http reads it)
		case bytes.EqualFold(name, []byte("Content-Encoding")):
			switch {
			case bytes.EqualFold(value, []byte("gzip")):
				hd.gzip = true
			case len(value) == 0 || bytes.EqualFold(value, []byte("identity")):
			default:
				return hd, &h1ProtocolError{fmt.Sprintf("Content-Encoding %q", clip(value))}
			}
		case bytes.EqualFold(name, []byte("Connection")):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.TrimSpace(tok)
				if bytes.EqualFold(tok, []byte("close")) {
					hd.keep = false
				} else if bytes.EqualFold(tok, []byte("keep-alive")) && http10 {
					hd.keep = true
				}
			}
		case bytes.EqualFold(name, []byte("Retry-After")):
			hd.retryAfter = string(value)
		}
	}
}

func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// readN reads exactly n bytes of body into buf.
func readN(c *h1Conn, buf *bytes.Buffer, n int64) error {
	if n == 0 {
		return nil
	}
	if buf.Len()+int(n) > h1MaxBody {
		return &h1ProtocolError{"answer over 1 GiB"}
	}
	buf.Grow(int(n) + bytes.MinRead)
	c.lr = io.LimitedReader{R: c.br, N: n}
	got, err := buf.ReadFrom(&c.lr)
	if got > 0 {
		c.fresh = false
	}
	if err == nil && got < n {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readChunked reads a chunked body, and its trailer, into buf.
func readChunked(c *h1Conn, buf *bytes.Buffer) error {
	budget := h1MaxHeader
	for {
		line, err := readLine(c, &budget)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		budget = h1MaxHeader // the budget is per line here
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // a chunk extension
		}
		line = bytes.TrimRight(line, " \t")
		if len(line) == 0 || len(line) > 15 {
			return &h1ProtocolError{fmt.Sprintf("chunk size %q", clip(line))}
		}
		size, err := strconv.ParseUint(string(line), 16, 64)
		if err != nil {
			return &h1ProtocolError{fmt.Sprintf("chunk size %q", clip(line))}
		}
		if size == 0 {
			break
		}
		if uint64(buf.Len())+size > h1MaxBody {
			return &h1ProtocolError{"answer over 1 GiB"}
		}
		if err := readN(c, buf, int64(size)); err != nil {
			return err
		}
		crlf, err := readLine(c, &budget)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(crlf) != 0 {
			return &h1ProtocolError{"chunk not followed by CRLF"}
		}
	}
	for { // the trailer, up to its blank line
		line, err := readLine(c, &budget)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
}

var (
	gzipPool = sync.Pool{New: func() any { return new(gzip.Reader) }}
	zbufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// gunzip replaces buf's gzipped content by its decompressed form.
func gunzip(buf *bytes.Buffer) error {
	zr := gzipPool.Get().(*gzip.Reader)
	defer gzipPool.Put(zr)
	raw := zbufPool.Get().(*bytes.Buffer)
	defer zbufPool.Put(raw)
	raw.Reset()
	raw.Write(buf.Bytes())
	if err := zr.Reset(raw); err != nil {
		return err
	}
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(zr, h1MaxBody+1)); err != nil {
		return err
	}
	if buf.Len() > h1MaxBody {
		return errors.New("answer over 1 GiB")
	}
	return nil
}

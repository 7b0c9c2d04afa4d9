package decodo

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer answers each request on a loopback port with the bytes its
// answer function returns, so that tests control the wire exactly. After
// writing, it closes the connection if close is set.
type rawServer struct {
	ln       net.Listener
	conns    atomic.Int64
	requests chan string // each request's head, as received
}

type rawAnswer struct {
	wire  string
	close bool
}

func newRawServer(t *testing.T, answer func(n int) rawAnswer) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, requests: make(chan string, 100)}
	var n atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var head strings.Builder
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						head.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					select {
					case s.requests <- head.String():
					default:
					}
					a := answer(int(n.Add(1)))
					if _, err := io.WriteString(c, a.wire); err != nil || a.close {
						return
					}
				}
			})
		}
	})
	return s
}

func (s *rawServer) client(timeout time.Duration) *h1 {
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	return newH1("http", host, port, nil, [][2]string{{"Authorization", "Basic dG9r"}}, timeout, 4)
}

func gzipped(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.String()
}

func TestH1ReadsEveryBodyForm(t *testing.T) {
	z := gzipped(`{"results":[]}`)
	cases := []struct {
		name   string
		wire   string
		status int
		body   string
		retry  string
		reused bool // the next request goes on the same connection
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", "", true},
		{"lowercase headers", "HTTP/1.1 200 OK\r\ncontent-length:5\r\n\r\nhello", 200, "hello", "", true},
		{"chunked with extension and trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: 1\r\n\r\n", 200, "hello", "", true},
		{"gzip", "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + strconv.Itoa(len(z)) + "\r\n\r\n" + z, 200, `{"results":[]}`, "", true},
		{"gzip chunked", "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(z)), 16) + "\r\n" + z + "\r\n0\r\n\r\n", 200, `{"results":[]}`, "", true},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", "", true},
		{"1xx first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", "", true},
		{"429 with retry-after", "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 2\r\n\r\n{}", 429, "{}", "3", true},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 200, "ok", "", false},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", "", false},
		{"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 200, "ok", "", true},
		{"no status text", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", 200, "ok", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newRawServer(t, func(int) rawAnswer { return rawAnswer{wire: tc.wire, close: !tc.reused} })
			h := s.client(5 * time.Second)
			var buf bytes.Buffer
			for i := range 2 {
				status, retry, err := h.get(context.Background(), "/v3/task/1/results", &buf)
				if err != nil {
					t.Fatalf("get %d: %v", i, err)
				}
				if status != tc.status || buf.String() != tc.body || retry != tc.retry {
					t.Fatalf("get %d: status %d body %q retry %q, want %d %q %q", i, status, buf.String(), retry, tc.status, tc.body, tc.retry)
				}
			}
			if want := map[bool]int64{true: 1, false: 2}[tc.reused]; s.conns.Load() != want {
				t.Fatalf("%d connections for 2 requests, want %d", s.conns.Load(), want)
			}
		})
	}
}

func TestH1ReadsToCloseWithoutLength(t *testing.T) {
	s := newRawServer(t, func(int) rawAnswer { return rawAnswer{wire: "HTTP/1.1 200 OK\r\n\r\nall of it", close: true} })
	var buf bytes.Buffer
	status, _, err := s.client(5*time.Second).get(context.Background(), "/x", &buf)
	if err != nil || status != 200 || buf.String() != "all of it" {
		t.Fatalf("status %d body %q err %v", status, buf.String(), err)
	}
}

func TestH1SendsOneWellFormedRequest(t *testing.T) {
	s := newRawServer(t, func(int) rawAnswer { return rawAnswer{wire: "HTTP/1.1 204 No Content\r\n\r\n"} })
	if _, _, err := s.client(5*time.Second).get(context.Background(), "/v3/task/7/results", &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	head := <-s.requests
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
	if err != nil {
		t.Fatalf("the request is not HTTP/1.1 as net/http reads it: %v\n%s", err, head)
	}
	if req.Method != "GET" || req.URL.Path != "/v3/task/7/results" || req.Host != s.ln.Addr().String() ||
		req.Header.Get("Authorization") != "Basic dG9r" || req.Header.Get("Accept-Encoding") != "gzip" {
		t.Fatalf("request %s %s host %q headers %v", req.Method, req.URL, req.Host, req.Header)
	}
}

// A kept connection the server closed while idle is found dead on the next
// request; that request goes again, once, on a new connection.
func TestH1RetriesOnceWhenAKeptConnectionWasClosed(t *testing.T) {
	s := newRawServer(t, func(int) rawAnswer {
		// says keep-alive, then closes: as a server's idle timeout does
		return rawAnswer{wire: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close: true}
	})
	h := s.client(5 * time.Second)
	var buf bytes.Buffer
	for i := range 3 {
		if status, _, err := h.get(context.Background(), "/x", &buf); err != nil || status != 200 || buf.String() != "ok" {
			t.Fatalf("get %d: status %d body %q err %v", i, status, buf.String(), err)
		}
	}
	if n := s.conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}

func TestH1RefusesBrokenAnswers(t *testing.T) {
	cases := []struct {
		name, wire string
	}{
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n"},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok"},
		{"header without colon", "HTTP/1.1 200 OK\r\nbroken\r\n\r\n"},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
		{"chunk without crlf", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n"},
		{"unknown transfer encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"unknown content encoding", "HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\nok"},
		{"bad gzip", "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\nok"},
		{"huge header", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 70<<10) + "\r\n\r\n"},
		{"cut body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"},
		{"cut header", "HTTP/1.1 200 OK\r\nContent-Le"},
		{"cut chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newRawServer(t, func(int) rawAnswer { return rawAnswer{wire: tc.wire, close: true} })
			_, _, err := s.client(5*time.Second).get(context.Background(), "/x", &bytes.Buffer{})
			if err == nil {
				t.Fatal("no error")
			}
			if n := s.conns.Load(); n != 1 {
				t.Fatalf("%d connections: an answer begun and broken must not be sent again", n)
			}
		})
	}
}

func TestH1TimeoutAndCancel(t *testing.T) {
	silent := func(int) rawAnswer { time.Sleep(time.Second); return rawAnswer{} }
	t.Run("timeout", func(t *testing.T) {
		s := newRawServer(t, silent)
		start := time.Now()
		_, _, err := s.client(100*time.Millisecond).get(context.Background(), "/x", &bytes.Buffer{})
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("err %v, want a timeout", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %v", d)
		}
	})
	cancelled := func(t *testing.T, h *h1) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, _, err := h.get(ctx, "/x", &bytes.Buffer{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
		if Retryable(err) {
			t.Fatal("a cancelled request is retryable")
		}
	}
	t.Run("cancel", func(t *testing.T) {
		cancelled(t, newRawServer(t, silent).client(time.Minute))
	})
	// Past maxWatched contexts, each exchange watches its own.
	t.Run("cancel among many contexts", func(t *testing.T) {
		s := newRawServer(t, func(n int) rawAnswer {
			if n <= maxWatched {
				return rawAnswer{wire: "HTTP/1.1 204 No Content\r\n\r\n"}
			}
			return silent(n)
		})
		h := s.client(time.Minute)
		for range maxWatched {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if _, _, err := h.get(ctx, "/x", &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
		}
		if len(h.watched) != maxWatched || len(h.live) != 0 {
			t.Fatalf("%d contexts watched, %d exchanges live", len(h.watched), len(h.live))
		}
		cancelled(t, h)
	})
}

func TestH1OverTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Basic dG9r" || r.ProtoMajor != 1 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{"results":[{"content":"tls","status_code":200}]}`))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	tlsConf := srv.Client().Transport.(*http.Transport).TLSClientConfig
	h := newH1("https", u.Hostname(), u.Port(), tlsConf, [][2]string{{"Authorization", "Basic dG9r"}}, 5*time.Second, 4)
	var buf bytes.Buffer
	for range 2 {
		status, _, err := h.get(context.Background(), "/v3/task/1/results", &buf)
		if err != nil || status != 200 || !strings.Contains(buf.String(), `"tls"`) {
			t.Fatalf("status %d body %q err %v", status, buf.String(), err)
		}
	}
}

// Through a proxy, every request goes through net/http.
func TestNewUsesH1OnlyWithoutAProxy(t *testing.T) {
	c, err := New("https://scraper-api.decodo.com", "tok", Config{})
	if err != nil {
		t.Fatal(err)
	}
	proxied, _ := c.http.Transport.(*http.Transport).Proxy(&http.Request{URL: &url.URL{Scheme: "https", Host: "scraper-api.decodo.com"}})
	if got := c.h1 != nil; got != (proxied == nil) {
		t.Fatalf("h1 in use: %v, with proxy %v", got, proxied)
	}
	if c.h1 != nil && (c.h1.addr != "scraper-api.decodo.com:443" || c.h1.tls == nil || c.h1.tls.ServerName != "scraper-api.decodo.com") {
		t.Fatalf("h1 addr %q tls %v", c.h1.addr, c.h1.tls)
	}
}

// FuzzH1Answer holds the answer reader to net/http's: an answer both read
// gives the same status and body.
func FuzzH1Answer(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: 1\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nto the end",
		"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nRetry-After: 1\r\n\r\n{}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		c := &h1Conn{br: bufio.NewReader(bytes.NewReader(wire))}
		var buf bytes.Buffer
		status, _, _, err := readAnswer(c, &buf)
		if err != nil {
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(wire)), &http.Request{Method: "GET"})
		if err != nil {
			return // net/http is stricter about header names and values
		}
		if resp.StatusCode < 200 && resp.StatusCode != 101 {
			return // net/http does not skip 1xx here
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return
		}
		if resp.Header.Get("Content-Encoding") != "" {
			return // net/http's ReadResponse does not decompress
		}
		if resp.StatusCode != status || !bytes.Equal(body, buf.Bytes()) {
			t.Fatalf("h1: %d %q; net/http: %d %q", status, buf.Bytes(), resp.StatusCode, body)
		}
	})
}

// BenchmarkResults measures Client.Results against a loopback server in
// this process, through h1 and through net/http. The server's share of
// each op is the same for both; the difference is the clients'.
func BenchmarkResults(b *testing.B) {
	body := `{"results":[{"content":"` + strings.Repeat("lorem ipsum ", 100) + `","status_code":200,"url":"https://example.com/p/1","task_id":"7434928397127555073","updated_at":"2026-11-28 10:00:00"}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	defer srv.Close()
	for _, name := range []string{"h1", "net-http"} {
		b.Run(name, func(b *testing.B) {
			c, err := New(srv.URL, "dG9r", Config{Conns: 16})
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseIdleConnections()
			if name == "net-http" {
				c.h1 = nil
			}
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, ready, err := c.Results(context.Background(), "7434928397127555073"); err != nil || !ready {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func TestH1HostHeader(t *testing.T) {
	for _, tc := range []struct{ scheme, host, port, want string }{
		{"http", "127.0.0.1", "8000", "Host: 127.0.0.1:8000\r\n"},
		{"https", "scraper-api.decodo.com", "443", "Host: scraper-api.decodo.com\r\n"},
		{"https", "::1", "443", "Host: [::1]\r\n"},
		{"http", "::1", "8000", "Host: [::1]:8000\r\n"},
		{"http", "fe80::1%eth0", "8000", "Host: [fe80::1]:8000\r\n"},
	} {
		h := newH1(tc.scheme, tc.host, tc.port, nil, nil, time.Second, 1)
		if !bytes.HasPrefix(h.header, []byte(tc.want)) {
			t.Errorf("%s://%s port %s: header %q, want it to start %q", tc.scheme, tc.host, tc.port, h.header, tc.want)
		}
	}
}

// Bytes after an answer (here a 204 that carries a body) must not be read
// as the next request's answer.
func TestH1StrayBytesAfterAnAnswerAreNotTheNextAnswer(t *testing.T) {
	s := newRawServer(t, func(n int) rawAnswer {
		if n == 1 {
			return rawAnswer{wire: "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"}
		}
		return rawAnswer{wire: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"}
	})
	h := s.client(5 * time.Second)
	var buf bytes.Buffer
	if status, _, err := h.get(context.Background(), "/x", &buf); err != nil || status != 204 {
		t.Fatalf("first: %d %v", status, err)
	}
	if status, _, err := h.get(context.Background(), "/x", &buf); err != nil || status != 200 || buf.String() != "fresh" {
		t.Fatalf("second: %d %q %v, want 200 \"fresh\"", status, buf.String(), err)
	}
}

// Connections that went dead while idle in the pool are found out before
// use, and the request goes on a new one.
func TestH1DeadIdleConnectionsAreSkipped(t *testing.T) {
	s := newRawServer(t, func(int) rawAnswer {
		// keep-alive by the headers, then closed: a server's idle timeout
		return rawAnswer{wire: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close: true}
	})
	h := s.client(5 * time.Second)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			<-start
			if _, _, err := h.get(context.Background(), "/x", &bytes.Buffer{}); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	n := s.conns.Load()
	if len(h.idle) == 0 {
		t.Fatal("no connection went back to the pool")
	}
	time.Sleep(idleCheck + 100*time.Millisecond)
	var buf bytes.Buffer
	if status, _, err := h.get(context.Background(), "/x", &buf); err != nil || status != 200 {
		t.Fatalf("after idling: %d %v", status, err)
	}
	if got := s.conns.Load(); got != n+1 {
		t.Fatalf("%d new connections, want 1", got-n)
	}
	// the dead ones were closed, not left for later requests
	if len(h.idle) != 1 {
		t.Fatalf("%d idle connections, want the new one only", len(h.idle))
	}
}

// A timeout is the server being slow: the GET is not sent again, and the
// whole request stays within the timeout.
func TestH1TimeoutIsNotRetried(t *testing.T) {
	s := newRawServer(t, func(n int) rawAnswer {
		if n == 1 {
			return rawAnswer{wire: "HTTP/1.1 204 No Content\r\n\r\n"}
		}
		time.Sleep(time.Second)
		return rawAnswer{}
	})
	h := s.client(200 * time.Millisecond)
	if _, _, err := h.get(context.Background(), "/x", &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err := h.get(context.Background(), "/x", &bytes.Buffer{})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
	if n := s.conns.Load(); n != 1 {
		t.Fatalf("%d connections: the timed-out GET was sent again", n)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("took %v with a 200ms timeout", d)
	}
}

func TestH1ReadsALongHeaderLine(t *testing.T) {
	long := strings.Repeat("a", 40<<10)
	s := newRawServer(t, func(int) rawAnswer {
		return rawAnswer{wire: "HTTP/1.1 200 OK\r\nContent-Security-Policy: " + long + "\r\nContent-Length: 2\r\n\r\nok"}
	})
	var buf bytes.Buffer
	if status, _, err := s.client(5*time.Second).get(context.Background(), "/x", &buf); err != nil || status != 200 || buf.String() != "ok" {
		t.Fatalf("%d %q %v", status, buf.String(), err)
	}
}

func TestNewRefusesLineBreaksInHeaders(t *testing.T) {
	for _, tok := range []string{"abc\r\nX-Evil: 1", "abc\n", "a\x00b"} {
		if _, err := New("https://scraper-api.decodo.com", tok, Config{}); err == nil {
			t.Errorf("token %q accepted", tok)
		}
	}
	if _, err := New("https://scraper-api.decodo.com", "tok", Config{Version: "1\r\n"}); err == nil {
		t.Error("version with a line break accepted")
	}
}

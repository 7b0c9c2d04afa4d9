package callback

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testReceiver(t *testing.T, cfg Config) (*Receiver, *Signer) {
	t.Helper()
	s := NewSigner(bytes.Repeat([]byte{7}, SecretSize))
	return New(cfg, s), s
}

func post(r http.Handler, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// TestVerification proves what each request is answered and counted: a
// callback is accepted only with a passthrough this job made, of the
// task's submission, for a task being watched; every other request is a
// 4xx with its reason, and emits no event.
func TestVerification(t *testing.T) {
	t.Parallel()
	r, s := testReceiver(t, Config{MaxBody: 1024, Buffer: 4})
	good, other := s.Sign(1), s.Sign(2)
	forged := NewSigner(bytes.Repeat([]byte{8}, SecretSize)).Sign(1)
	r.Expect(good, "7434928397127555073", "7434928397127555074")
	r.Expect("", "1111111111111111111") // resumed: its passthrough is not known
	tests := []struct {
		name, method, path, body string
		code                     int
		reason                   string // counted rejection; "" for accepted or duplicate
		event                    bool
	}{
		{"done, id string", "POST", "/cb", `{"id":"7434928397127555073","status":"done","passthrough":"` + good + `"}`, 200, "", true},
		{"duplicate", "POST", "/cb", `{"id":"7434928397127555073","status":"done","passthrough":"` + good + `"}`, 200, "", false},
		{"task_id as a number, passtrough spelling, faulted", "POST", "/cb", `{"task_id":7434928397127555074,"status":"faulted","passtrough":"` + good + `"}`, 200, "", true},
		{"resumed task: the MAC alone", "POST", "/cb", `{"id":"1111111111111111111","status":"done","passthrough":"` + other + `"}`, 200, "", true},
		{"another submission's passthrough", "POST", "/cb", `{"id":"7434928397127555073","status":"done","passthrough":"` + other + `"}`, 403, ReasonMismatch, false},
		{"forged MAC", "POST", "/cb", `{"id":"7434928397127555073","status":"done","passthrough":"` + forged + `"}`, 403, ReasonPassthrough, false},
		{"tampered nonce", "POST", "/cb", `{"id":"7434928397127555073","passthrough":"` + strings.Replace(good, "v1.1.", "v1.2.", 1) + `"}`, 403, ReasonPassthrough, false},
		{"no passthrough", "POST", "/cb", `{"id":"7434928397127555073","status":"done"}`, 403, ReasonPassthrough, false},
		{"unknown task", "POST", "/cb", `{"id":"9999999999999999999","status":"done","passthrough":"` + good + `"}`, 404, ReasonUnknownTask, false},
		{"not JSON", "POST", "/cb", `{"id":`, 400, ReasonMalformed, false},
		{"no id", "POST", "/cb", `{"status":"done","passthrough":"` + good + `"}`, 400, ReasonMalformed, false},
		{"id not digits", "POST", "/cb", `{"id":"../etc","passthrough":"` + good + `"}`, 400, ReasonMalformed, false},
		{"pending status", "POST", "/cb", `{"id":"7434928397127555073","status":"pending","passthrough":"` + good + `"}`, 400, ReasonMalformed, false},
		{"too large", "POST", "/cb", `{"id":"1","pad":"` + strings.Repeat("x", 2000) + `"}`, 413, ReasonTooLarge, false},
		{"GET on the callback path", "GET", "/cb", "", 405, ReasonMethod, false},
		{"PUT", "PUT", "/cb", `{}`, 405, ReasonMethod, false},
		{"health", "GET", "/healthz", "", 200, "", false},
		{"POST on health", "POST", "/healthz", "", 405, ReasonMethod, false},
	}
	want := map[string]int64{}
	for _, tt := range tests {
		w := post(r, tt.method, tt.path, tt.body)
		if w.Code != tt.code {
			t.Errorf("%s: %d, want %d (%s)", tt.name, w.Code, tt.code, w.Body)
		}
		if tt.reason != "" {
			want[tt.reason]++
		}
		select {
		case e := <-r.Events():
			if !tt.event {
				t.Errorf("%s: event %+v, want none", tt.name, e)
			}
		default:
			if tt.event {
				t.Errorf("%s: no event", tt.name)
			}
		}
	}
	c := r.Counts()
	if c.Accepted != 3 || c.Duplicates != 1 {
		t.Errorf("accepted %d, duplicates %d; want 3, 1", c.Accepted, c.Duplicates)
	}
	for k, v := range want {
		if c.Rejected[k] != v {
			t.Errorf("rejected[%s] = %d, want %d (all: %v)", k, c.Rejected[k], v, c.Rejected)
		}
	}
	if len(c.Rejected) != len(want) {
		t.Errorf("rejected %v, want %v", c.Rejected, want)
	}
}

// TestEventFields proves the event says which task and whether it claims
// a fault, and that a callback after Forget is a duplicate, not an event.
func TestEventFields(t *testing.T) {
	t.Parallel()
	r, s := testReceiver(t, Config{})
	pt := s.Sign(42)
	r.Expect(pt, "5")
	if w := post(r, "POST", "/", `{"id":5,"status":"faulted","passthrough":"`+pt+`"}`); w.Code != 200 {
		t.Fatalf("%d", w.Code)
	}
	e := <-r.Events()
	if e.ID != "5" || !e.Faulted || e.At.IsZero() {
		t.Errorf("event %+v", e)
	}
	r.Forget("5")
	if w := post(r, "POST", "/", `{"id":"5","status":"done","passthrough":"`+pt+`"}`); w.Code != 200 {
		t.Errorf("late callback of a finished task: %d, want 200", w.Code)
	}
	if c := r.Counts(); c.Duplicates != 1 || c.Accepted != 1 {
		t.Errorf("counts %+v", c)
	}
	select {
	case e := <-r.Events():
		t.Errorf("a finished task's callback gave event %+v", e)
	default:
	}
}

// TestBusy proves that when the owner is behind (the buffer full), a
// verified callback is answered 503 and can come again later.
func TestBusy(t *testing.T) {
	t.Parallel()
	r, s := testReceiver(t, Config{Buffer: 1})
	pt := s.Sign(1)
	r.Expect(pt, "1", "2")
	post(r, "POST", "/", `{"id":"1","passthrough":"`+pt+`"}`)
	if w := post(r, "POST", "/", `{"id":"2","passthrough":"`+pt+`"}`); w.Code != 503 {
		t.Fatalf("full buffer: %d, want 503", w.Code)
	}
	<-r.Events()
	if w := post(r, "POST", "/", `{"id":"2","passthrough":"`+pt+`"}`); w.Code != 200 {
		t.Fatalf("after the owner caught up: %d, want 200", w.Code)
	}
	if e := <-r.Events(); e.ID != "2" {
		t.Errorf("event %+v", e)
	}
}

// TestPath proves that with a Path set, other paths are 404 (health aside).
func TestPath(t *testing.T) {
	t.Parallel()
	r, _ := testReceiver(t, Config{Path: "/decodo"})
	if w := post(r, "POST", "/other", `{}`); w.Code != 404 {
		t.Errorf("other path: %d", w.Code)
	}
	if w := post(r, "GET", "/healthz", ""); w.Code != 200 {
		t.Errorf("healthz: %d", w.Code)
	}
	if r.Counts().Rejected[ReasonPath] != 1 {
		t.Errorf("counts %+v", r.Counts())
	}
}

// TestServerLimits proves the real server: it answers on loopback, caps a
// body sent without a length (chunked), closes a connection whose headers
// never end, bounds connections, and keeps answering until Shutdown.
func TestServerLimits(t *testing.T) {
	t.Parallel()
	r, s := testReceiver(t, Config{Addr: "127.0.0.1:0", MaxBody: 512, MaxConns: 2})
	r.srv.ReadHeaderTimeout = 200 * time.Millisecond
	if err := r.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve() }()
	base := "http://" + r.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}

	resp, err := client.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	// Chunked: no Content-Length to refuse early; MaxBytesReader stops it.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"id":"1","pad":"` + strings.Repeat("x", 4096) + `"}`)) //nolint:errcheck
		pw.Close()
	}()
	resp, err = client.Post(base+"/cb", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversized body: %d, want 413", resp.StatusCode)
	}

	// Two slow connections (headers never finished) hold both slots; the
	// header timeout frees them, and the next request is served.
	for range 2 {
		c, err := netDial(r.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("POST /cb HTTP/1.1\r\nHost: x\r\n")) //nolint:errcheck
		defer c.Close()
	}
	pt := s.Sign(9)
	r.Expect(pt, "77")
	resp, err = client.Post(base+"/cb", "application/json", strings.NewReader(`{"id":"77","passthrough":"`+pt+`"}`))
	if err != nil {
		t.Fatalf("after slow clients: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("verified callback: %d", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Errorf("answered after Shutdown")
	}
}

// TestSigner proves passthroughs verify only when made by the same secret,
// untouched.
func TestSigner(t *testing.T) {
	t.Parallel()
	s := NewSigner(bytes.Repeat([]byte{1}, SecretSize))
	pt := s.New()
	if !s.Verify(pt) {
		t.Fatalf("own passthrough %q does not verify", pt)
	}
	if s.New() == pt {
		t.Errorf("two submissions got one passthrough")
	}
	for _, bad := range []string{"", "v1", "v1..", "v2" + pt[2:], pt + "A", pt[:len(pt)-1], "v1.x." + strings.SplitN(pt, ".", 3)[2],
		NewSigner(bytes.Repeat([]byte{2}, SecretSize)).Sign(5)} {
		if s.Verify(bad) {
			t.Errorf("%q verified", bad)
		}
	}
}

// TestLoadSecret proves the secret is made once, mode 0600, and read back
// the same by a resumed run; a damaged one is an error, not a new secret.
func TestLoadSecret(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "checkpoint.secret")
	a, err := LoadSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || len(a) != SecretSize {
		t.Fatalf("secret file: %v %v, %d bytes", fi.Mode(), err, len(a))
	}
	b, err := LoadSecret(path)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("second load differs: %v", err)
	}
	os.Chmod(path, 0o644) //nolint:errcheck
	if _, err := LoadSecret(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after load, want 0600", fi.Mode().Perm())
	}
	os.WriteFile(path, []byte("short"), 0o600) //nolint:errcheck
	if _, err := LoadSecret(path); err == nil {
		t.Errorf("a short secret loaded")
	}
}

func ExampleSigner() {
	s := NewSigner(bytes.Repeat([]byte{0}, SecretSize))
	pt := s.Sign(1)
	fmt.Println(strings.HasPrefix(pt, "v1.1."), s.Verify(pt))
	// Output: true true
}

func netDial(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }

// TestEarlyCallbackHeld proves a callback that beats its submission's
// answer to the owner is held (202) and becomes an event when the
// submission is reported; one for a task the submission did not have is
// then counted unknown, and one with a passthrough of no submission in
// flight is refused at once.
func TestEarlyCallbackHeld(t *testing.T) {
	t.Parallel()
	r, s := testReceiver(t, Config{})
	pt := r.Passthrough()
	if !s.Verify(pt) {
		t.Fatalf("receiver's passthrough %q does not verify", pt)
	}
	if w := post(r, "POST", "/", `{"id":"10","passthrough":"`+pt+`"}`); w.Code != 202 {
		t.Fatalf("early callback: %d, want 202", w.Code)
	}
	if w := post(r, "POST", "/", `{"id":"11","passthrough":"`+pt+`"}`); w.Code != 202 {
		t.Fatalf("early callback: %d, want 202", w.Code)
	}
	select {
	case e := <-r.Events():
		t.Fatalf("event %+v before the submission was reported", e)
	default:
	}
	r.Expect(pt, "10", "12")
	if e := <-r.Events(); e.ID != "10" {
		t.Errorf("event %+v, want task 10", e)
	}
	if w := post(r, "POST", "/", `{"id":"10","passthrough":"`+pt+`"}`); w.Code != 200 {
		t.Errorf("duplicate after the event: %d", w.Code)
	}
	if w := post(r, "POST", "/", `{"id":"13","passthrough":"`+s.Sign(99)+`"}`); w.Code != 404 {
		t.Errorf("unknown task of no submission in flight: %d, want 404", w.Code)
	}
	c := r.Counts()
	if c.Accepted != 1 || c.Duplicates != 1 || c.Rejected[ReasonUnknownTask] != 2 {
		t.Errorf("counts %+v", c)
	}
}

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingUpstream records the request line of everything it receives.
type recordingUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	t.Helper()
	u := &recordingUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, fmt.Sprintf("%s %s body=%q", r.Method, r.URL.RequestURI(), body))
		u.mu.Unlock()
		w.Write([]byte("ok"))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *recordingUpstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

func limitsConfig(upstream string) string {
	return fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams:
  app: %s
routes:
  - path: /public/
    policy: public
  - path: /admin
    policy: deny
  - path: /
    policy: authenticated
auth:
  bcrypt_cost: 4
session:
  cookie_secure: false
`, upstream)
}

// rawExchange writes raw bytes on a new connection and returns everything
// the gateway answers until it closes the connection or goes quiet.
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, _ := io.ReadAll(conn)
	return string(b)
}

// A request with both Content-Length and Transfer-Encoding is read as
// chunked; what its body smuggles is parsed as a request of its own by the
// gateway, decided like any other, and never reaches the upstream as bytes
// of the first request or as an unchecked second request.
func TestRequestSmugglingIsNotForwarded(t *testing.T) {
	up := newRecordingUpstream(t)
	g := newTestGateway(t, limitsConfig(up.URL), nil)
	smuggled := "GET /admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	body := "0\r\n\r\n" + smuggled
	raw := "POST /public/form HTTP/1.1\r\nHost: x\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n", len(body)) +
		"Transfer-Encoding: chunked\r\n\r\n" + body
	out := rawExchange(t, g.public, raw)

	if n := strings.Count(out, "HTTP/1.1 "); n != 2 {
		t.Fatalf("got %d responses, want 2 (the POST, then the smuggled GET answered by the gateway):\n%s", n, out)
	}
	if !strings.Contains(out, "403 Forbidden") {
		t.Errorf("the smuggled GET /admin was not refused by the gateway:\n%s", out)
	}
	got := up.requests()
	if len(got) != 1 || got[0] != `POST /public/form body=""` {
		t.Errorf("upstream received %q, want only the POST with an empty body", got)
	}
}

// Headers above about 64 KiB get 431 from the HTTP server.
func TestOversizedHeadersGet431(t *testing.T) {
	up := newRecordingUpstream(t)
	g := newTestGateway(t, limitsConfig(up.URL), nil)
	big := strings.Repeat("a", 70<<10)
	out := rawExchange(t, g.public, "GET /public/x HTTP/1.1\r\nHost: x\r\nX-Big: "+big+"\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 431 ") {
		t.Errorf("answer = %.80q, want 431", out)
	}
	// Just under the limit still works.
	ok := strings.Repeat("a", 50<<10)
	out = rawExchange(t, g.public, "GET /public/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "+ok+"\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Errorf("50 KiB of headers = %.80q, want 200", out)
	}
	if len(up.requests()) != 1 {
		t.Errorf("upstream saw %d requests, want 1", len(up.requests()))
	}
}

// A client that trickles its headers (slowloris) is cut off after the
// read-header timeout instead of holding a connection forever.
func TestSlowHeadersAreCutOff(t *testing.T) {
	old := readHeaderTimeout
	readHeaderTimeout = 300 * time.Millisecond
	t.Cleanup(func() { readHeaderTimeout = old })
	up := newRecordingUpstream(t)
	g := newTestGateway(t, limitsConfig(up.URL), nil)

	conn, err := net.Dial("tcp", strings.TrimPrefix(g.public, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /public/x HTTP/1.1\r\nHost: x\r\n")
	closed := make(chan error, 1)
	go func() {
		// Keep trickling one header byte at a time, as slowloris does.
		for i := 0; i < 100; i++ {
			if _, err := io.WriteString(conn, "X"); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	go func() {
		// The deadline only keeps a broken test from hanging; a pass needs
		// the server to close the connection (EOF) well before it.
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.ReadAll(bufio.NewReader(conn))
		closed <- err
	}()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("reading from the gateway: %v, want the server to close the connection", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("the gateway kept a slowloris connection open")
	}
	if len(up.requests()) != 0 {
		t.Errorf("upstream saw %q", up.requests())
	}
}

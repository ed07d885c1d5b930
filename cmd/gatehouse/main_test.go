package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects a gateway's log output for assertions.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testGateway is a gateway started through run() on port 0.
type testGateway struct {
	public, admin string // base URLs
	configPath    string
	logs          *lockedBuffer
	stop          func() error
}

// newTestGateway writes cfg to a temp file and runs `gatehouse serve` on it
// until the test ends. The listen addresses must use port 0.
func newTestGateway(t *testing.T, cfg string, env map[string]string) *testGateway {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return startGateway(t, path, env)
}

func startGateway(t *testing.T, path string, env map[string]string) *testGateway {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"serve", "-config", path}, lookup, strings.NewReader(""), io.Discard, pw)
		pw.Close()
		done <- err
	}()
	g := &testGateway{configPath: path, logs: logs}
	addrs := make(chan [2]string, 1)
	go func() {
		var a [2]string
		sent := false
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			logs.Write([]byte(line + "\n"))
			var rec struct{ Msg, Listener, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				if rec.Listener == "public" {
					a[0] = "http://" + rec.Addr
				} else {
					a[1] = "http://" + rec.Addr
				}
				if a[0] != "" && a[1] != "" && !sent {
					sent = true
					addrs <- a
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addrs:
		g.public, g.admin = a[0], a[1]
	case err := <-done:
		cancel()
		t.Fatalf("gateway exited early: %v\nlogs:\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("gateway did not start\nlogs:\n%s", logs.String())
	}
	var once sync.Once
	var stopErr error
	g.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = context.DeadlineExceeded
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := g.stop(); err != nil {
			t.Errorf("gateway stop: %v", err)
		}
	})
	waitReady(t, g.admin)
	return g
}

func waitReady(t *testing.T, admin string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s/readyz never turned 200", admin)
}

// newClient returns a client with a cookie jar that does not follow
// redirects, so tests see the gateway's own answers.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:     jar,
		Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// do sends a request and returns status, headers and body.
func do(t *testing.T, c *http.Client, method, url, contentType, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

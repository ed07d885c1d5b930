package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/config"
)

// Test tokens, of the real shapes (credential.Parse): the proxy decides by
// shape before it asks the Authenticator.
var (
	tokAlice   = testToken(credential.SessionPrefix, aliceID, "A")
	tokExpired = testToken(credential.SessionPrefix, "fedcba9876543210fedcba9876543210", "B")
	// tokAliceAPI is an API token of alice's.
	tokAliceAPI = testToken(credential.APITokenPrefix, aliceID, "C")
)

const (
	aliceID    = "0123456789abcdef0123456789abcdef"
	aliceEmail = "alice@example.com"
)

// testToken builds a token of prefix's shape for userID, its secret the
// letter c repeated.
func testToken(prefix, userID, c string) string {
	return prefix + userID + ".9999999999." + strings.Repeat(c, credential.SecretLen)
}

// fakeAuth is an in-memory Authenticator: a map of tokens, a switch that
// makes the store unreachable, and a call counter.
type fakeAuth struct {
	sessions map[string]credential.Identity
	mu       sync.Mutex
	down     atomic.Bool
	calls    atomic.Int64
}

func newFakeAuth() *fakeAuth {
	return &fakeAuth{sessions: map[string]credential.Identity{
		tokAlice:    {UserID: aliceID, Email: aliceEmail, Method: credential.MethodPassword},
		tokAliceAPI: {UserID: aliceID, Email: aliceEmail, Method: credential.MethodToken},
	}}
}

func (f *fakeAuth) Authenticate(ctx context.Context, token string) (credential.Identity, error) {
	f.calls.Add(1)
	if _, ok := ctx.Deadline(); !ok {
		return credential.Identity{}, credential.ErrStoreUnavailable // the gateway must bound the call
	}
	if f.down.Load() {
		return credential.Identity{}, credential.ErrStoreUnavailable
	}
	f.mu.Lock()
	id, ok := f.sessions[token]
	f.mu.Unlock()
	if !ok {
		return credential.Identity{}, credential.ErrNoSession
	}
	return id, nil
}

// set stores (or with a zero UserID removes) the identity of token.
func (f *fakeAuth) set(token string, id credential.Identity) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id.UserID == "" {
		delete(f.sessions, token)
		return
	}
	f.sessions[token] = id
}

// seen is what the recording upstream received.
type seen struct {
	Method     string
	RequestURI string
	Host       string
	Header     http.Header
	RemoteAddr string
}

// recorder is a real httptest upstream that records every request.
type upstreamRecorder struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []seen
	handler atomic.Pointer[http.HandlerFunc] // optional override after recording
}

func newUpstream(t *testing.T) *upstreamRecorder {
	t.Helper()
	u := &upstreamRecorder{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{r.Method, r.RequestURI, r.Host, r.Header.Clone(), r.RemoteAddr})
		u.mu.Unlock()
		if h := u.handler.Load(); h != nil {
			(*h)(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstreamRecorder) setHandler(h http.HandlerFunc) { u.handler.Store(&h) }

// last returns the last request received, and whether there was any since
// the previous reset.
func (u *upstreamRecorder) last() (seen, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		return seen{}, false
	}
	return u.reqs[len(u.reqs)-1], true
}

func (u *upstreamRecorder) reset() {
	u.mu.Lock()
	u.reqs = nil
	u.mu.Unlock()
}

// testConfig is the routes of the path table: /public/ public, /admin
// deny, / authenticated, one upstream.
func testConfig(upstreamURL string) *config.Config {
	cfg := config.Default()
	cfg.Upstreams = map[string]config.Upstream{"app": {URL: upstreamURL}}
	cfg.Routes = []config.Route{
		{Path: "/public/", Policy: config.Public},
		{Path: "/admin", Policy: config.Deny, Name: "admin"},
		{Path: "/", Policy: config.Authenticated},
	}
	return cfg
}

type testGateway struct {
	gw   *Gateway
	srv  *httptest.Server
	up   *upstreamRecorder
	auth *fakeAuth
}

// newTestGateway serves a Gateway for cfg (testConfig when nil; mutate may
// adjust it) in front of a recording upstream.
func newTestGateway(t *testing.T, mutate func(*config.Config), opts ...func(*Options)) *testGateway {
	t.Helper()
	up := newUpstream(t)
	cfg := testConfig(up.srv.URL)
	if mutate != nil {
		mutate(cfg)
	}
	fa := newFakeAuth()
	o := Options{Config: cfg, Auth: fa}
	for _, f := range opts {
		f(&o)
	}
	gw, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	return &testGateway{gw: gw, srv: srv, up: up, auth: fa}
}

// do sends req through the gateway with a client that never follows
// redirects.
func (tg *testGateway) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

func (tg *testGateway) newRequest(t *testing.T, method, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, tg.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// rawResponse sends raw bytes (a whole request) on a fresh TCP connection
// to addr, so that no client cleans the target, and reads one response.
func rawResponse(t *testing.T, addr, method, raw string) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response to %q: %v", raw, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

func hostOf(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

package auth

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// testGateway is the four endpoints behind a real listener, with the real
// Service on miniredis, dispatched on the exact path as the proxy does.
type testGateway struct {
	t      *testing.T
	url    string
	host   string // host:port of the listener, what r.Host is
	mr     *miniredis.Miniredis
	svc    *Service
	cfg    *config.Config
	logs   *syncBuffer
	client *http.Client
}

// syncBuffer collects log output written from handler goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testClientIPHeader lets a test choose the client address that login
// throttling sees, through HandlerOptions.ClientIP.
const testClientIPHeader = "X-Test-Client-Ip"

func newTestGateway(t *testing.T, mutate func(*config.Config)) *testGateway {
	t.Helper()
	return newTestGatewayWith(t, mutate, false, nil)
}

// newProxiedTestGateway is newTestGateway with the real proxy.Gateway in
// front, as the command wires it: the endpoints are reached through its
// dispatch and ResponseWriter, and every other path is an authenticated
// route to the builtin echo backend, so that a test can see whether the
// proxy still honours a token. opts adjusts the HandlerOptions.
func newProxiedTestGateway(t *testing.T, opts func(*HandlerOptions)) *testGateway {
	t.Helper()
	return newTestGatewayWith(t, func(c *config.Config) {
		c.Upstreams = map[string]config.Upstream{"app": {URL: config.BuiltinEcho}}
		c.Routes = []config.Route{{Path: "/", Policy: config.Authenticated}}
	}, true, opts)
}

func newTestGatewayWith(t *testing.T, mutate func(*config.Config), proxied bool, opts func(*HandlerOptions)) *testGateway {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{
		Addr:        mr.Addr(),
		DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
		// Like OpenRedis: fail fast when the store is gone.
		MaxRetries: 1, DialerRetries: 1, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = rdb.Close() })

	cfg := config.Default()
	cfg.Auth.BcryptCost = 4
	cfg.Auth.Registration = config.RegistrationOpen
	if mutate != nil {
		mutate(cfg)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := NewService(NewStore(rdb, cfg.Redis.KeyPrefix), cfg, ServiceOptions{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ho := HandlerOptions{Logger: logger}
	if opts != nil {
		opts(&ho)
	}
	endpoints := NewHandlers(cfg, svc, ho)
	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := endpoints[r.URL.Path]
		if !ok && strings.HasPrefix(r.URL.Path, cfg.Auth.MePath+"/") {
			h, ok = endpoints[cfg.Auth.MePath+"/"]
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		// What the proxy puts in every request's context.
		ip := r.Header.Get(testClientIPHeader)
		if ip == "" {
			ip, _, _ = net.SplitHostPort(r.RemoteAddr)
		}
		h.ServeHTTP(w, r.WithContext(credential.NewContext(r.Context(), &credential.Info{ClientIP: ip})))
	})
	if proxied {
		gw, err := proxy.New(proxy.Options{Config: cfg, Auth: svc, Endpoints: endpoints, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(gw.Close)
		handler = gw
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return &testGateway{
		t: t, url: srv.URL, host: u.Host, mr: mr, svc: svc, cfg: cfg, logs: logs,
		client: &http.Client{
			// Redirects and cookies are what the tests look at.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       10 * time.Second,
		},
	}
}

// result is a response with its body read.
type result struct {
	status int
	header http.Header
	body   string
}

// request describes one request; header holds name/value pairs.
type request struct {
	method, path, contentType, body string
	header                          []string
	cookie                          string // session token sent as the cookie
}

func (g *testGateway) do(rq request) result {
	g.t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	req, err := http.NewRequest(rq.method, g.url+rq.path, body)
	if err != nil {
		g.t.Fatal(err)
	}
	if rq.contentType != "" {
		req.Header.Set("Content-Type", rq.contentType)
	}
	for i := 0; i+1 < len(rq.header); i += 2 {
		if strings.EqualFold(rq.header[i], "Host") {
			req.Host = rq.header[i+1]
			continue
		}
		req.Header.Add(rq.header[i], rq.header[i+1])
	}
	if rq.cookie != "" {
		req.AddCookie(&http.Cookie{Name: g.cfg.Session.CookieName, Value: rq.cookie})
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

const (
	jsonType = "application/json"
	formType = "application/x-www-form-urlencoded"
)

func credsJSON(email, password string) string {
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	return string(b)
}

func credsForm(email, password, rd string) string {
	v := url.Values{"email": {email}, "password": {password}}
	if rd != "" {
		v.Set("rd", rd)
	}
	return v.Encode()
}

// register creates an account over HTTP and returns its session token.
func (g *testGateway) register(email, password string) string {
	g.t.Helper()
	res := g.do(request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON(email, password)})
	if res.status != http.StatusCreated {
		g.t.Fatalf("register %s: status = %d, body %s", email, res.status, res.body)
	}
	return g.sessionToken(res)
}

// login signs in over HTTP and returns the new session token.
func (g *testGateway) login(email, password string) string {
	g.t.Helper()
	res := g.do(request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON(email, password)})
	if res.status != http.StatusOK {
		g.t.Fatalf("login %s: status = %d, body %s", email, res.status, res.body)
	}
	return g.sessionToken(res)
}

// sessionToken is the value of the one session cookie res sets.
func (g *testGateway) sessionToken(res result) string {
	g.t.Helper()
	// A sign-in also sets the device cookie (device.go), after the
	// session's.
	cs := withoutDeviceCookie(res.header.Values("Set-Cookie"))
	if len(cs) != 1 {
		g.t.Fatalf("Set-Cookie = %q, want one besides the device cookie", cs)
	}
	c, err := http.ParseSetCookie(cs[0])
	if err != nil || c.Name != g.cfg.Session.CookieName || !credential.IsToken(c.Value) {
		g.t.Fatalf("Set-Cookie %q is not a session cookie (%v)", cs[0], err)
	}
	return c.Value
}

// withoutDeviceCookie is cs without the Set-Cookie of the device cookie.
func withoutDeviceCookie(cs []string) []string {
	var out []string
	for _, c := range cs {
		if !strings.HasPrefix(c, DeviceCookieName+"=") {
			out = append(out, c)
		}
	}
	return out
}

// alive reports whether /me accepts token.
func (g *testGateway) alive(token string) bool {
	g.t.Helper()
	res := g.do(request{method: "GET", path: "/me", header: []string{"Authorization", "Bearer " + token}})
	switch res.status {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		return false
	}
	g.t.Fatalf("/me: status = %d, body %s", res.status, res.body)
	return false
}

// wantSessionCookie is the exact Set-Cookie of a new session with the
// default configuration.
func wantSessionCookie(token string) string {
	return "gatehouse_session=" + token + "; Path=/; Max-Age=1209600; HttpOnly; Secure; SameSite=Lax"
}

const wantClearCookie = "gatehouse_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"

// checkError asserts the documented JSON error for code and no-store.
func checkError(t *testing.T, res result, code apierror.Code) {
	t.Helper()
	if want := apierror.Status(code); res.status != want {
		t.Errorf("status = %d, want %d (body %s)", res.status, want, res.body)
	}
	if res.body != string(apierror.Body(code)) {
		t.Errorf("body = %s, want %s", res.body, apierror.Body(code))
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	checkNoStore(t, res)
}

func checkNoStore(t *testing.T, res result) {
	t.Helper()
	if cc := res.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
}

// checkUser asserts a {"user":{...}} body.
func checkUser(t *testing.T, res result, wantEmail string) User {
	t.Helper()
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	// GET /me adds groups, second factors and the session; a login or
	// registration answers the user alone.
	var body struct {
		User struct {
			ID            string    `json:"id"`
			Email         string    `json:"email"`
			Groups        *[]string `json:"groups"`
			SecondFactors *[]string `json:"second_factors"`
		} `json:"user"`
		Session *struct {
			ID        string    `json:"id"`
			CreatedAt time.Time `json:"created_at"`
			ExpiresAt time.Time `json:"expires_at"`
			MFA       bool      `json:"mfa"`
			Method    string    `json:"method"`
		} `json:"session"`
	}
	dec := json.NewDecoder(strings.NewReader(res.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("body %s: %v", res.body, err)
	}
	u := User{ID: body.User.ID, Email: body.User.Email}
	if u.Email != wantEmail || len(u.ID) != 32 {
		t.Errorf("user = %+v, want email %q and a 32-char id", u, wantEmail)
	}
	if s := body.Session; s != nil && (len(s.ID) != 32 || s.Method != "password" || s.ExpiresAt.IsZero() || body.User.Groups == nil || body.User.SecondFactors == nil) {
		t.Errorf("/me session = %+v, groups %v, factors %v: want a 32-char handle, method password, an end, and both lists", *s, body.User.Groups, body.User.SecondFactors)
	}
	return u
}

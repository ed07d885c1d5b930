package auth

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy"
)

// selfServiceTune is the configuration of the self-service tests: 3
// failures per window (testConfig) and tokens of at most 30 days.
func selfServiceTune(c *config.Config) {
	c.Auth.Tokens.MaxTTL = config.Duration(720 * time.Hour)
}

// newSelfServiceGateway puts the endpoints of e's Service behind the real
// proxy, as the command wires them, with every other path an authenticated
// route to the echo backend: a test sees both the endpoints' answers and
// whether the next proxied request still honours a credential.
func newSelfServiceGateway(t *testing.T, e *testEnv) *testGateway {
	t.Helper()
	cfg := e.cfg
	cfg.Upstreams = map[string]config.Upstream{"app": {URL: config.BuiltinEcho}}
	cfg.Routes = []config.Route{{Path: "/", Policy: config.Authenticated}}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	gw, err := proxy.New(proxy.Options{Config: cfg, Auth: e.svc, Endpoints: NewHandlers(cfg, e.svc, HandlerOptions{Logger: logger}), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return &testGateway{
		t: t, url: srv.URL, host: u.Host, mr: e.mr, svc: e.svc, cfg: cfg, logs: logs,
		client: &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       10 * time.Second,
		},
	}
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// proxied reports the status of a GET of a proxied path with tok as Bearer.
func (g *testGateway) proxied(tok string) int {
	g.t.Helper()
	return g.do(request{method: "GET", path: "/app/x", header: bearer(tok)}).status
}

// jsonBody marshals pairs of strings into a JSON object.
func jsonBody(kv ...string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// meSessions is GET /me/sessions's body.
type meSessions struct {
	Sessions []struct {
		ID         string     `json:"id"`
		CreatedAt  time.Time  `json:"created_at"`
		LastSeenAt *time.Time `json:"last_seen_at"`
		ExpiresAt  time.Time  `json:"expires_at"`
		IP         string     `json:"ip"`
		UserAgent  string     `json:"user_agent"`
		MFA        bool       `json:"mfa"`
		Method     string     `json:"method"`
		Current    bool       `json:"current"`
	} `json:"sessions"`
}

// meSession is GET /me's body.
type meSession struct {
	User struct {
		ID            string   `json:"id"`
		Email         string   `json:"email"`
		Groups        []string `json:"groups"`
		SecondFactors []string `json:"second_factors"`
	} `json:"user"`
	Session struct {
		ID        string    `json:"id"`
		CreatedAt time.Time `json:"created_at"`
		ExpiresAt time.Time `json:"expires_at"`
		MFA       bool      `json:"mfa"`
		Method    string    `json:"method"`
	} `json:"session"`
}

// createdTokenBody is POST /me/tokens's 201 body.
type createdTokenBody struct {
	Token     string    `json:"token"`
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func decodeJSON[T any](t *testing.T, res result) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(res.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("body %s: %v", res.body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("body %s: data after the object", res.body)
	}
	return v
}

// me returns GET /me for tok, failing unless it is 200.
func (g *testGateway) me(tok string) meSession {
	g.t.Helper()
	res := g.do(request{method: "GET", path: "/me", header: bearer(tok)})
	if res.status != http.StatusOK {
		g.t.Fatalf("GET /me = %d %s", res.status, res.body)
	}
	return decodeJSON[meSession](g.t, res)
}

// sessions returns GET /me/sessions for tok, failing unless it is 200.
func (g *testGateway) sessions(tok string) meSessions {
	g.t.Helper()
	res := g.do(request{method: "GET", path: "/me/sessions", header: bearer(tok)})
	if res.status != http.StatusOK {
		g.t.Fatalf("GET /me/sessions = %d %s", res.status, res.body)
	}
	checkNoStore(g.t, res)
	return decodeJSON[meSessions](g.t, res)
}

// createToken makes an API token for the session tok.
func (g *testGateway) createToken(tok, name, ttl string) createdTokenBody {
	g.t.Helper()
	res := g.do(request{method: "POST", path: "/me/tokens", contentType: jsonType, body: jsonBody("name", name, "ttl", ttl), header: bearer(tok)})
	if res.status != http.StatusCreated {
		g.t.Fatalf("POST /me/tokens = %d %s", res.status, res.body)
	}
	checkNoStore(g.t, res)
	return decodeJSON[createdTokenBody](g.t, res)
}

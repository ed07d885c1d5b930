package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy"
)

// testTOTPKey is the encryption key of the factor tests' configuration.
var testTOTPKey = bytes.Repeat([]byte{7}, SecretKeySize)

// factorTune is the configuration of the factor tests: a TOTP key, the
// builtin echo upstream behind "/" (authenticated) and "/admin/"
// (authenticated, mfa: required).
func factorTune(c *config.Config) {
	c.Auth.TOTP.EncryptionKey = testTOTPKey
	c.Upstreams = map[string]config.Upstream{"app": {URL: config.BuiltinEcho}}
	c.Routes = []config.Route{
		{Path: "/admin/", Policy: config.Authenticated, MFA: config.MFARequired},
		{Path: "/", Policy: config.Authenticated},
	}
}

// newFactorGateway puts the real proxy.Gateway, dispatching to the real
// endpoints, in front of e's Service behind a listener, as the command
// wires them.
func newFactorGateway(t *testing.T, e *testEnv) *testGateway {
	t.Helper()
	return newGatewayOn(t, e, e.svc)
}

// newGatewayOn is newFactorGateway for another Service on e's store (a
// second replica).
func newGatewayOn(t *testing.T, e *testEnv, svc *Service) *testGateway {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	endpoints := NewHandlers(e.cfg, svc, HandlerOptions{Logger: logger})
	gw, err := proxy.New(proxy.Options{Config: e.cfg, Auth: svc, Endpoints: endpoints, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	// localhost, not 127.0.0.1: the relying party's default id, and the
	// one host where browsers allow WebAuthn over plain http.
	u, _ := url.Parse(srv.URL)
	host := "localhost:" + u.Port()
	return &testGateway{t: t, url: "http://" + host, host: host, mr: e.mr, svc: svc, cfg: e.cfg, logs: logs,
		client: &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       10 * time.Second,
		}}
}

// enrolTOTP turns TOTP on for the user of the session tok over HTTP and
// returns the secret and the recovery codes. The clock then moves to the
// next step, so that the next code is not the one just used.
func enrolTOTP(t *testing.T, g *testGateway, e *testEnv, tok string) (string, []string) {
	t.Helper()
	res := g.do(request{method: "POST", path: "/me/totp", cookie: tok})
	if res.status != http.StatusOK {
		t.Fatalf("POST /me/totp: %d %s", res.status, res.body)
	}
	var begin struct {
		Secret     string `json:"secret"`
		OTPAuthURL string `json:"otpauth_url"`
	}
	if err := json.Unmarshal([]byte(res.body), &begin); err != nil || begin.Secret == "" {
		t.Fatalf("POST /me/totp body %s: %v", res.body, err)
	}
	res = g.do(request{method: "POST", path: "/me/totp/confirm", contentType: jsonType, cookie: tok,
		body: codeBody(codeAt(t, begin.Secret, e.clock.Now()))})
	if res.status != http.StatusOK {
		t.Fatalf("POST /me/totp/confirm: %d %s", res.status, res.body)
	}
	var confirm struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	if err := json.Unmarshal([]byte(res.body), &confirm); err != nil || len(confirm.RecoveryCodes) != recoveryCodeCount {
		t.Fatalf("confirm body %s: %v", res.body, err)
	}
	e.clock.add(totpPeriod * time.Second)
	return begin.Secret, confirm.RecoveryCodes
}

func codeBody(code string) string {
	b, _ := json.Marshal(map[string]string{"code": code})
	return string(b)
}

func loginCodeJSON(email, password, code string) string {
	b, _ := json.Marshal(map[string]string{"email": email, "password": password, "code": code})
	return string(b)
}

// meFactorsView is the session part of GET /me, and the user's factors.
type meFactorsView struct {
	MFA     bool
	Method  string
	Factors []string
}

func (g *testGateway) meFactors(tok string) meFactorsView {
	g.t.Helper()
	res := g.do(request{method: "GET", path: "/me", cookie: tok})
	if res.status != http.StatusOK {
		g.t.Fatalf("GET /me: %d %s", res.status, res.body)
	}
	var body struct {
		User struct {
			SecondFactors []string `json:"second_factors"`
		} `json:"user"`
		Session struct {
			MFA    bool   `json:"mfa"`
			Method string `json:"method"`
		} `json:"session"`
	}
	if err := json.Unmarshal([]byte(res.body), &body); err != nil {
		g.t.Fatalf("GET /me body %s: %v", res.body, err)
	}
	return meFactorsView{MFA: body.Session.MFA, Method: body.Session.Method, Factors: body.User.SecondFactors}
}

// apiToken mints an API token for the user of the session tok.
func apiToken(t *testing.T, e *testEnv, tok string) string {
	t.Helper()
	id, err := e.svc.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	tokenSeq++
	token, _, err := e.svc.CreateToken(context.Background(), id, "script "+strconv.Itoa(tokenSeq), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// tokenSeq names the API tokens of a test apart.
var tokenSeq int

// sessionOf is the session token res sets (beside other cookies).
func (g *testGateway) sessionOf(res result) string {
	g.t.Helper()
	c := setCookie(res, g.cfg.Session.CookieName)
	if c == nil || !credential.IsToken(c.Value) {
		g.t.Fatalf("no session cookie in %q", res.header.Values("Set-Cookie"))
	}
	return c.Value
}

// setCookie returns the Set-Cookie of res named name, or nil.
func setCookie(res result, name string) *http.Cookie {
	for _, line := range res.header.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(line); err == nil && c.Name == name {
			return c
		}
	}
	return nil
}

// hasSessionCookie reports whether res sets a session token.
func (g *testGateway) hasSessionCookie(res result) bool {
	c := setCookie(res, g.cfg.Session.CookieName)
	return c != nil && credential.IsToken(c.Value)
}

// withCookies adds a Cookie header with name=value pairs to rq.
func withCookies(rq request, pairs ...string) request {
	var parts []string
	for i := 0; i+1 < len(pairs); i += 2 {
		parts = append(parts, pairs[i]+"="+pairs[i+1])
	}
	rq.header = append(rq.header, "Cookie", strings.Join(parts, "; "))
	return rq
}

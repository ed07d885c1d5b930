package proxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/assertion"
)

const assertHeader = "X-Gatehouse-Assertion"

// assertClock is the fixed instant the assertion tests sign at.
var assertClock = time.Unix(1_900_000_000, 0)

// withAssertion turns the assertion on, adds a second upstream "other"
// (audience other-aud) behind /other/, and gives alice a live session.
func withAssertion() func(*config.Config) {
	return func(cfg *config.Config) {
		cfg.Identity.Assertion.Header = assertHeader
		cfg.Auth.PublicURL = "https://gate.example"
		cfg.Upstreams["other"] = config.Upstream{URL: cfg.Upstreams["app"].URL, Audience: "other-aud"}
		cfg.Routes = append([]config.Route{{Path: "/other/", Policy: config.Authenticated, Upstream: "other"}}, cfg.Routes...)
		for i := range cfg.Routes {
			if cfg.Routes[i].Upstream == "" {
				cfg.Routes[i].Upstream = "app"
			}
		}
	}
}

func newAssertionGateway(t *testing.T, opts ...func(*Options)) *testGateway {
	t.Helper()
	eph, err := assertion.EphemeralKeys()
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]func(*Options){func(o *Options) {
		o.EphemeralKeys = eph
		o.now = func() time.Time { return assertClock }
	}}, opts...)
	tg := newTestGateway(t, withAssertion(), opts...)
	live := credential.Identity{UserID: aliceID, Email: aliceEmail, Groups: "admins,ops", MFA: true,
		Method: credential.MethodPassword, SID: "s-1", Expires: assertClock.Add(time.Hour)}
	tg.auth.set(tokAlice, live)
	api := live
	api.Method, api.MFA, api.SID = credential.MethodToken, false, "t-1"
	tg.auth.set(tokAliceAPI, api)
	return tg
}

type assertionClaims struct {
	Email  string   `json:"email"`
	Groups []string `json:"groups"`
	AMR    []string `json:"amr"`
	SID    string   `json:"sid"`
	jwt.RegisteredClaims
}

// verifyAssertion checks tok as an upstream would, against the JWKS the
// gateway serves over HTTP.
func verifyAssertion(t *testing.T, tg *testGateway, tok, aud string) *assertionClaims {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k, err := keyfunc.NewDefaultCtx(ctx, []string{tg.srv.URL + assertion.JWKSPath})
	if err != nil {
		t.Fatal(err)
	}
	var c assertionClaims
	_, err = jwt.ParseWithClaims(tok, &c, k.Keyfunc, jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer("https://gate.example"), jwt.WithAudience(aud), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return assertClock }))
	if err != nil {
		t.Fatalf("assertion %q does not verify: %v", tok, err)
	}
	return &c
}

func TestAssertionThroughBothFrontDoors(t *testing.T) {
	tg := newAssertionGateway(t)
	tests := []struct {
		name     string
		path     string
		verify   bool // through forward-auth, asking about path
		token    string
		wantAud  string // "" = no assertion
		wantAMR  []string
		wantSID  string
		wantCode int
	}{
		{"proxied", "/x", false, tokAlice, "app", []string{"pwd", "otp"}, "s-1", 200},
		{"proxied other upstream", "/other/x", false, tokAlice, "other-aud", []string{"pwd", "otp"}, "s-1", 200},
		{"proxied API token", "/x", false, tokAliceAPI, "app", []string{"tok"}, "t-1", 200},
		{"public with a session", "/public/x", false, tokAlice, "app", []string{"pwd", "otp"}, "s-1", 200},
		{"public without a session", "/public/x", false, "", "", nil, "", 200},
		{"forward-auth", "/other/x", true, tokAlice, "other-aud", []string{"pwd", "otp"}, "s-1", 200},
		{"forward-auth public without a session", "/public/x", true, "", "", nil, "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg.up.reset()
			target := tc.path
			if tc.verify {
				target = "/_gatehouse/verify"
			}
			req := tg.newRequest(t, "GET", target)
			if tc.verify {
				req.Header.Set("X-Original-URI", tc.path)
			}
			req.Header.Set(assertHeader, "forged")
			req.Header.Set("X_Gatehouse_Assertion", "forged")
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			res, body := tg.do(t, req)
			if res.StatusCode != tc.wantCode {
				t.Fatalf("status = %d, want %d (%s)", res.StatusCode, tc.wantCode, body)
			}
			got := res.Header.Values(assertHeader)
			if !tc.verify {
				s, ok := tg.up.last()
				if !ok {
					t.Fatal("nothing reached the upstream")
				}
				got = s.Header.Values(assertHeader)
				if v := s.Header.Values("X_Gatehouse_Assertion"); len(v) > 0 {
					t.Errorf("a client's folded copy reached the upstream: %q", v)
				}
			}
			if tc.wantAud == "" {
				if len(got) > 0 {
					t.Errorf("%s = %q, want none", assertHeader, got)
				}
				return
			}
			if len(got) != 1 || got[0] == "forged" {
				t.Fatalf("%s = %q, want one assertion", assertHeader, got)
			}
			c := verifyAssertion(t, tg, got[0], tc.wantAud)
			if c.Subject != aliceID || c.Email != aliceEmail || !slices.Equal(c.Groups, []string{"admins", "ops"}) ||
				!slices.Equal(c.AMR, tc.wantAMR) || c.SID != tc.wantSID {
				t.Errorf("claims = %+v", c)
			}
			if c.IssuedAt.Unix() != assertClock.Unix() || c.ExpiresAt.Unix() != assertClock.Add(time.Minute).Unix() {
				t.Errorf("iat, exp = %v, %v; want now and now+60s", c.IssuedAt, c.ExpiresAt)
			}
		})
	}
}

// TestAssertionSessionEndedInBetween: the store vouched for a session whose
// absolute end passes before the assertion is signed. The request is
// answered as one without a session, and no identity goes upstream.
func TestAssertionSessionEndedInBetween(t *testing.T) {
	tg := newAssertionGateway(t)
	tg.auth.set(tokAlice, credential.Identity{UserID: aliceID, Email: aliceEmail, Method: credential.MethodPassword,
		SID: "s-1", Expires: assertClock})
	for _, tc := range []struct {
		path string
		want int
	}{{"/x", 401}, {"/public/x", 200}} {
		tg.up.reset()
		req := tg.newRequest(t, "GET", tc.path)
		req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokAlice})
		res, body := tg.do(t, req)
		if res.StatusCode != tc.want {
			t.Fatalf("%s: status = %d, want %d (%s)", tc.path, res.StatusCode, tc.want, body)
		}
		if tc.want != 200 {
			if !strings.Contains(body, `"unauthenticated"`) {
				t.Errorf("%s: body = %s, want unauthenticated", tc.path, body)
			}
			continue
		}
		s, _ := tg.up.last()
		if s.Header.Get("X-User-Id") != "" || s.Header.Get(assertHeader) != "" {
			t.Errorf("%s: identity went upstream: %v", tc.path, s.Header)
		}
	}
}

// TestAssertionSignError: an identity the Signer refuses is a 500, logged
// at most once a second, and nothing reaches the upstream.
func TestAssertionSignError(t *testing.T) {
	var logs lockedLog
	tg := newAssertionGateway(t, func(o *Options) { o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	tg.auth.set(tokAlice, credential.Identity{UserID: aliceID, Email: "bad\xffutf8@example.com", Method: credential.MethodPassword,
		SID: "s-1", Expires: assertClock.Add(time.Hour)})
	for range 3 {
		req := tg.newRequest(t, "GET", "/x")
		req.Header.Set("Authorization", "Bearer "+tokAlice)
		res, body := tg.do(t, req)
		if res.StatusCode != 500 || !strings.Contains(body, `"internal_error"`) {
			t.Fatalf("status = %d %s, want 500 internal_error", res.StatusCode, body)
		}
	}
	if _, ok := tg.up.last(); ok {
		t.Error("a request reached the upstream")
	}
	if n := strings.Count(logs.String(), "identity assertion error"); n != 1 {
		t.Errorf("logged %d lines, want 1 (rate-limited):\n%s", n, logs.String())
	}
}

func TestJWKSEndpoint(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	files, err := assertion.NewKeySet([]*ecdsa.PrivateKey{k})
	if err != nil {
		t.Fatal(err)
	}
	eph, err := assertion.EphemeralKeys()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		header string
		keys   []*ecdsa.PrivateKey
		want   []byte
	}{
		{"ephemeral", assertHeader, nil, eph.JWKS()},
		{"key files", assertHeader, []*ecdsa.PrivateKey{k}, files.JWKS()},
		{"key files without a header", "", []*ecdsa.PrivateKey{k}, files.JWKS()},
		{"nothing", "", nil, []byte(`{"keys":[]}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTestGateway(t, func(cfg *config.Config) {
				cfg.Identity.Assertion.Header = tc.header
				cfg.Identity.Assertion.Keys = tc.keys
				// A rule that would claim the path: the endpoint comes first.
				cfg.Routes = append([]config.Route{{Path: "/.well-known/", Policy: config.Public}}, cfg.Routes...)
			}, func(o *Options) { o.EphemeralKeys = eph })
			res, body := tg.do(t, tg.newRequest(t, "GET", assertion.JWKSPath))
			if res.StatusCode != 200 || !bytes.Equal([]byte(body), tc.want) {
				t.Errorf("GET = %d %s, want 200 %s", res.StatusCode, body, tc.want)
			}
			if got := res.Header.Get("Cache-Control"); got != "public, max-age=300" {
				t.Errorf("Cache-Control = %q", got)
			}
			if _, ok := tg.up.last(); ok {
				t.Error("the JWKS request reached the upstream")
			}
		})
	}
}

func TestNewNeedsEphemeralKeys(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1")
	cfg.Identity.Assertion.Header = assertHeader
	if _, err := New(Options{Config: cfg, Auth: newFakeAuth()}); !errors.Is(err, errNoEphemeralKeys) {
		t.Errorf("New err = %v, want errNoEphemeralKeys", err)
	}
}

func TestExplainJWKS(t *testing.T) {
	got, err := Explain(testConfig("http://127.0.0.1:1"), "GET", assertion.JWKSPath)
	if err != nil || got != "endpoint jwks (answered by the gateway itself)" {
		t.Errorf("Explain = %q, %v", got, err)
	}
}

// lockedLog collects a Gateway's log lines.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

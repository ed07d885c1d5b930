package assertion

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// testStart is an arbitrary fixed instant: no test reads the wall clock.
var testStart = time.Unix(1_900_000_000, 0)

// testClock is a clock the test advances by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: testStart} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestECKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newTestKey returns a fresh P-256 key.
func newTestKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	return newTestECKey(t, elliptic.P256())
}

func mustKeySet(t testing.TB, keys ...*ecdsa.PrivateKey) *KeySet {
	t.Helper()
	ks, err := NewKeySet(keys)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func mustSigner(t testing.TB, ks *KeySet, ttl time.Duration, clock *testClock) *Signer {
	t.Helper()
	s, err := NewSigner(ks, "https://gate.example", ttl, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwksServer serves JWKSHandler over a real listener; set swaps the set
// the way a reload would.
type jwksServer struct {
	url  string
	keys atomic.Pointer[KeySet]
}

func newJWKSServer(t *testing.T, ks *KeySet) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.keys.Store(ks)
	srv := httptest.NewServer(JWKSHandler(s.keys.Load))
	t.Cleanup(srv.Close)
	s.url = srv.URL + JWKSPath
	return s
}

func (s *jwksServer) set(ks *KeySet) { s.keys.Store(ks) }

// newVerifier is the independent verifier an upstream would run: keyfunc
// fetching the JWKS over HTTP, golang-jwt checking the token.
func newVerifier(t *testing.T, url string) keyfunc.Keyfunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fail := false
	k, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{url}, keyfunc.Override{NoErrorReturnFirstHTTPReq: &fail})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// verifiedClaims is how an upstream reads the assertion.
type verifiedClaims struct {
	Email  string   `json:"email"`
	Groups []string `json:"groups"`
	AMR    []string `json:"amr"`
	SID    string   `json:"sid"`
	jwt.RegisteredClaims
}

// verify checks tok as a strict upstream would: ES256 only, issuer,
// audience, exp required, iat not in the future, at the clock's time.
func verify(k keyfunc.Keyfunc, tok, aud string, clock *testClock) (*jwt.Token, *verifiedClaims, error) {
	var c verifiedClaims
	parsed, err := jwt.ParseWithClaims(tok, &c, k.Keyfunc,
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer("https://gate.example"),
		jwt.WithAudience(aud),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(clock.Now),
	)
	return parsed, &c, err
}

func testClaims() Claims {
	return Claims{
		Audience:   "app",
		Subject:    "0123456789abcdef0123456789abcdef",
		Email:      "ada@example.com",
		Groups:     []string{"admins", "ops"},
		AMR:        []string{"pwd", "otp"},
		SessionID:  "s-1",
		SessionEnd: testStart.Add(24 * time.Hour),
	}
}

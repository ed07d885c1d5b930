package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// now is a fixed instant: the verifier is given this clock, not the wall's.
var now = time.Unix(1_900_000_000, 0)

const (
	issuer   = "https://gate.example"
	audience = "app"
	header   = "X-Gatehouse-Assertion"
)

// gateway stands for Gatehouse's side: a key, its JWKS over HTTP, and
// tokens shaped like the gateway's assertion.
type gateway struct {
	key     *ecdsa.PrivateKey
	kid     string
	jwksURL string
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	point, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{key: key, kid: "test-kid"}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": g.kid,
		"x": b64(point[1:33]), "y": b64(point[33:65]),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(srv.Close)
	g.jwksURL = srv.URL + "/.well-known/jwks.json"
	return g
}

func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": issuer, "aud": audience, "sub": "0123456789abcdef0123456789abcdef",
		"email": "ada@example.com", "groups": []string{"admins"}, "amr": []string{"pwd", "otp"},
		"sid": "s-1", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	}
}

func (g *gateway) sign(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = g.kid
	s, err := tok.SignedString(g.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newKeys(t *testing.T, url string) keyfunc.Keyfunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	k, err := keyfunc.NewDefaultCtx(ctx, []string{url})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRequireAssertion(t *testing.T) {
	g := newGateway(t)
	keys := newKeys(t, g.jwksURL)
	app := httptest.NewServer(requireAssertion(keys.Keyfunc, header, issuer, audience, func() time.Time { return now }, http.HandlerFunc(echoClaims)))
	t.Cleanup(app.Close)

	with := func(edit func(jwt.MapClaims)) []string {
		c := goodClaims()
		edit(c)
		return []string{g.sign(t, c)}
	}
	good := g.sign(t, goodClaims())
	other := newGateway(t) // a key the JWKS does not list, same kid
	hs256, err := jwt.NewWithClaims(jwt.SigningMethodHS256, goodClaims()).SignedString([]byte(g.jwksURL))
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, goodClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+issuer+`","aud":"app","sub":"admin","exp":1900000060}`)) + "." + parts[2]

	tests := []struct {
		name   string
		values []string
		want   int
	}{
		{"valid", []string{good}, http.StatusOK},
		{"within the leeway after exp", with(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Second).Unix() }), http.StatusOK},
		{"missing", nil, http.StatusUnauthorized},
		{"two header lines", []string{good, good}, http.StatusUnauthorized},
		{"garbage", []string{"not.a.jws"}, http.StatusUnauthorized},
		{"expired", with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), http.StatusUnauthorized},
		{"no exp", with(func(c jwt.MapClaims) { delete(c, "exp") }), http.StatusUnauthorized},
		{"issued in the future", with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() }), http.StatusUnauthorized},
		{"another audience", with(func(c jwt.MapClaims) { c["aud"] = "billing" }), http.StatusUnauthorized},
		{"another issuer", with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), http.StatusUnauthorized},
		{"no subject", with(func(c jwt.MapClaims) { delete(c, "sub") }), http.StatusUnauthorized},
		{"unlisted key", []string{other.sign(t, goodClaims())}, http.StatusUnauthorized},
		{"HS256", []string{hs256}, http.StatusUnauthorized},
		{"alg none", []string{none}, http.StatusUnauthorized},
		{"payload swapped", []string{tampered}, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, app.URL+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range tc.values {
				req.Header.Add(header, v)
			}
			req.Header.Set("X-User-Id", "admin") // believed by nobody
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tc.want, body)
			}
			if tc.want != http.StatusOK {
				return
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got["sub"] != "0123456789abcdef0123456789abcdef" || got["email"] != "ada@example.com" || got["sid"] != "s-1" {
				t.Errorf("claims passed on = %v", got)
			}
		})
	}
}

// TestRun starts the program as a user would and sends it one request
// without and one with an assertion.
func TestRun(t *testing.T) {
	g := newGateway(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-jwks", g.jwksURL, "-issuer", issuer, "-audience", audience}, io.Discard, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	get := func(assertion string) int {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if assertion != "" {
			req.Header.Set(header, assertion)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(""); got != http.StatusUnauthorized {
		t.Errorf("without an assertion: status = %d, want 401", got)
	}
	// run uses the real clock, so this token is dated now.
	c := goodClaims()
	c["iat"], c["exp"] = time.Now().Unix(), time.Now().Add(time.Minute).Unix()
	if got := get(g.sign(t, c)); got != http.StatusOK {
		t.Errorf("with an assertion: status = %d, want 200", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel: %v", err)
	}
}

func TestRunRefusesMissingFlags(t *testing.T) {
	if err := run(context.Background(), []string{"-jwks", "http://127.0.0.1:1/jwks"}, io.Discard, nil); err == nil {
		t.Error("run without -issuer and -audience: no error")
	}
}

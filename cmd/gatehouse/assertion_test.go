package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/auth/redistest"
)

const (
	assertionHeader = "X-Gatehouse-Assertion"
	assertionIssuer = "https://gate.test"
	assertionTTL    = 30 * time.Second
)

// assertionConfig is a gateway with the assertion on, signed with the
// given key files, in front of two real upstreams: app (audience: its name)
// and billing (audience billing-api). redisBlock is "" for the embedded
// store.
func assertionConfig(app, billing, redisBlock string, keyFiles ...string) string {
	keys := ""
	if len(keyFiles) > 0 {
		keys = "    key_files: [" + strings.Join(keyFiles, ", ") + "]\n"
	}
	return fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
%s
upstreams:
  app: %q
  billing: {url: %q, audience: billing-api}
routes:
  - path: /public/
    policy: public
    upstream: app
  - path: /billing/
    policy: authenticated
    upstream: billing
  - path: /
    policy: authenticated
    upstream: app
auth:
  registration: open
  bcrypt_cost: 4
  groups:
    admins: [alice@example.com]
session:
  cookie_secure: false
identity:
  assertion:
    header: %s
    issuer: %s
    ttl: %s
%s`, redisBlock, app, billing, assertionHeader, assertionIssuer, assertionTTL, keys)
}

// assertionUpstream is a real upstream that keeps the assertion headers of
// every request it receives.
type assertionUpstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	got [][]string // the assertion header's values, one entry per request
}

func newAssertionUpstream(t *testing.T) *assertionUpstream {
	t.Helper()
	u := &assertionUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.got = append(u.got, r.Header.Values(assertionHeader))
		u.mu.Unlock()
		w.Write([]byte("ok"))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// take returns the assertion headers of the one request received since the
// last take.
func (u *assertionUpstream) take(t *testing.T) []string {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.got) != 1 {
		t.Fatalf("upstream received %d requests, want 1", len(u.got))
	}
	v := u.got[0]
	u.got = nil
	return v
}

func writeECKey(t *testing.T, dir, name string) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return k, path
}

// thumbprint is the RFC 7638 thumbprint of pub, computed by the RFC's own
// recipe rather than by the gateway's library.
func thumbprint(t *testing.T, pub *ecdsa.PublicKey) string {
	t.Helper()
	point, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	input := `{"crv":"P-256","kty":"EC","x":"` + b64(point[1:33]) + `","y":"` + b64(point[33:65]) + `"}`
	sum := sha256.Sum256([]byte(input))
	return b64(sum[:])
}

// jwksKids fetches the JWKS as an upstream would and returns its kids.
func jwksKids(t *testing.T, g *testGateway) []string {
	t.Helper()
	st, h, body := do(t, plainClient(), "GET", g.public+"/.well-known/jwks.json", "", "")
	if st != 200 || h.Get("Cache-Control") != "public, max-age=300" {
		t.Fatalf("GET jwks = %d Cache-Control %q %s", st, h.Get("Cache-Control"), body)
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatalf("jwks %s: %v", body, err)
	}
	kids := []string{}
	for _, k := range set.Keys {
		if k.D != "" {
			t.Fatal("the JWKS publishes a private key")
		}
		kids = append(kids, k.Kid)
	}
	return kids
}

// upstreamClaims is how an upstream reads the assertion.
type upstreamClaims struct {
	Email  string   `json:"email"`
	Groups []string `json:"groups"`
	AMR    []string `json:"amr"`
	SID    string   `json:"sid"`
	jwt.RegisteredClaims
}

// verifier is what an upstream runs: keyfunc fetching the gateway's JWKS
// over HTTP, golang-jwt checking the token. A fresh one stands for an
// upstream whose cached set has expired.
func verifier(t *testing.T, g *testGateway) keyfunc.Keyfunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fail := false
	k, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{g.public + "/.well-known/jwks.json"}, keyfunc.Override{NoErrorReturnFirstHTTPReq: &fail})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// verifyAs checks tok as the upstream of audience aud does, returning its
// kid and claims.
func verifyAs(k keyfunc.Keyfunc, tok, aud string) (string, *upstreamClaims, error) {
	var c upstreamClaims
	parsed, err := jwt.ParseWithClaims(tok, &c, k.Keyfunc, jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer(assertionIssuer), jwt.WithAudience(aud), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		return "", nil, err
	}
	if typ, _ := parsed.Header["typ"].(string); typ != "JWT" {
		return "", nil, fmt.Errorf("typ = %q, want JWT", typ)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid, &c, nil
}

// one returns the single assertion of vs, failing on none, several, or the
// client's forged copy.
func one(t *testing.T, what string, vs []string) string {
	t.Helper()
	if len(vs) != 1 || vs[0] == "forged" {
		t.Fatalf("%s: assertion headers %q, want one signed by the gateway", what, vs)
	}
	return vs[0]
}

func TestAssertionEndToEnd(t *testing.T) {
	dir := t.TempDir()
	k1, f1 := writeECKey(t, dir, "k1.pem")
	k2, f2 := writeECKey(t, dir, "k2.pem")
	kid1, kid2 := thumbprint(t, &k1.PublicKey), thumbprint(t, &k2.PublicKey)
	app, billing := newAssertionUpstream(t), newAssertionUpstream(t)
	g := newTestGateway(t, assertionConfig(app.srv.URL, billing.srv.URL, "", f1), nil)

	if got := jwksKids(t, g); !slices.Equal(got, []string{kid1}) {
		t.Fatalf("jwks kids = %v, want [%s]", got, kid1)
	}
	cookie, userID := registerCookie(t, g, "Alice@Example.com")
	st, _, body := do(t, plainClient(), "GET", g.public+"/me", "", "", "Cookie", cookie)
	var me struct {
		Session struct{ ID string } `json:"session"`
	}
	if err := json.Unmarshal([]byte(body), &me); st != 200 || err != nil || me.Session.ID == "" {
		t.Fatalf("GET /me = %d %s", st, body)
	}

	k := verifier(t, g)
	forged := []string{assertionHeader, "forged", "X_Gatehouse_Assertion", "forged"}
	get := func(path, cookie string) {
		t.Helper()
		hdr := forged
		if cookie != "" {
			hdr = append([]string{"Cookie", cookie}, forged...)
		}
		if st, _, body := do(t, plainClient(), "GET", g.public+path, "", "", hdr...); st != 200 {
			t.Fatalf("GET %s = %d %s", path, st, body)
		}
	}
	check := func(what, tok, aud, wantKid string) {
		t.Helper()
		kid, c, err := verifyAs(k, tok, aud)
		if err != nil {
			t.Fatalf("%s: the assertion does not verify for %s: %v", what, aud, err)
		}
		if kid != wantKid {
			t.Errorf("%s: kid = %s, want %s", what, kid, wantKid)
		}
		if c.Issuer != assertionIssuer || c.Subject != userID || c.Email != "alice@example.com" ||
			!slices.Equal(c.Audience, jwt.ClaimStrings{aud}) || !slices.Equal(c.Groups, []string{"admins"}) ||
			!slices.Equal(c.AMR, []string{"pwd"}) || c.SID != me.Session.ID {
			t.Errorf("%s: claims = %+v, want sub %s, sid %s", what, c, userID, me.Session.ID)
		}
		if c.IssuedAt == nil || c.ExpiresAt == nil || c.ExpiresAt.Sub(c.IssuedAt.Time) != assertionTTL {
			t.Errorf("%s: exp - iat = %v, want %v", what, c.ExpiresAt.Sub(c.IssuedAt.Time), assertionTTL)
		}
	}

	get("/app/x", cookie)
	appTok := one(t, "proxied", app.take(t))
	check("proxied to app", appTok, "app", kid1)
	if _, _, err := verifyAs(k, appTok, "billing-api"); err == nil {
		t.Error("app's assertion verifies for billing's audience")
	}
	get("/billing/x", cookie)
	check("proxied to billing", one(t, "billing", billing.take(t)), "billing-api", kid1)

	// No session: nothing signed, and the client's copies never arrive.
	get("/public/x", "")
	if got := app.take(t); len(got) != 0 {
		t.Errorf("public without a session: upstream received %q", got)
	}

	// Forward-auth's 200 carries it for the front proxy to copy.
	st, h, body := do(t, plainClient(), "GET", g.public+"/_gatehouse/verify", "", "",
		"Cookie", cookie, "X-Original-URI", "/billing/y", assertionHeader, "forged")
	if st != 200 {
		t.Fatalf("forward-auth = %d %s", st, body)
	}
	check("forward-auth", one(t, "forward-auth", h.Values(assertionHeader)), "billing-api", kid1)
	st, h, _ = do(t, plainClient(), "GET", g.public+"/_gatehouse/verify", "", "", "X-Original-URI", "/public/y")
	if st != 200 || len(h.Values(assertionHeader)) != 0 {
		t.Errorf("forward-auth without a session = %d %q, want 200 and no assertion", st, h.Values(assertionHeader))
	}

	// Rotation, step 1: the new key first, the old one still listed.
	rotate := func(files ...string) {
		t.Helper()
		cfg := assertionConfig(app.srv.URL, billing.srv.URL, "", files...)
		if err := os.WriteFile(g.configPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rotate(f2, f1)
	waitFor(t, func() bool { return slices.Equal(jwksKids(t, g), []string{kid2, kid1}) })
	k = verifier(t, g) // an upstream whose cached set expired
	check("signed before the rotation", appTok, "app", kid1)
	get("/app/x", cookie)
	newTok := one(t, "after rotation", app.take(t))
	check("signed after the rotation", newTok, "app", kid2)

	// Step 2, once ttl has passed: the old key is withdrawn.
	rotate(f2)
	waitFor(t, func() bool { return slices.Equal(jwksKids(t, g), []string{kid2}) })
	k = verifier(t, g)
	if _, _, err := verifyAs(k, appTok, "app"); err == nil {
		t.Error("an assertion of the withdrawn key still verifies")
	}
	check("signed by the remaining key", newTok, "app", kid2)
	if strings.Contains(g.logs.String(), "ephemeral key") {
		t.Error("the ephemeral-key warning was logged although key_files are set")
	}
}

// TestAssertionEphemeralKeyLivesAsLongAsTheProcess: without key_files the
// gateway warns and signs with a key of its own, which a reload keeps.
func TestAssertionEphemeralKeyLivesAsLongAsTheProcess(t *testing.T) {
	app, billing := newAssertionUpstream(t), newAssertionUpstream(t)
	cfg := assertionConfig(app.srv.URL, billing.srv.URL, "")
	g := newTestGateway(t, cfg, nil)
	before := jwksKids(t, g)
	if len(before) != 1 {
		t.Fatalf("jwks kids = %v, want one ephemeral key", before)
	}
	if !strings.Contains(g.logs.String(), "ephemeral key") {
		t.Errorf("no warning about the ephemeral key:\n%s", g.logs.String())
	}
	cookie, _ := registerCookie(t, g, "bob@example.com")

	changed := strings.Replace(cfg, "  - path: /public/\n", "  - path: /open/\n    policy: public\n    upstream: app\n  - path: /public/\n", 1)
	if err := os.WriteFile(g.configPath, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, plainClient(), g.public+"/open/x", 200)
	app.mu.Lock()
	app.got = nil
	app.mu.Unlock()
	if after := jwksKids(t, g); !slices.Equal(after, before) {
		t.Errorf("after a reload the JWKS lists %v, want the same key %v", after, before)
	}
	if st, _, body := do(t, plainClient(), "GET", g.public+"/app/x", "", "", "Cookie", cookie); st != 200 {
		t.Fatalf("GET = %d %s", st, body)
	}
	if kid, _, err := verifyAs(verifier(t, g), one(t, "after reload", app.take(t)), "app"); err != nil || kid != before[0] {
		t.Errorf("after reload: kid %s, err %v; want %s", kid, err, before[0])
	}
}

// TestAssertionCostsNoRedisCommand counts with INFO commandstats on a
// redis-server of its own (the counts are server-wide): N authenticated
// requests with the assertion on are exactly N GETEX, as without it.
func TestAssertionCostsNoRedisCommand(t *testing.T) {
	inst := redistest.Server(t, redistest.WithPassword("commandstats"))
	up := newAssertionUpstream(t)
	gw, token := newAuthedGateway(t, inst, up.srv.URL, true)
	serveOnce := func() {
		t.Helper()
		rec := httptest.NewRecorder()
		gw.handler.ServeHTTP(rec, benchRequest(t, token))
		if rec.Code != 200 {
			t.Fatalf("status = %d %s", rec.Code, rec.Body)
		}
		one(t, "proxied", up.take(t))
	}
	serveOnce() // the connection is open and handshaken

	admin := inst.Client(t)
	ctx := context.Background()
	if err := admin.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for range n {
		serveOnce()
	}
	info, err := admin.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := redistest.ParseCommandStats(info)
	if calls["getex"] != n {
		t.Errorf("getex calls = %d, want %d (commandstats %v)", calls["getex"], n, calls)
	}
	for cmd, c := range calls {
		switch cmd {
		case "getex", "info", "config|resetstat":
		default:
			t.Errorf("%d unexpected %q calls (commandstats %v)", c, cmd, calls)
		}
	}
}

// TestCheckWarnsEphemeralAssertionKey: with a real Redis (several replicas
// likely) and no key_files, check exits 0 with a warning naming the key.
func TestCheckWarnsEphemeralAssertionKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gw.yaml")
	yml := "redis: {url: redis://127.0.0.1:1}\nupstreams:\n  app: builtin:echo\nidentity:\n  assertion:\n    header: X-Gatehouse-Assertion\n"
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if err := run(t.Context(), []string{"check", "-config", file}, noEnv, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("check = %v, want exit 0\n%s", err, errOut.String())
	}
	want := "warning: " + file + ":5: identity.assertion.key_files: none given, so each process signs with an ephemeral key"
	if !strings.HasPrefix(errOut.String(), want) {
		t.Errorf("stderr = %q, want it to start %q", errOut.String(), want)
	}
}

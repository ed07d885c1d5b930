package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// frontProxyConfig is the gateway behind the front proxies: the forward-auth
// decisions come from its routes. Its own upstream (the echo) is never the
// app: a request the proxy routes to the gateway and the gateway proxies
// shows up there, not at the recording app.
const frontProxyConfig = `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
trusted_proxies: [127.0.0.1/32]
upstreams:
  demo: builtin:echo
routes:
  - path: /public/
    policy: public
  - path: /admin
    policy: deny
  - path: /ops/
    policy: authenticated
    groups: [ops]
  - path: /
    policy: authenticated
auth:
  registration: open
  bcrypt_cost: 4
  groups:
    staff: [nginx@example.com, caddy@example.com]
    readers: ["*@example.com"]
identity:
  assertion:
    header: X-Gatehouse-Assertion
session:
  cookie_secure: false
`

// TestFrontProxies puts Debian's nginx (auth_request) and Caddy
// (forward_auth), each configured by deploy/examples as it stands, in front
// of the gateway's verify endpoint and a recording app, and uses them from
// outside: sign-in through the proxy, identity from the gateway only, no
// gateway token in anything the app receives, the other cookies intact,
// 401 and 403 as each proxy passes them, and every gateway page routed to
// the gateway.
func TestFrontProxies(t *testing.T) {
	for _, kind := range []string{"nginx", "caddy"} {
		t.Run(kind, func(t *testing.T) {
			pkg := map[string]string{"nginx": "nginx-light", "caddy": "caddy"}[kind]
			bin := findProxy(t, kind, pkg)
			g := newTestGateway(t, frontProxyConfig, nil)
			app := newRecordingApp(t)
			gw := strings.TrimPrefix(g.public, "http://")
			var base string
			if kind == "nginx" {
				base = startNginx(t, bin, gw, app.addr())
			} else {
				base = startCaddy(t, bin, gw, app.addr())
			}
			checkFrontProxy(t, kind, base, g, app)
		})
	}
}

func checkFrontProxy(t *testing.T, kind, base string, g *testGateway, app *recordingApp) {
	const forged = "forged-by-client"
	anon := newClient(t)

	// No session: a browser navigation is sent to sign in, by nginx's
	// error_page, or with ?redirect=1 by the gateway through Caddy (with
	// the original absolute URL as rd).
	st, h, body := do(t, anon, "GET", base+"/app/page?a=1", "", "", "Accept", "text/html")
	if st != http.StatusFound {
		t.Fatalf("browser navigation without a session = %d %s, want 302", st, body)
	}
	loc, err := url.Parse(h.Get("Location"))
	if err != nil || loc.Path != "/login" {
		t.Fatalf("Location = %q, want the sign-in page", h.Get("Location"))
	}
	wantRD := "/app/page?a=1"
	if kind == "caddy" {
		wantRD = base + "/app/page?a=1"
	}
	if rd := loc.Query().Get("rd"); rd != wantRD {
		t.Errorf("rd = %q, want %q", rd, wantRD)
	}

	// An API call without a session: Caddy passes the gateway's 401 on,
	// nginx turns every 401 into its sign-in redirect.
	st, h, body = do(t, anon, "GET", base+"/app/page", "", "", "Accept", "application/json")
	switch kind {
	case "caddy":
		if st != http.StatusUnauthorized || !strings.Contains(body, `"unauthenticated"`) || h.Get("WWW-Authenticate") != `Bearer realm="gatehouse"` {
			t.Errorf("API call without a session = %d %v %s, want the gateway's 401", st, h, body)
		}
	case "nginx":
		if st != http.StatusFound || !strings.HasSuffix(h.Get("Location"), "/login?rd=/app/page") {
			t.Errorf("API call without a session = %d Location %q, want nginx's 302 to /login?rd=/app/page", st, h.Get("Location"))
		}
	}
	// A client that describes another original request itself is not
	// believed: the proxy sets those headers.
	st, _, _ = do(t, anon, "GET", base+"/app/spoof", "", "",
		"X-Forwarded-Uri", "/public/x", "X-Forwarded-Method", "GET", "X-Original-URI", "/public/x", "X-Original-URL", "http://x/public/x")
	if st == http.StatusOK {
		t.Errorf("forged X-Forwarded-Uri /public/x let an anonymous request through")
	}
	// The verify endpoint is not routed: through the proxy it is an app
	// path like any other, checked first.
	if st, _, _ := do(t, anon, "GET", base+"/_gatehouse/verify", "", "", "X-Forwarded-Uri", "/public/x"); st == http.StatusOK {
		t.Errorf("the verify endpoint answered 200 through the proxy")
	}
	if n := app.count("/app/page?a=1") + app.count("/app/page") + app.count("/app/spoof") + app.count("/_gatehouse/verify"); n != 0 {
		t.Fatalf("the app received %d requests without a session", n)
	}

	// The sign-in page loads through the proxy, from the gateway.
	st, h, body = do(t, anon, "GET", base+"/login", "", "", "Accept", "text/html")
	if st != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, "<form") || h.Get("X-Served-By") == "app" {
		t.Errorf("GET /login through %s = %d %q, want the gateway's sign-in page", kind, st, h.Get("Content-Type"))
	}

	// Register through the proxy: the session cookie is set for the
	// proxy's host.
	c := newClient(t)
	email := kind + "@example.com"
	st, h, body = do(t, c, "POST", base+"/register", "application/json", `{"email":"`+email+`","password":"correct horse battery"}`)
	if st != http.StatusCreated {
		t.Fatalf("register through %s = %d %s", kind, st, body)
	}
	var reg struct{ User struct{ ID string } }
	if err := json.Unmarshal([]byte(body), &reg); err != nil || reg.User.ID == "" {
		t.Fatalf("register body %s: %v", body, err)
	}
	token := strings.TrimPrefix(strings.SplitN(h.Get("Set-Cookie"), ";", 2)[0], "gatehouse_session=")
	if !strings.HasPrefix(token, "gh1.") {
		t.Fatalf("Set-Cookie %q carries no session token", h.Get("Set-Cookie"))
	}
	if st, _, body := do(t, c, "GET", base+"/me", "", ""); st != http.StatusOK || !strings.Contains(body, reg.User.ID) {
		t.Errorf("GET /me through %s = %d %s", kind, st, body)
	}

	// Signed in: the app gets the identity from the gateway, never the
	// client's copies, and the cookies without any gateway token.
	st, _, body = do(t, c, "GET", base+"/app/page?x=1", "", "",
		"X-User-Id", forged, "X-User-Email", forged, "X-User-Groups", forged, "X-Gatehouse-Assertion", forged,
		"Cookie", "theme=dark; lang=en; copy="+token, "Authorization", "Bearer "+token)
	if st != http.StatusOK || body != "app" {
		t.Fatalf("signed-in request = %d %s", st, body)
	}
	r := app.last(t, "/app/page?x=1")
	checkAppHeaders(t, r, token, forged)
	if got := r.Header.Values("X-User-Id"); len(got) != 1 || got[0] != reg.User.ID {
		t.Errorf("app X-User-Id = %q, want [%s]", got, reg.User.ID)
	}
	if got := r.Header.Values("X-User-Email"); len(got) != 1 || got[0] != email {
		t.Errorf("app X-User-Email = %q, want [%s]", got, email)
	}
	if got := r.Header.Values("Cookie"); len(got) != 1 || got[0] != "theme=dark; lang=en" {
		t.Errorf("app Cookie = %q, want [theme=dark; lang=en]", got)
	}
	if got := r.Header.Values("X-User-Groups"); len(got) != 1 || got[0] != "readers,staff" {
		t.Errorf("app X-User-Groups = %q, want [readers,staff] (auth.groups, sorted)", got)
	}
	// The verify answer carries the assertion and the proxy copies it.
	checkAssertion(t, r.Header.Values("X-Gatehouse-Assertion"), reg.User.ID)
	if got := r.Header.Values("Authorization"); len(got) != 0 {
		t.Errorf("app Authorization = %q, want none (it carried the session token)", got)
	}

	// Only the session cookie: the app gets no Cookie header at all; a
	// foreign Authorization passes.
	if st, _, body := do(t, c, "GET", base+"/app/only-session", "", "", "Authorization", "Basic YXBwOmtleQ=="); st != http.StatusOK {
		t.Fatalf("signed-in request = %d %s", st, body)
	}
	r = app.last(t, "/app/only-session")
	checkAppHeaders(t, r, token, forged)
	if got := r.Header.Values("Cookie"); len(got) != 0 {
		t.Errorf("app Cookie = %q, want none: only the session cookie was sent", got)
	}
	if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Basic YXBwOmtleQ==" {
		t.Errorf("app Authorization = %q, want the app's own credential", got)
	}

	// A script with the token as Bearer: identity yes, token no.
	if st, _, body := do(t, anon, "GET", base+"/app/bearer", "", "", "Authorization", "Bearer "+token); st != http.StatusOK {
		t.Fatalf("Bearer request = %d %s", st, body)
	}
	r = app.last(t, "/app/bearer")
	checkAppHeaders(t, r, token, forged)
	if r.Header.Get("X-User-Id") != reg.User.ID || len(r.Header.Values("Authorization")) != 0 {
		t.Errorf("Bearer request: app X-User-Id %q Authorization %q, want the id and no Authorization", r.Header.Get("X-User-Id"), r.Header.Values("Authorization"))
	}

	// A public route without a session: no identity at all, cookies as sent.
	if st, _, body := do(t, anon, "GET", base+"/public/x", "", "", "X-User-Id", forged, "X-User-Groups", forged, "Cookie", "theme=dark"); st != http.StatusOK || body != "app" {
		t.Fatalf("public request = %d %s", st, body)
	}
	r = app.last(t, "/public/x")
	checkAppHeaders(t, r, token, forged)
	for _, name := range []string{"X-User-Id", "X-User-Email", "X-User-Groups", "X-Gatehouse-Assertion"} {
		if got := r.Header.Values(name); len(got) != 0 {
			t.Errorf("public route without a session: app %s = %q, want none", name, got)
		}
	}
	if got := r.Header.Values("Cookie"); len(got) != 1 || got[0] != "theme=dark" {
		t.Errorf("public route: app Cookie = %q, want [theme=dark]", got)
	}

	// Denied: 403 as the proxy passes it (nginx with its own page, Caddy
	// with the gateway's JSON); the app sees nothing.
	st, _, body = do(t, c, "GET", base+"/admin", "", "")
	if st != http.StatusForbidden || (kind == "caddy" && !strings.Contains(body, `"forbidden"`)) {
		t.Errorf("GET /admin signed in = %d %s, want 403", st, body)
	}
	// Signed in, but not in the route's group: 403 too.
	st, _, body = do(t, c, "GET", base+"/ops/x", "", "")
	if st != http.StatusForbidden || (kind == "caddy" && !strings.Contains(body, `"forbidden"`)) {
		t.Errorf("GET /ops/x outside group ops = %d %s, want 403", st, body)
	}
	if app.count("/admin")+app.count("/ops/x") != 0 {
		t.Errorf("a denied request reached the app")
	}

	// Every page of the gateway's reaches the gateway, never the app,
	// whatever it answers today.
	for _, p := range []struct{ method, path string }{
		{"GET", "/account"},
		{"GET", "/account/gatehouse.js"},
		{"GET", "/.well-known/jwks.json"},
		{"POST", "/login/passkey/options"},
		{"GET", "/me/sessions"},
	} {
		before := gatewaySaw(g, p.method, p.path)
		// A body only where a browser sends one: a GET with a body
		// through Caddy 2.6.2 was aborted once in about 60 runs under
		// load ("reading from backend: use of closed network connection").
		ct, body := "", ""
		if p.method == "POST" {
			ct, body = "application/json", "{}"
		}
		st, h, _ := do(t, c, p.method, base+p.path, ct, body)
		if h.Get("X-Served-By") == "app" || app.count(p.path) != 0 {
			t.Errorf("%s %s through %s reached the app (%d)", p.method, p.path, kind, st)
			continue
		}
		waitFor(t, func() bool { return gatewaySaw(g, p.method, p.path) > before })
	}

	// Logout through the proxy ends the session for the proxy too.
	if st, _, body := do(t, c, "POST", base+"/logout", "", ""); st != http.StatusNoContent {
		t.Fatalf("logout through %s = %d %s", kind, st, body)
	}
	if st, _, _ := do(t, c, "GET", base+"/app/after-logout", "", "", "Cookie", "gatehouse_session="+token); st == http.StatusOK {
		t.Errorf("the logged-out token still passes %s", kind)
	}
}

// checkAppHeaders: nothing the app received holds the session token or a
// client's forged identity.
func checkAppHeaders(t *testing.T, r appRequest, token, forged string) {
	t.Helper()
	for name, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(v, token) {
				t.Errorf("%s: the app received the session token in %s", r.URI, name)
			}
			if strings.Contains(v, forged) {
				t.Errorf("%s: the app received the client's forged %s", r.URI, name)
			}
			if strings.Contains(v, "{http.") {
				t.Errorf("%s: the app received a Caddy placeholder in %s: %q", r.URI, name, v)
			}
		}
	}
}

// checkAssertion: the app got exactly one identity assertion, a compact
// JWS from the gateway whose subject is the user (its signature is the
// assertion package's to test; here it matters that the proxy passed the
// gateway's and no client's).
func checkAssertion(t *testing.T, got []string, userID string) {
	t.Helper()
	if len(got) != 1 {
		t.Errorf("app X-Gatehouse-Assertion = %q, want one", got)
		return
	}
	parts := strings.Split(got[0], ".")
	if len(parts) != 3 {
		t.Errorf("assertion %q is not a compact JWS", got[0])
		return
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Sub    string   `json:"sub"`
		Groups []string `json:"groups"`
	}
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		t.Errorf("assertion payload %q does not decode", parts[1])
		return
	}
	if claims.Sub != userID || strings.Join(claims.Groups, ",") != "readers,staff" {
		t.Errorf("assertion claims sub %q groups %q, want %s and [readers staff]", claims.Sub, claims.Groups, userID)
	}
}

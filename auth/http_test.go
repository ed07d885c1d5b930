package auth

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

func TestHTTPRegisterAndMe(t *testing.T) {
	g := newTestGateway(t, nil)
	res := g.do(request{method: "POST", path: "/register", contentType: "application/json; charset=utf-8",
		body: credsJSON("  Alice@Example.COM ", "correct horse")})
	if res.status != http.StatusCreated {
		t.Fatalf("status = %d, want 201 (%s)", res.status, res.body)
	}
	checkNoStore(t, res)
	u := checkUser(t, res, "alice@example.com")
	tok := g.sessionToken(res)
	if got := res.header.Get("Set-Cookie"); got != wantSessionCookie(tok) {
		t.Errorf("Set-Cookie = %q, want %q", got, wantSessionCookie(tok))
	}

	for _, rq := range []request{
		{method: "GET", path: "/me", cookie: tok},
		{method: "GET", path: "/me", header: []string{"Authorization", "Bearer " + tok}},
		{method: "GET", path: "/me", header: []string{"Authorization", "bearer " + tok}},
	} {
		res := g.do(rq)
		if res.status != http.StatusOK {
			t.Fatalf("%+v: status = %d, want 200 (%s)", rq, res.status, res.body)
		}
		checkNoStore(t, res)
		if got := checkUser(t, res, "alice@example.com"); got != u {
			t.Errorf("/me user = %+v, want %+v", got, u)
		}
		if sc := res.header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("/me set a cookie: %q", sc)
		}
	}

	head := g.do(request{method: "HEAD", path: "/me", cookie: tok})
	if head.status != http.StatusOK || head.body != "" {
		t.Errorf("HEAD /me: status = %d, body %q; want 200 and no body", head.status, head.body)
	}
	checkNoStore(t, head)

	// The password and the token never reach a log line.
	if logs := g.logs.String(); strings.Contains(logs, "correct horse") || strings.Contains(logs, tok) {
		t.Errorf("logs hold a secret: %s", logs)
	}
}

func TestHTTPCookieAttributes(t *testing.T) {
	g := newTestGateway(t, func(c *config.Config) {
		c.Session.CookieName = "gh"
		c.Session.CookieDomain = ".example.com"
		c.Session.CookieSecure = false
		c.Session.CookieSameSite = "strict"
		c.Session.TTL = config.Duration(time.Hour)
	})
	res := g.do(request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON("a@example.com", "password1")})
	tok := g.sessionToken(res)
	if got, want := res.header.Get("Set-Cookie"), "gh="+tok+"; Path=/; Domain=example.com; Max-Age=3600; HttpOnly; SameSite=Strict"; got != want {
		t.Errorf("Set-Cookie = %q, want %q", got, want)
	}
	res = g.do(request{method: "POST", path: "/logout", cookie: tok})
	if got, want := res.header.Get("Set-Cookie"), "gh=; Path=/; Domain=example.com; Max-Age=0; HttpOnly; SameSite=Strict"; got != want {
		t.Errorf("clearing Set-Cookie = %q, want %q", got, want)
	}
}

// TestHTTPErrors walks every JSON error of the four endpoints.
func TestHTTPErrors(t *testing.T) {
	g := newTestGateway(t, func(c *config.Config) {
		c.Auth.AllowedEmailDomains = []string{"example.com", "other.org"}
	})
	g.register("taken@example.com", "password1")
	long := strings.Repeat("x", 73)
	tests := []struct {
		name string
		rq   request
		code apierror.Code
	}{
		{"register duplicate key", request{method: "POST", path: "/register", contentType: jsonType, body: `{"email":"a@example.com","password":"password1","email":"b@example.com"}`}, apierror.InvalidRequest},
		{"register unknown field", request{method: "POST", path: "/register", contentType: jsonType, body: `{"email":"a@example.com","password":"password1","role":"admin"}`}, apierror.InvalidRequest},
		{"register trailing data", request{method: "POST", path: "/register", contentType: jsonType, body: `{"email":"a@example.com","password":"password1"} {}`}, apierror.InvalidRequest},
		{"register null", request{method: "POST", path: "/register", contentType: jsonType, body: `null`}, apierror.InvalidRequest},
		{"register null field", request{method: "POST", path: "/register", contentType: jsonType, body: `{"email":"a@example.com","password":null}`}, apierror.InvalidRequest},
		{"register key case", request{method: "POST", path: "/register", contentType: jsonType, body: `{"EMAIL":"a@example.com","password":"password1"}`}, apierror.InvalidRequest},
		{"register non-string", request{method: "POST", path: "/register", contentType: jsonType, body: `{"email":"a@example.com","password":12345678}`}, apierror.InvalidRequest},
		{"register missing field", request{method: "POST", path: "/register", contentType: jsonType, body: `{"email":"a@example.com"}`}, apierror.InvalidRequest},
		{"register invalid utf8", request{method: "POST", path: "/register", contentType: jsonType, body: "{\"email\":\"a@example.com\",\"password\":\"pass\xffword\"}"}, apierror.InvalidRequest},
		{"register empty body", request{method: "POST", path: "/register", contentType: jsonType}, apierror.InvalidRequest},
		{"register too large", request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON("a@example.com", strings.Repeat("p", 64<<10))}, apierror.PayloadTooLarge},
		{"register text/plain", request{method: "POST", path: "/register", contentType: "text/plain", body: credsJSON("a@example.com", "password1")}, apierror.UnsupportedMediaType},
		{"register no content type", request{method: "POST", path: "/register", body: credsJSON("a@example.com", "password1")}, apierror.UnsupportedMediaType},
		{"register multipart", request{method: "POST", path: "/register", contentType: "multipart/form-data; boundary=x", body: "--x--\r\n"}, apierror.UnsupportedMediaType},
		{"register invalid email", request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON("not-an-email", "password1")}, apierror.InvalidEmail},
		{"register short password", request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON("short@example.com", "short")}, apierror.WeakPassword},
		{"register 73-byte password", request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON("long@example.com", long)}, apierror.WeakPassword},
		{"register 25 euro signs", request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON("euro@example.com", strings.Repeat("€", 25))}, apierror.WeakPassword},
		{"register domain not allowed", request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON("x@evil.com", "password1")}, apierror.RegistrationClosed},
		{"register email taken", request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON(" TAKEN@example.com", "password2")}, apierror.EmailTaken},
		{"login unknown email", request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON("nobody@example.com", "password1")}, apierror.InvalidCredentials},
		{"login wrong password", request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON("taken@example.com", "wrong-password")}, apierror.InvalidCredentials},
		{"login 73-byte password", request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON("taken@example.com", "password1"+long)}, apierror.WeakPassword},
		{"login invalid email", request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON("taken", "password1")}, apierror.InvalidEmail},
		{"login duplicate key", request{method: "POST", path: "/login", contentType: jsonType, body: `{"email":"taken@example.com","password":"x","password":"password1"}`}, apierror.InvalidRequest},
		{"login too large announced", request{method: "POST", path: "/login", contentType: jsonType, body: `{"email":"a@b.c","password":"` + strings.Repeat(" ", 64<<10) + `"}`}, apierror.PayloadTooLarge},
		{"login wrong type", request{method: "POST", path: "/login", contentType: "application/xml", body: "<x/>"}, apierror.UnsupportedMediaType},
		{"logout text body", request{method: "POST", path: "/logout", contentType: "text/plain", body: "bye"}, apierror.UnsupportedMediaType},
		{"logout json array", request{method: "POST", path: "/logout", contentType: jsonType, body: "[]"}, apierror.InvalidRequest},
		{"logout too large", request{method: "POST", path: "/logout", contentType: jsonType, body: `{"a":"` + strings.Repeat("x", 64<<10) + `"}`}, apierror.PayloadTooLarge},
		{"me without session", request{method: "GET", path: "/me"}, apierror.Unauthenticated},
		{"me foreign bearer", request{method: "GET", path: "/me", header: []string{"Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"}}, apierror.Unauthenticated},
		{"me forged token", request{method: "GET", path: "/me", header: []string{"Authorization", "Bearer gh1.0123456789abcdef0123456789abcdef.99999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}, apierror.Unauthenticated},
		{"cross-site register", request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON("cs@example.com", "password1"), header: []string{"Sec-Fetch-Site", "cross-site"}}, apierror.CrossOrigin},
		{"cross-site logout", request{method: "POST", path: "/logout", header: []string{"Sec-Fetch-Site", "cross-site"}}, apierror.CrossOrigin},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, g.do(tc.rq), tc.code)
		})
	}
	if logs := g.logs.String(); strings.Contains(logs, "wrong-password") || strings.Contains(logs, "password1") {
		t.Errorf("logs hold a password: %s", logs)
	}
}

func TestHTTPMeUnauthenticatedHeaders(t *testing.T) {
	g := newTestGateway(t, nil)
	res := g.do(request{method: "GET", path: "/me"})
	checkError(t, res, apierror.Unauthenticated)
	if got := res.header.Get("WWW-Authenticate"); got != `Bearer realm="gatehouse"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	if sc := res.header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("no cookie sent, yet Set-Cookie %q", sc)
	}
	// A stale cookie is cleared; a dead Bearer token has no cookie to clear.
	tok := g.register("stale@example.com", "password1")
	if res := g.do(request{method: "POST", path: "/logout", cookie: tok}); res.status != http.StatusNoContent {
		t.Fatalf("logout: status = %d", res.status)
	}
	res = g.do(request{method: "GET", path: "/me", cookie: tok})
	checkError(t, res, apierror.Unauthenticated)
	if got := res.header.Values("Set-Cookie"); len(got) != 1 || got[0] != wantClearCookie {
		t.Errorf("Set-Cookie = %q, want %q", got, wantClearCookie)
	}
	res = g.do(request{method: "GET", path: "/me", cookie: "garbage"})
	checkError(t, res, apierror.Unauthenticated)
	if got := res.header.Values("Set-Cookie"); len(got) != 1 || got[0] != wantClearCookie {
		t.Errorf("garbage cookie: Set-Cookie = %q, want %q", got, wantClearCookie)
	}
	res = g.do(request{method: "GET", path: "/me", header: []string{"Authorization", "Bearer " + tok}})
	checkError(t, res, apierror.Unauthenticated)
	if sc := res.header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("dead bearer: Set-Cookie %q", sc)
	}
}

func TestHTTPCookieWinsOverBearer(t *testing.T) {
	g := newTestGateway(t, nil)
	a := g.register("a@example.com", "password1")
	b := g.register("b@example.com", "password1")
	res := g.do(request{method: "GET", path: "/me", cookie: a, header: []string{"Authorization", "Bearer " + b}})
	checkUser(t, res, "a@example.com")
	// A dead cookie counts too: the Bearer token does not rescue it.
	if err := g.svc.Logout(t.Context(), a, false); err != nil {
		t.Fatal(err)
	}
	res = g.do(request{method: "GET", path: "/me", cookie: a, header: []string{"Authorization", "Bearer " + b}})
	checkError(t, res, apierror.Unauthenticated)
}

func TestHTTPMethodNotAllowed(t *testing.T) {
	g := newTestGateway(t, nil)
	tests := []struct{ method, path, allow string }{
		{"PUT", "/login", "GET, HEAD, POST"},
		{"DELETE", "/login", "GET, HEAD, POST"},
		{"OPTIONS", "/register", "GET, HEAD, POST"},
		{"PATCH", "/register", "GET, HEAD, POST"},
		{"GET", "/logout", "POST"},
		{"HEAD", "/logout", "POST"},
		{"DELETE", "/logout", "POST"},
		{"POST", "/me", "GET, HEAD"},
		{"PUT", "/me", "GET, HEAD"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			// Cross-site on purpose: 405 comes before the CSRF check.
			res := g.do(request{method: tc.method, path: tc.path, header: []string{"Sec-Fetch-Site", "cross-site"}})
			if tc.method == "HEAD" {
				if res.status != http.StatusMethodNotAllowed {
					t.Errorf("status = %d, want 405", res.status)
				}
			} else {
				checkError(t, res, apierror.MethodNotAllowed)
			}
			if got := res.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestHTTPLoginSessionFixation(t *testing.T) {
	g := newTestGateway(t, nil)
	old := g.register("fix@example.com", "password1")
	res := g.do(request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON("FIX@example.com", "password1"), cookie: old})
	if res.status != http.StatusOK {
		t.Fatalf("login: status = %d (%s)", res.status, res.body)
	}
	checkNoStore(t, res)
	checkUser(t, res, "fix@example.com")
	fresh := g.sessionToken(res)
	if got := res.header.Get("Set-Cookie"); got != wantSessionCookie(fresh) {
		t.Errorf("Set-Cookie = %q, want %q", got, wantSessionCookie(fresh))
	}
	if fresh == old {
		t.Fatal("login kept the token the client brought")
	}
	if g.alive(old) {
		t.Error("the token sent with the login is still valid")
	}
	if !g.alive(fresh) {
		t.Error("the new token is not valid")
	}
	// The same through Authorization: Bearer.
	newer := g.sessionToken(g.do(request{method: "POST", path: "/login", contentType: jsonType,
		body: credsJSON("fix@example.com", "password1"), header: []string{"Authorization", "Bearer " + fresh}}))
	if g.alive(fresh) || !g.alive(newer) {
		t.Errorf("bearer login: old alive %v, new alive %v; want false, true", g.alive(fresh), g.alive(newer))
	}
	// A cookie and a Bearer token at once: both sessions end.
	viaCookie := g.login("fix@example.com", "password1")
	viaBearer := g.login("fix@example.com", "password1")
	both := g.sessionToken(g.do(request{method: "POST", path: "/login", contentType: jsonType,
		body: credsJSON("fix@example.com", "password1"), cookie: viaCookie, header: []string{"Authorization", "Bearer " + viaBearer}}))
	if g.alive(viaCookie) || g.alive(viaBearer) || !g.alive(both) {
		t.Errorf("cookie+bearer login: cookie alive %v, bearer alive %v, new alive %v; want false, false, true",
			g.alive(viaCookie), g.alive(viaBearer), g.alive(both))
	}
	// Registration ends the session the client brought along too.
	third := g.sessionToken(g.do(request{method: "POST", path: "/register", contentType: jsonType,
		body: credsJSON("second@example.com", "password1"), cookie: newer}))
	if g.alive(newer) || !g.alive(third) {
		t.Errorf("register: old alive %v, new alive %v; want false, true", g.alive(newer), g.alive(third))
	}
}

func TestHTTPLogout(t *testing.T) {
	g := newTestGateway(t, nil)
	g.register("out@example.com", "password1")
	a := g.login("out@example.com", "password1")
	b := g.login("out@example.com", "password1")
	c := g.login("out@example.com", "password1")
	tests := []struct {
		name string
		rq   request
	}{
		{"no body", request{method: "POST", path: "/logout", cookie: a}},
		{"json object", request{method: "POST", path: "/logout", contentType: jsonType, body: `{}`, header: []string{"Authorization", "Bearer " + b}}},
		{"without a session", request{method: "POST", path: "/logout"}},
		{"with a dead session", request{method: "POST", path: "/logout", cookie: a}},
		{"same-origin", request{method: "POST", path: "/logout", header: []string{"Sec-Fetch-Site", "same-origin"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := g.do(tc.rq)
			if res.status != http.StatusNoContent || res.body != "" {
				t.Errorf("status = %d, body %q; want 204 and none", res.status, res.body)
			}
			checkNoStore(t, res)
			if got := res.header.Values("Set-Cookie"); len(got) != 1 || got[0] != wantClearCookie {
				t.Errorf("Set-Cookie = %q, want %q", got, wantClearCookie)
			}
		})
	}
	if g.alive(a) || g.alive(b) {
		t.Error("a logged-out session is still valid")
	}
	if !g.alive(c) {
		t.Error("logout without all=1 ended another session")
	}
}

func TestHTTPLogoutAll(t *testing.T) {
	g := newTestGateway(t, nil)
	a := g.register("all@example.com", "password1")
	b := g.login("all@example.com", "password1")
	c := g.login("all@example.com", "password1")
	other := g.register("other@example.com", "password1")
	for i, tok := range []string{a, b, c} {
		// The logins above brought no token, so nothing ended yet.
		if !g.alive(tok) {
			t.Fatalf("session %d died before logout", i)
		}
	}
	res := g.do(request{method: "POST", path: "/logout?all=1", cookie: b})
	if res.status != http.StatusNoContent {
		t.Fatalf("status = %d, want 204", res.status)
	}
	for i, tok := range []string{a, b, c} {
		if g.alive(tok) {
			t.Errorf("session %d survived logout ?all=1", i)
		}
	}
	if !g.alive(other) {
		t.Error("logout ?all=1 ended another user's session")
	}
}

func TestHTTPLoginThrottled(t *testing.T) {
	g := newTestGateway(t, func(c *config.Config) {
		c.Auth.MaxLoginFailures = 2
		c.Auth.LoginFailureWindow = config.Duration(10 * time.Minute)
	})
	g.register("slow@example.com", "password1")
	bad := request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON("slow@example.com", "wrong-one"),
		header: []string{testClientIPHeader, "192.0.2.1"}}
	for i := 0; i < 2; i++ {
		checkError(t, g.do(bad), apierror.InvalidCredentials)
	}
	good := bad
	good.body = credsJSON("slow@example.com", "password1")
	res := g.do(good)
	checkError(t, res, apierror.TooManyAttempts)
	ra, err := strconv.Atoi(res.header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 600 {
		t.Errorf("Retry-After = %q, want 1..600 seconds", res.header.Get("Retry-After"))
	}
	if sc := res.header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("throttled login set a cookie: %q", sc)
	}
	// Another client address is counted apart (HandlerOptions.ClientIP).
	good.header = []string{testClientIPHeader, "192.0.2.2"}
	if res := g.do(good); res.status != http.StatusOK {
		t.Errorf("other address: status = %d, want 200 (%s)", res.status, res.body)
	}
}

package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/config"
)

// TestDecisionBothDoors runs every row of the decision table through both
// front doors, the proxy and forward-auth, and checks that they agree:
// the same decision, rendered as each door renders it.
func TestDecisionBothDoors(t *testing.T) {
	tg := newTestGateway(t, func(c *config.Config) {
		c.Auth.AccountPath = "/account"
		c.Routes = []config.Route{
			{Path: "/public/", Policy: config.Public},
			{Path: "/deny", Policy: config.Deny},
			{Path: "/admin/", Policy: config.Authenticated, Groups: []string{"admins", "ops"}},
			{Path: "/secure/", Policy: config.Authenticated, MFA: config.MFARequired},
			{Path: "/both/", Policy: config.Authenticated, Groups: []string{"admins"}, MFA: config.MFARequired},
			{Path: "/", Policy: config.Authenticated},
		}
	})
	tokOps := testToken(credential.SessionPrefix, "11111111111111111111111111111111", "E")
	tokMFA := testToken(credential.SessionPrefix, "22222222222222222222222222222222", "F")
	tokAdminMFA := testToken(credential.SessionPrefix, "33333333333333333333333333333333", "G")
	tokAdminAPI := testToken(credential.APITokenPrefix, "33333333333333333333333333333333", "H")
	tg.auth.set(tokOps, credential.Identity{UserID: "11111111111111111111111111111111", Email: "o@x.com", Groups: "dev,ops", Method: credential.MethodPassword})
	tg.auth.set(tokMFA, credential.Identity{UserID: "22222222222222222222222222222222", Email: "m@x.com", MFA: true, Method: credential.MethodPassword})
	tg.auth.set(tokAdminMFA, credential.Identity{UserID: "33333333333333333333333333333333", Email: "a@x.com", Groups: "admins", MFA: true, Method: credential.MethodPasskey})
	tg.auth.set(tokAdminAPI, credential.Identity{UserID: "33333333333333333333333333333333", Email: "a@x.com", Groups: "admins", Method: credential.MethodToken})

	tests := []struct {
		name   string
		path   string
		cookie string // session cookie
		bearer string
		nav    bool // a browser navigation
		proxy  int  // status through the proxy
		verify int  // status through forward-auth (?redirect=1 for navigations)
		code   string
		where  string // Location prefix of a redirect
	}{
		{"public, no session", "/public/x", "", "", false, 200, 200, "", ""},
		{"deny", "/deny", tokAlice, "", false, 403, 403, "forbidden", ""},
		{"authenticated, no session", "/app", "", "", false, 401, 401, "unauthenticated", ""},
		{"authenticated, navigation", "/app", "", "", true, 302, 302, "", "/login?rd="},
		{"authenticated, session", "/app", tokAlice, "", false, 200, 200, "", ""},
		{"groups, in none", "/admin/x", tokAlice, "", false, 403, 403, "forbidden", ""},
		{"groups, navigation in none: no sign-in loop", "/admin/x", tokAlice, "", true, 403, 403, "forbidden", ""},
		{"groups, in one", "/admin/x", tokOps, "", false, 200, 200, "", ""},
		{"groups, API token of a member", "/admin/x", "", tokAdminAPI, false, 200, 200, "", ""},
		{"mfa, password only", "/secure/x", tokAlice, "", false, 403, 403, "mfa_required", ""},
		{"mfa, navigation goes to the account page", "/secure/x", tokAlice, "", true, 302, 302, "", "/account?rd="},
		{"mfa, passed", "/secure/x", tokMFA, "", false, 200, 200, "", ""},
		{"mfa, an API token never satisfies it", "/secure/x", "", tokAdminAPI, false, 403, 403, "mfa_required", ""},
		{"groups and mfa both refuse: forbidden wins", "/both/x", tokOps, "", false, 403, 403, "forbidden", ""},
		{"groups and mfa pass", "/both/x", tokAdminMFA, "", false, 200, 200, "", ""},
		{"API token as the cookie is no session", "/app", tokAliceAPI, "", false, 401, 401, "unauthenticated", ""},
		{"API token as Bearer", "/app", "", tokAliceAPI, false, 200, 200, "", ""},
		{"unknown session", "/app", tokExpired, "", false, 401, 401, "unauthenticated", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, door := range []string{"proxy", "verify"} {
				var req *http.Request
				want := tc.proxy
				if door == "proxy" {
					req = tg.newRequest(t, "GET", tc.path)
				} else {
					want = tc.verify
					req = tg.newRequest(t, "GET", "/_gatehouse/verify?redirect=1")
					req.Header.Set("X-Forwarded-Uri", tc.path)
					req.Header.Set("X-Forwarded-Host", "app.example.com")
					req.Header.Set("X-Forwarded-Proto", "https")
				}
				if tc.cookie != "" {
					req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tc.cookie})
				}
				if tc.bearer != "" {
					req.Header.Set("Authorization", "Bearer "+tc.bearer)
				}
				if tc.nav {
					req.Header.Set("Accept", "text/html")
				}
				res, body := tg.do(t, req)
				if res.StatusCode != want {
					t.Errorf("%s: status = %d, want %d (%s)", door, res.StatusCode, want, body)
					continue
				}
				if tc.code != "" && !strings.Contains(body, `"code":"`+tc.code+`"`) {
					t.Errorf("%s: body %s, want code %s", door, body, tc.code)
				}
				if tc.where != "" {
					loc := res.Header.Get("Location")
					wantLoc := tc.where
					if door == "verify" {
						wantLoc += "https%3A%2F%2Fapp.example.com"
					}
					if !strings.HasPrefix(loc, wantLoc) {
						t.Errorf("%s: Location = %q, want prefix %q", door, loc, wantLoc)
					}
				}
			}
		})
	}
}

// TestGroupsHeader: the groups go upstream (and in forward-auth's answer)
// sorted and comma-separated, only from the session; a client's copy,
// in any spelling, never passes; a user in no group gets no header.
func TestGroupsHeader(t *testing.T) {
	tg := newTestGateway(t, nil)
	tokOps := testToken(credential.SessionPrefix, "11111111111111111111111111111111", "E")
	tg.auth.set(tokOps, credential.Identity{UserID: "11111111111111111111111111111111", Email: "o@x.com", Groups: "dev,ops"})
	for _, tc := range []struct {
		tok, want string
	}{{tokOps, "dev,ops"}, {tokAlice, ""}} {
		tg.up.reset()
		req := tg.newRequest(t, "GET", "/app")
		req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tc.tok})
		req.Header.Set("X-User-Groups", "admins")
		req.Header.Set("X_User_Groups", "admins")
		if res, body := tg.do(t, req); res.StatusCode != 200 {
			t.Fatalf("status = %d (%s)", res.StatusCode, body)
		}
		got, _ := tg.up.last()
		if g := got.Header["X-User-Groups"]; strings.Join(g, "|") != tc.want {
			t.Errorf("X-User-Groups upstream = %q, want %q", g, tc.want)
		}
		if g := got.Header["X_user_groups"]; g != nil {
			t.Errorf("X_User_Groups reached the upstream: %q", g)
		}
		req = tg.newRequest(t, "GET", "/_gatehouse/verify")
		req.Header.Set("X-Original-URI", "/app")
		req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tc.tok})
		req.AddCookie(&http.Cookie{Name: "theme", Value: "dark"})
		res, _ := tg.do(t, req)
		if g := res.Header.Get("X-User-Groups"); g != tc.want {
			t.Errorf("verify X-User-Groups = %q, want %q", g, tc.want)
		}
		// The app gets the browser's cookies without the session token.
		if c := res.Header.Get("Cookie"); c != "theme=dark" {
			t.Errorf("verify Cookie = %q, want theme=dark", c)
		}
	}
}

// TestTossedCookies: two different session cookies count as none; nothing
// is cleared (clearing would log the user out for the attacker).
func TestTossedCookies(t *testing.T) {
	tg := newTestGateway(t, nil)
	for _, cookies := range []string{
		"gatehouse_session=garbage; gatehouse_session=" + tokAlice,
		"gatehouse_session=" + tokAlice + "; gatehouse_session=" + tokExpired,
	} {
		req := tg.newRequest(t, "GET", "/app")
		req.Header.Set("Cookie", cookies)
		res, body := tg.do(t, req)
		if res.StatusCode != 401 {
			t.Errorf("%q: status = %d, want 401 (%s)", cookies, res.StatusCode, body)
		}
		if sc := res.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("%q: Set-Cookie = %q, want none", cookies, sc)
		}
	}
}

// TestForwardAuthDuplicateHeaders: a second line of a header that names
// the original request lets a client choose it behind a proxy that
// appends: 403.
func TestForwardAuthDuplicateHeaders(t *testing.T) {
	tg := newTestGateway(t, nil)
	for _, k := range []string{"X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host", "X-Original-Uri", "X-Original-Url", "X-Original-Method"} {
		req := tg.newRequest(t, "GET", "/_gatehouse/verify")
		req.Header.Set("X-Forwarded-Uri", "/public/x")
		req.Header[k] = append(req.Header[k], "/public/x", "/app")
		if k == "X-Original-Url" {
			req.Header[k] = []string{"https://a.example/public/x", "https://a.example/app"}
		}
		res, _ := tg.do(t, req)
		if res.StatusCode != 403 {
			t.Errorf("two %s lines: status = %d, want 403", k, res.StatusCode)
		}
	}
}

// TestForwardAuthReviewFindings: requests found to be decided differently
// through forward-auth than through the proxy.
func TestForwardAuthReviewFindings(t *testing.T) {
	tg := newTestGateway(t, nil)
	// A WebSocket handshake from a foreign page, its Upgrade and Connection
	// removed by the proxy in front (hop-by-hop), keeps its Origin and
	// Sec-WebSocket-* headers: the Origin check holds as it does proxied.
	req := tg.newRequest(t, "GET", "/_gatehouse/verify")
	req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokAlice})
	req.Header.Set("X-Forwarded-Uri", "/ws")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Origin", "https://evil.example")
	if res, body := tg.do(t, req); res.StatusCode != 403 {
		t.Errorf("foreign-origin WebSocket through forward-auth = %d (%s), want 403", res.StatusCode, body)
	}
	// An original URI no request line could carry (a blank: a proxy
	// appended to, or comma-joined, the client's header).
	for _, uri := range []string{"/public/x, /admin", "/public/x /admin", "/public/x\t/admin"} {
		for _, h := range []string{"X-Forwarded-Uri", "X-Original-Uri"} {
			req := tg.newRequest(t, "GET", "/_gatehouse/verify")
			req.Header.Set(h, uri)
			if res, _ := tg.do(t, req); res.StatusCode != 403 {
				t.Errorf("%s %q = %d, want 403", h, uri, res.StatusCode)
			}
		}
	}
}

// TestNamelessCookiesNeverPass: an upstream's nameless Set-Cookie
// ("=gatehouse_session=TOKEN", which browsers send back as the session
// cookie) is dropped, and a bare token in a client's Cookie header (a
// nameless cookie) never reaches the upstream.
func TestNamelessCookiesNeverPass(t *testing.T) {
	tg := newTestGateway(t, nil)
	tg.up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "=gatehouse_session="+tokExpired+"; Path=/")
		w.Header().Add("Set-Cookie", "gatehouse_session"+tokExpired)
		w.Header().Add("Set-Cookie", "theme=dark; Path=/")
		w.WriteHeader(200)
	})
	req := tg.newRequest(t, "GET", "/public/x")
	req.Header.Set("Cookie", "a=1; "+tokAlice)
	res, _ := tg.do(t, req)
	if got := res.Header.Values("Set-Cookie"); len(got) != 1 || got[0] != "theme=dark; Path=/" {
		t.Errorf("Set-Cookie to the client = %q, want only theme=dark", got)
	}
	got, _ := tg.up.last()
	if c := got.Header.Get("Cookie"); c != "a=1" {
		t.Errorf("Cookie upstream = %q, want a=1 (the bare token stripped)", c)
	}
}

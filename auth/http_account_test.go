package auth

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// formPost posts a form to path with session as the cookie, as a browser on
// the page does (same-origin).
func (g *testGateway) formPost(session, path string, kv ...string) result {
	g.t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return g.do(request{method: "POST", path: path, contentType: formType, body: v.Encode(), cookie: session,
		header: []string{"Sec-Fetch-Site", "same-origin"}})
}

// accountPage is GET /account with session as the cookie; it must be 200.
func (g *testGateway) accountPage(session, query string) string {
	g.t.Helper()
	res := g.do(request{method: "GET", path: "/account" + query, cookie: session})
	if res.status != http.StatusOK {
		g.t.Fatalf("GET /account%s = %d %s", query, res.status, res.body)
	}
	checkPageHeaders(g.t, res.header, res.body)
	return res.body
}

// wantSeeOther asserts a 303 to /account with the query want.
func wantSeeOther(t *testing.T, res result, want string) {
	t.Helper()
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/account?"+want {
		t.Errorf("status %d Location %q, want 303 to /account?%s (body %s)", res.status, res.header.Get("Location"), want, res.body)
	}
	checkNoStore(t, res)
}

var newTokenRE = regexp.MustCompile(`<input id="new-token" type="text" readonly value="(ght1\.[^"]+)" data-copy`)

func TestAccountPage(t *testing.T) {
	tune := func(c *config.Config) {
		selfServiceTune(c)
		c.Auth.Groups = map[string][]string{"ops": {"ann@example.com"}}
	}
	forEachStore(t, tune, func(t *testing.T, e *testEnv) {
		g := newSelfServiceGateway(t, e)
		const email, pw1, pw2 = "ann@example.com", "ann password 1", "ann password 2"
		cur := g.register(email, pw1)
		res := g.do(request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON(email, pw1),
			header: []string{"User-Agent", "Other <Browser>"}})
		other := g.sessionToken(res)
		otherSID := g.me(other).Session.ID
		bob := g.register("bob@example.com", "bob password 1")
		bobSID := g.me(bob).Session.ID

		t.Run("without a session", func(t *testing.T) {
			for _, rq := range []request{
				{method: "GET", path: "/account"},
				{method: "GET", path: "/account", cookie: "gh1.stale"},
				{method: "HEAD", path: "/account"},
			} {
				res := g.do(rq)
				if res.status != http.StatusFound || res.header.Get("Location") != "/login?rd=%2Faccount" {
					t.Errorf("%s /account cookie %q: %d Location %q, want 302 to /login?rd=%%2Faccount", rq.method, rq.cookie, res.status, res.header.Get("Location"))
				}
				checkNoStore(t, res)
			}
			res := g.formPost("", "/account/password", "current_password", pw1, "new_password", pw2, "confirm_password", pw2)
			if res.status != http.StatusSeeOther || res.header.Get("Location") != "/login?rd=%2Faccount" {
				t.Errorf("form post without a session: %d %q", res.status, res.header.Get("Location"))
			}
		})

		t.Run("page", func(t *testing.T) {
			body := g.accountPage(cur, "")
			for _, want := range []string{
				"<h1>Your account</h1>", html.EscapeString(email), "<dd>ops</dd>",
				`data-session="` + otherSID + `"`, "Other &lt;Browser&gt;", "This session",
				`action="/account/sessions/revoke"`, `action="/account/sessions/revoke-others"`, `action="/logout?all=1"`,
				`action="/account/password"`, `autocomplete="current-password"`, `id="confirm_password"`,
				`action="/account/tokens"`, `<option value="720h0m0s" selected>30 days</option>`,
				"127.0.0.1",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			for _, bad := range []string{cur, other, "gh1.", "ght1.", bobSID, `value="8760h`, "365 days"} {
				if strings.Contains(body, bad) {
					t.Errorf("page contains %q", bad)
				}
			}
			if n := strings.Count(body, "Sign out this session"); n != 1 {
				t.Errorf("%d per-session sign-out buttons, want 1 (not for this session)", n)
			}
			if strings.Contains(body, `class="notice" role="status">T`) {
				t.Errorf("a notice shows on a plain GET")
			}
		})

		t.Run("codes map to fixed text", func(t *testing.T) {
			body := g.accountPage(cur, "?done=password")
			if !strings.Contains(body, "Your password has been changed.") {
				t.Errorf("?done=password shows no notice")
			}
			body = g.accountPage(cur, "?error=weak_password")
			if !strings.Contains(body, "at least 8 characters") {
				t.Errorf("?error=weak_password shows no message")
			}
			for _, q := range []string{"?done=%3Cscript%3Ealert(1)%3C/script%3E", "?error=Your+bank+called", "?error=__proto__"} {
				body := g.accountPage(cur, q)
				if strings.Contains(body, "script>alert") || strings.Contains(body, "bank") || !strings.Contains(body, `role="alert"></div>`) || !strings.Contains(body, `role="status"></div>`) {
					t.Errorf("%s: the page shows something", q)
				}
			}
		})

		t.Run("refused", func(t *testing.T) {
			tok := g.createToken(cur, "script", "1h")
			checkError(t, g.do(request{method: "GET", path: "/account", header: bearer(tok.Token)}), apierror.Forbidden)
			res := g.do(request{method: "POST", path: "/account/tokens", contentType: formType, body: "name=x&ttl=1h", header: bearer(tok.Token)})
			checkError(t, res, apierror.Forbidden)
			checkError(t, g.do(request{method: "POST", path: "/account/sessions/revoke", contentType: formType, body: "id=" + otherSID,
				cookie: cur, header: []string{"Sec-Fetch-Site", "cross-site"}}), apierror.CrossOrigin)
			checkError(t, g.do(request{method: "POST", path: "/account/password", contentType: formType, body: "current_password=a",
				cookie: cur, header: []string{"Origin", "http://evil.example"}}), apierror.CrossOrigin)
			checkError(t, g.do(request{method: "GET", path: "/account/password", cookie: cur}), apierror.MethodNotAllowed)
			checkError(t, g.do(request{method: "POST", path: "/account/nothing", cookie: cur}), apierror.NotFound)
			checkError(t, g.do(request{method: "POST", path: "/account", cookie: cur}), apierror.MethodNotAllowed)
			wantSeeOther(t, g.formPost(cur, "/account/sessions/revoke", "id", "x", "extra", "y"), "error=invalid_request")
			wantSeeOther(t, g.formPost(cur, "/account/sessions/revoke", "id", bobSID), "error=not_found")
			wantSeeOther(t, g.formPost(cur, "/account/tokens/revoke", "id", otherSID), "error=not_found")
			wantSeeOther(t, g.formPost(cur, "/account/tokens", "name", "script", "ttl", "1h"), "error=invalid_token")
			wantSeeOther(t, g.formPost(cur, "/account/tokens", "name", "long", "ttl", "721h"), "error=invalid_token")
			wantSeeOther(t, g.formPost(cur, "/account/tokens", "name", "", "ttl", "1h"), "error=invalid_token")
			wantSeeOther(t, g.formPost(cur, "/account/password", "current_password", pw1, "new_password", pw2, "confirm_password", pw2+"x"), "error=mismatch")
			wantSeeOther(t, g.formPost(cur, "/account/password", "current_password", pw1, "new_password", "short", "confirm_password", "short"), "error=weak_password")
			wantSeeOther(t, g.formPost(cur, "/account/password", "current_password", "wrong", "new_password", pw2, "confirm_password", pw2), "error=invalid_credentials")
			for _, c := range []string{cur, other, bob, tok.Token} {
				if st := g.proxied(c); st != http.StatusOK {
					t.Errorf("a refused form post ended a credential: %d", st)
				}
			}
			if res := g.formPost(cur, "/account/tokens/revoke", "id", tok.ID); res.status != http.StatusSeeOther {
				t.Errorf("revoke the test token: %d", res.status)
			}
		})

		t.Run("token", func(t *testing.T) {
			res := g.formPost(cur, "/account/tokens", "name", "deploy <prod>", "ttl", "168h")
			if res.status != http.StatusOK {
				t.Fatalf("create a token from the page: %d %s", res.status, res.body)
			}
			checkPageHeaders(t, res.header, res.body)
			m := newTokenRE.FindStringSubmatch(res.body)
			if m == nil {
				t.Fatalf("the answer shows no new token in a readonly field with data-copy:\n%s", res.body)
			}
			tok := m[1]
			if st := g.proxied(tok); st != http.StatusOK {
				t.Errorf("the token from the page gets %d on a proxied path", st)
			}
			if !strings.Contains(res.body, "deploy &lt;prod&gt;") || strings.Count(res.body, "ght1.") != 1 {
				t.Errorf("the answer shows the name escaped and the token once")
			}
			body := g.accountPage(cur, "")
			if strings.Contains(body, tok) || strings.Contains(body, "ght1.") {
				t.Errorf("the token shows again on the next GET")
			}
			if !strings.Contains(body, "deploy &lt;prod&gt;") {
				t.Errorf("the list lacks the new token")
			}
			id := regexp.MustCompile(`data-token="([0-9a-f]{32})"`).FindStringSubmatch(body)
			if id == nil {
				t.Fatal("no token in the list")
			}
			wantSeeOther(t, g.formPost(cur, "/account/tokens/revoke", "id", id[1]), "done=token")
			if st := g.proxied(tok); st != http.StatusUnauthorized {
				t.Errorf("revoked from the page, the token gets %d", st)
			}
		})

		t.Run("sessions", func(t *testing.T) {
			wantSeeOther(t, g.formPost(cur, "/account/sessions/revoke", "id", otherSID), "done=session")
			if st := g.proxied(other); st != http.StatusUnauthorized {
				t.Errorf("the revoked session gets %d", st)
			}
			third := g.login(email, pw1)
			fourth := g.login(email, pw1)
			wantSeeOther(t, g.formPost(cur, "/account/sessions/revoke-others"), "done=others")
			for _, c := range []string{third, fourth} {
				if st := g.proxied(c); st != http.StatusUnauthorized {
					t.Errorf("after revoke-others another session gets %d", st)
				}
			}
			if st := g.proxied(cur); st != http.StatusOK {
				t.Errorf("revoke-others ended the current session: %d", st)
			}
			if st := g.proxied(bob); st != http.StatusOK {
				t.Errorf("revoke-others ended another user's session: %d", st)
			}
		})

		t.Run("password", func(t *testing.T) {
			other := g.login(email, pw1)
			tok := g.createToken(cur, "ci", "1h")
			wantSeeOther(t, g.formPost(cur, "/account/password", "current_password", pw1, "new_password", pw2, "confirm_password", pw2), "done=password")
			if st := g.proxied(cur); st != http.StatusOK {
				t.Errorf("the page's session gets %d after the change", st)
			}
			for _, c := range []string{other, tok.Token} {
				if st := g.proxied(c); st != http.StatusUnauthorized {
					t.Errorf("after the change another credential gets %d", st)
				}
			}
			g.login(email, pw2)
		})

		t.Run("own session", func(t *testing.T) {
			res := g.formPost(cur, "/account/sessions/revoke", "id", g.me(cur).Session.ID)
			wantSeeOther(t, res, "done=session")
			if got := res.header.Get("Set-Cookie"); got != wantClearCookie {
				t.Errorf("Set-Cookie %q, want the cookie cleared", got)
			}
			res = g.do(request{method: "GET", path: "/account", cookie: cur})
			if res.status != http.StatusFound {
				t.Errorf("after revoking its own session the page answers %d, want 302", res.status)
			}
		})
	})
}

func TestTTLChoices(t *testing.T) {
	tests := []struct {
		max  time.Duration
		want string // value:label, the selected one starred
	}{
		{8760 * time.Hour, "24h0m0s:1 day 168h0m0s:7 days *720h0m0s:30 days 2160h0m0s:90 days 8760h0m0s:365 days"},
		{720 * time.Hour, "24h0m0s:1 day 168h0m0s:7 days *720h0m0s:30 days"},
		{240 * time.Hour, "24h0m0s:1 day 168h0m0s:7 days *240h0m0s:The longest allowed (10 days)"},
		{time.Hour, "*1h0m0s:The longest allowed (1h0m0s)"},
	}
	for _, tc := range tests {
		var parts []string
		for _, c := range ttlChoices(tc.max) {
			p := c.Value + ":" + c.Label
			if c.Selected {
				p = "*" + p
			}
			parts = append(parts, p)
		}
		if got := strings.Join(parts, " "); got != tc.want {
			t.Errorf("ttlChoices(%v) = %q, want %q", tc.max, got, tc.want)
		}
	}
}

package auth

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestSelfServiceErrors tries every error row of the self-service
// endpoints, on miniredis and a real redis-server, through the proxy.
func TestSelfServiceErrors(t *testing.T) {
	forEachStore(t, selfServiceTune, func(t *testing.T, e *testEnv) {
		g := newSelfServiceGateway(t, e)
		ann := g.register("ann@example.com", "ann password 1")
		ann2 := g.login("ann@example.com", "ann password 1")
		bob := g.register("bob@example.com", "bob password 1")
		annTok := g.createToken(ann, "ci", "24h")
		bobTok := g.createToken(bob, "ci", "24h")
		bobSID := g.me(bob).Session.ID
		ann2SID := g.me(ann2).Session.ID
		const madeUp = "0123456789abcdef0123456789abcdef"

		crossSite := []string{"Sec-Fetch-Site", "cross-site"}
		evilOrigin := []string{"Origin", "http://evil.example"}
		tokenJSON := func(name, ttl string) string { return jsonBody("name", name, "ttl", ttl) }
		pwJSON := func(cur, next string) string { return jsonBody("current_password", cur, "new_password", next) }
		tests := []struct {
			name         string
			method, path string
			cred         string // sent as Bearer; "" sends none
			header       []string
			body         string
			want         apierror.Code
		}{
			{"me without session", "GET", "/me", "", nil, "", apierror.Unauthenticated},
			{"sessions without session", "GET", "/me/sessions", "", nil, "", apierror.Unauthenticated},
			{"delete session without session", "DELETE", "/me/sessions/" + ann2SID, "", nil, "", apierror.Unauthenticated},
			{"password without session", "POST", "/me/password", "", nil, pwJSON("ann password 1", "another password"), apierror.Unauthenticated},
			{"password without session, bad body", "POST", "/me/password", "", nil, "{", apierror.Unauthenticated},
			{"tokens without session", "GET", "/me/tokens", "", nil, "", apierror.Unauthenticated},
			{"create token without session", "POST", "/me/tokens", "", nil, tokenJSON("x", "1h"), apierror.Unauthenticated},
			{"delete token without session", "DELETE", "/me/tokens/" + annTok.ID, "", nil, "", apierror.Unauthenticated},
			{"malformed token", "GET", "/me/sessions", "gh1.nonsense", nil, "", apierror.Unauthenticated},

			{"another user's session", "DELETE", "/me/sessions/" + bobSID, ann, nil, "", apierror.NotFound},
			{"made-up session id", "DELETE", "/me/sessions/" + madeUp, ann, nil, "", apierror.NotFound},
			{"short session id", "DELETE", "/me/sessions/abc", ann, nil, "", apierror.NotFound},
			{"session id with a slash", "DELETE", "/me/sessions/" + madeUp + "/x", ann, nil, "", apierror.NotFound},
			{"another user's token", "DELETE", "/me/tokens/" + bobTok.ID, ann, nil, "", apierror.NotFound},
			{"made-up token id", "DELETE", "/me/tokens/" + madeUp, ann, nil, "", apierror.NotFound},
			{"a session id as token id", "DELETE", "/me/tokens/" + ann2SID, ann, nil, "", apierror.NotFound},
			{"unknown endpoint", "GET", "/me/nothing", ann, nil, "", apierror.NotFound},

			{"delete session cross-site", "DELETE", "/me/sessions/" + ann2SID, ann, crossSite, "", apierror.CrossOrigin},
			{"delete session foreign origin", "DELETE", "/me/sessions/" + ann2SID, ann, evilOrigin, "", apierror.CrossOrigin},
			{"delete token cross-site", "DELETE", "/me/tokens/" + annTok.ID, ann, crossSite, "", apierror.CrossOrigin},
			{"password cross-site", "POST", "/me/password", ann, crossSite, pwJSON("ann password 1", "another password"), apierror.CrossOrigin},
			{"create token foreign origin", "POST", "/me/tokens", ann, evilOrigin, tokenJSON("x", "1h"), apierror.CrossOrigin},

			{"token lists tokens", "GET", "/me/tokens", annTok.Token, nil, "", apierror.Forbidden},
			{"token mints a token", "POST", "/me/tokens", annTok.Token, nil, tokenJSON("x", "1h"), apierror.Forbidden},
			{"token revokes a token", "DELETE", "/me/tokens/" + annTok.ID, annTok.Token, nil, "", apierror.Forbidden},
			{"token changes the password", "POST", "/me/password", annTok.Token, nil, pwJSON("ann password 1", "another password"), apierror.Forbidden},
			// Every request: a method that is not allowed is refused as a
			// token's too, so the answer never hints that it could work.
			{"token GETs the password", "GET", "/me/password", annTok.Token, nil, "", apierror.Forbidden},
			{"token PUTs tokens", "PUT", "/me/tokens", annTok.Token, nil, "", apierror.Forbidden},
			{"token GETs one token", "GET", "/me/tokens/" + annTok.ID, annTok.Token, nil, "", apierror.Forbidden},
			{"revoked-looking token on tokens", "PUT", "/me/tokens", "ght1." + madeUp + ".9999999999." + strings.Repeat("A", 43), nil, "", apierror.Unauthenticated},

			{"empty token name", "POST", "/me/tokens", ann, nil, tokenJSON("", "1h"), apierror.InvalidRequest},
			{"blank token name", "POST", "/me/tokens", ann, nil, tokenJSON("   ", "1h"), apierror.InvalidRequest},
			{"duplicate token name", "POST", "/me/tokens", ann, nil, tokenJSON("ci", "1h"), apierror.InvalidRequest},
			{"ttl above max_ttl", "POST", "/me/tokens", ann, nil, tokenJSON("long", "721h"), apierror.InvalidRequest},
			{"ttl not a duration", "POST", "/me/tokens", ann, nil, tokenJSON("bad", "a month"), apierror.InvalidRequest},
			{"ttl negative", "POST", "/me/tokens", ann, nil, tokenJSON("neg", "-1h"), apierror.InvalidRequest},
			{"token unknown field", "POST", "/me/tokens", ann, nil, `{"name":"x","ttl":"1h","scope":"all"}`, apierror.InvalidRequest},
			{"token missing ttl", "POST", "/me/tokens", ann, nil, `{"name":"x"}`, apierror.InvalidRequest},
			{"token as a form", "POST", "/me/tokens", ann, []string{"Content-Type", formType}, "name=x&ttl=1h", apierror.UnsupportedMediaType},
			{"weak new password", "POST", "/me/password", ann, nil, pwJSON("ann password 1", "short"), apierror.WeakPassword},
			{"password missing field", "POST", "/me/password", ann, nil, `{"current_password":"ann password 1"}`, apierror.InvalidRequest},

			{"PUT sessions", "PUT", "/me/sessions", ann, nil, "", apierror.MethodNotAllowed},
			{"GET one session", "GET", "/me/sessions/" + ann2SID, ann, nil, "", apierror.MethodNotAllowed},
			{"GET password", "GET", "/me/password", ann, nil, "", apierror.MethodNotAllowed},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				rq := request{method: tc.method, path: tc.path, header: append([]string(nil), tc.header...), body: tc.body}
				if tc.body != "" && !slices.Contains(tc.header, "Content-Type") {
					rq.contentType = jsonType
				}
				if tc.cred != "" {
					rq.header = append(rq.header, bearer(tc.cred)...)
				}
				res := g.do(rq)
				checkError(t, res, tc.want)
				if tc.want == apierror.Unauthenticated && res.header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
			})
		}
		// Nothing above ended anything.
		for _, tok := range []string{ann, ann2, bob, annTok.Token, bobTok.Token} {
			if st := g.proxied(tok); st != http.StatusOK {
				t.Errorf("after the refused requests, a credential gets %d on a proxied path, want 200", st)
			}
		}
		if n := len(g.sessions(ann).Sessions); n != 2 {
			t.Errorf("ann has %d sessions, want 2", n)
		}
	})
}

// TestSelfServiceSessions: the listing, the handle and revocation.
func TestSelfServiceSessions(t *testing.T) {
	forEachStore(t, selfServiceTune, func(t *testing.T, e *testEnv) {
		g := newSelfServiceGateway(t, e)
		first := g.register("ann@example.com", "ann password 1")
		e.advance(time.Second) // the second session is the newer one
		res := g.do(request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON("ann@example.com", "ann password 1"),
			header: []string{"User-Agent", "Second Browser/1.0"}})
		second := g.sessionToken(res)
		bob := g.register("bob@example.com", "bob password 1")

		list := g.sessions(first).Sessions
		if len(list) != 2 {
			t.Fatalf("%d sessions, want 2: %+v", len(list), list)
		}
		newest, oldest := list[0], list[1]
		if !newest.CreatedAt.After(oldest.CreatedAt) {
			t.Errorf("sessions not newest first: %v then %v", newest.CreatedAt, oldest.CreatedAt)
		}
		if newest.Current || !oldest.Current {
			t.Errorf("current = %v, %v; want the first session (the oldest) marked", newest.Current, oldest.Current)
		}
		if newest.UserAgent != "Second Browser/1.0" || newest.IP != "127.0.0.1" || newest.Method != "password" || newest.MFA {
			t.Errorf("newest session %+v, want the second login's user agent, 127.0.0.1, password, no mfa", newest)
		}
		// The session a registration opens records its client too.
		if oldest.UserAgent != "Go-http-client/1.1" || oldest.IP != "127.0.0.1" {
			t.Errorf("the registration's session %+v, want Go's user agent and 127.0.0.1", oldest)
		}
		for _, s := range list {
			if !hex32.MatchString(s.ID) {
				t.Errorf("session id %q is not 32 hex", s.ID)
			}
			if s.CreatedAt.Location() != time.UTC || s.ExpiresAt.Location() != time.UTC {
				t.Errorf("timestamps not UTC: %v %v", s.CreatedAt, s.ExpiresAt)
			}
			if want := s.CreatedAt.Add(time.Hour); !s.ExpiresAt.Equal(want) {
				t.Errorf("expires_at %v, want created + session.ttl = %v", s.ExpiresAt, want)
			}
			if s.LastSeenAt == nil || s.LastSeenAt.Before(s.CreatedAt) {
				t.Errorf("last_seen_at %v, want a time at or after created_at %v", s.LastSeenAt, s.CreatedAt)
			}
			for _, tok := range []string{first, second} {
				if strings.Contains(tok, s.ID) {
					t.Errorf("the handle %s is part of a token", s.ID)
				}
			}
		}
		if got := g.me(second).Session.ID; got != newest.ID {
			t.Errorf("GET /me session id %s, want the listing's %s", got, newest.ID)
		}
		// Bob sees his own session only.
		if bl := g.sessions(bob).Sessions; len(bl) != 1 || bl[0].ID == newest.ID || bl[0].ID == oldest.ID || !bl[0].Current {
			t.Errorf("bob's sessions %+v, want his one current session", bl)
		}

		// A handle is no credential, in any form it could be sent.
		for _, h := range []string{newest.ID, "gh1." + newest.ID} {
			for _, rq := range []request{
				{method: "GET", path: "/me", header: bearer(h)},
				{method: "GET", path: "/me", cookie: h},
				{method: "GET", path: "/app/x", header: bearer(h)},
				{method: "GET", path: "/app/x", cookie: h},
			} {
				if res := g.do(rq); res.status != http.StatusUnauthorized {
					t.Errorf("%s %s with the handle %q: status %d, want 401", rq.method, rq.path, h, res.status)
				}
			}
		}
		// A session is reached as a cookie as well as a Bearer token.
		if res := g.do(request{method: "GET", path: "/me/sessions", cookie: first}); res.status != http.StatusOK {
			t.Errorf("GET /me/sessions with the cookie: %d", res.status)
		}

		// Revoke the other session: 204, it ends at once, a second try is 404.
		res = g.do(request{method: "DELETE", path: "/me/sessions/" + newest.ID, header: bearer(first)})
		if res.status != http.StatusNoContent || res.body != "" {
			t.Fatalf("DELETE /me/sessions/%s = %d %q, want 204", newest.ID, res.status, res.body)
		}
		checkNoStore(t, res)
		if st := g.proxied(second); st != http.StatusUnauthorized {
			t.Errorf("the revoked session gets %d on a proxied path, want 401", st)
		}
		if st := g.proxied(first); st != http.StatusOK {
			t.Errorf("the revoking session gets %d, want 200", st)
		}
		checkError(t, g.do(request{method: "DELETE", path: "/me/sessions/" + newest.ID, header: bearer(first)}), apierror.NotFound)
		if l := g.sessions(first).Sessions; len(l) != 1 || l[0].ID != oldest.ID {
			t.Errorf("after the revoke: %+v, want the first session alone", l)
		}
		// An API token may list and revoke sessions: it acts as its user.
		tok := g.createToken(first, "script", "1h")
		tl := g.sessions(tok.Token).Sessions
		if len(tl) != 1 || tl[0].Current {
			t.Errorf("sessions seen by a token: %+v, want the one session, not current", tl)
		}
		if m := g.me(tok.Token); m.Session.Method != "token" || m.Session.ID != tok.ID || m.User.Email != "ann@example.com" {
			t.Errorf("GET /me with a token: %+v, want method token and the token's id", m)
		}
		// Revoking its own session ends the request's session.
		if res := g.do(request{method: "DELETE", path: "/me/sessions/" + oldest.ID, header: bearer(first)}); res.status != http.StatusNoContent {
			t.Errorf("DELETE own session = %d", res.status)
		}
		if st := g.proxied(first); st != http.StatusUnauthorized {
			t.Errorf("after deleting its own session: %d, want 401", st)
		}
	})
}

// TestSelfServiceTokens: create, list, use, revoke, expire.
func TestSelfServiceTokens(t *testing.T) {
	forEachStore(t, selfServiceTune, func(t *testing.T, e *testEnv) {
		g := newSelfServiceGateway(t, e)
		ann := g.register("ann@example.com", "ann password 1")
		res := g.do(request{method: "GET", path: "/me/tokens", header: bearer(ann)})
		if res.status != http.StatusOK || res.body != `{"tokens":[]}` {
			t.Errorf("GET /me/tokens with none = %d %s, want 200 {\"tokens\":[]}", res.status, res.body)
		}
		created := g.createToken(ann, "  deploy  ", "720h")
		if !strings.HasPrefix(created.Token, "ght1.") || !hex32.MatchString(created.ID) || created.Name != "deploy" {
			t.Errorf("created %+v, want a ght1. token, a 32-hex id and the trimmed name", created)
		}
		if kind, _, _, ok := credential.Parse(created.Token); !ok || kind != credential.APIToken {
			t.Errorf("the token does not parse as an API token")
		}
		if !created.ExpiresAt.Equal(created.CreatedAt.Add(720 * time.Hour)) {
			t.Errorf("expires_at %v, want created_at + 720h", created.ExpiresAt)
		}
		if strings.Contains(created.Token, created.ID) {
			t.Errorf("the id is part of the token")
		}
		// Listed without the secret.
		res = g.do(request{method: "GET", path: "/me/tokens", header: bearer(ann)})
		if res.status != http.StatusOK || strings.Contains(res.body, created.Token) || strings.Contains(res.body, "ght1.") {
			t.Fatalf("GET /me/tokens = %d %s: want 200 without the token", res.status, res.body)
		}
		list := decodeJSON[struct {
			Tokens []TokenInfo `json:"tokens"`
		}](t, res).Tokens
		if len(list) != 1 || list[0].ID != created.ID || list[0].Name != "deploy" || !list[0].ExpiresAt.Equal(created.ExpiresAt) || list[0].LastUsed != nil {
			t.Errorf("tokens %+v, want the one created, never used", list)
		}
		if !strings.Contains(res.body, `"last_used_at":null`) {
			t.Errorf("an unused token's last_used_at is not null: %s", res.body)
		}
		// The token works on proxied paths as its user; as a cookie it is nothing.
		res = g.do(request{method: "GET", path: "/app/x", header: bearer(created.Token)})
		if res.status != http.StatusOK || !strings.Contains(res.body, g.me(ann).User.ID) {
			t.Errorf("proxied with the token: %d %s", res.status, res.body)
		}
		if res := g.do(request{method: "GET", path: "/app/x", cookie: created.Token}); res.status != http.StatusUnauthorized {
			t.Errorf("the API token as the cookie: %d, want 401", res.status)
		}

		// Revoked: 204, then 401 at the next proxied request, 404 again.
		res = g.do(request{method: "DELETE", path: "/me/tokens/" + created.ID, header: bearer(ann)})
		if res.status != http.StatusNoContent {
			t.Fatalf("DELETE /me/tokens/%s = %d %s", created.ID, res.status, res.body)
		}
		if st := g.proxied(created.Token); st != http.StatusUnauthorized {
			t.Errorf("revoked token: %d on a proxied path, want 401", st)
		}
		checkError(t, g.do(request{method: "DELETE", path: "/me/tokens/" + created.ID, header: bearer(ann)}), apierror.NotFound)
		// Its name is free again.
		g.createToken(ann, "deploy", "1h")

		// Expired: 401 at the next proxied request, and gone from the list.
		short := g.createToken(ann, "short", "1s")
		if st := g.proxied(short.Token); st != http.StatusOK {
			t.Fatalf("fresh 1s token: %d", st)
		}
		e.advance(2 * time.Second)
		if st := g.proxied(short.Token); st != http.StatusUnauthorized {
			t.Errorf("expired token: %d on a proxied path, want 401", st)
		}
		res = g.do(request{method: "GET", path: "/me/tokens", header: bearer(ann)})
		if strings.Contains(res.body, short.ID) {
			t.Errorf("the expired token is still listed: %s", res.body)
		}
		// The longest lifetime allowed is accepted.
		g.createToken(ann, "year", "720h")
	})
}

// TestSelfServicePassword: the change, its throttle and what it ends.
func TestSelfServicePassword(t *testing.T) {
	forEachStore(t, selfServiceTune, func(t *testing.T, e *testEnv) {
		g := newSelfServiceGateway(t, e)
		const email, oldPW, newPW = "ann@example.com", "ann password 1", "ann password 2"
		cur := g.register(email, oldPW)
		other := g.login(email, oldPW)
		tok := g.createToken(cur, "ci", "24h")
		bob := g.register("bob@example.com", "bob password 1")
		pw := func(session, current, next string) result {
			return g.do(request{method: "POST", path: "/me/password", contentType: jsonType,
				body: jsonBody("current_password", current, "new_password", next), header: bearer(session)})
		}

		// A wrong current password: 401, and nothing changes.
		checkError(t, pw(cur, "not it", newPW), apierror.InvalidCredentials)
		for _, c := range []string{cur, other, tok.Token} {
			if st := g.proxied(c); st != http.StatusOK {
				t.Errorf("after a wrong current password a credential gets %d", st)
			}
		}
		// The right one: 204; the current session stays, every other
		// session and every token ends, bob is untouched.
		res := pw(cur, oldPW, newPW)
		if res.status != http.StatusNoContent {
			t.Fatalf("POST /me/password = %d %s", res.status, res.body)
		}
		checkNoStore(t, res)
		if st := g.proxied(cur); st != http.StatusOK {
			t.Errorf("the current session gets %d after the change, want 200", st)
		}
		for _, c := range []string{other, tok.Token} {
			if st := g.proxied(c); st != http.StatusUnauthorized {
				t.Errorf("another credential gets %d after the change, want 401", st)
			}
		}
		if st := g.proxied(bob); st != http.StatusOK {
			t.Errorf("another user's session gets %d, want 200", st)
		}
		if l := g.sessions(cur).Sessions; len(l) != 1 || !l[0].Current {
			t.Errorf("sessions after the change %+v, want the current one alone", l)
		}
		if res := g.do(request{method: "GET", path: "/me/tokens", header: bearer(cur)}); res.body != `{"tokens":[]}` {
			t.Errorf("tokens after the change: %s", res.body)
		}
		checkError(t, g.do(request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON(email, oldPW)}), apierror.InvalidCredentials)
		g.login(email, newPW)
	})
}

// TestSelfServicePasswordThrottle: wrong current passwords count as failed
// logins, in the login's own windows.
func TestSelfServicePasswordThrottle(t *testing.T) {
	forEachStore(t, selfServiceTune, func(t *testing.T, e *testEnv) {
		g := newSelfServiceGateway(t, e)
		const email, pw1 = "carol@example.com", "carol password 1"
		s := g.register(email, pw1)
		change := func(current string) result {
			return g.do(request{method: "POST", path: "/me/password", contentType: jsonType,
				body: jsonBody("current_password", current, "new_password", "carol password 2"), header: bearer(s)})
		}
		for i := range e.cfg.Auth.MaxLoginFailures {
			if res := change("wrong " + string(rune('a'+i))); res.status != http.StatusUnauthorized {
				t.Fatalf("wrong current password %d: %d %s, want 401", i+1, res.status, res.body)
			}
		}
		// The next attempt is refused before the password is checked, even
		// the right one, and so is a login.
		res := change(pw1)
		checkError(t, res, apierror.TooManyAttempts)
		if ra := res.header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Errorf("429 Retry-After = %q", ra)
		}
		checkError(t, g.do(request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON(email, pw1)}), apierror.TooManyAttempts)
		if st := g.proxied(s); st != http.StatusOK {
			t.Errorf("the session gets %d after the throttle, want 200 (nothing ends)", st)
		}
		// When the window has passed, the right password works.
		if e.mr == nil {
			return // a real server would have to wait out the 15-minute window
		}
		e.advance(time.Duration(e.cfg.Auth.LoginFailureWindow) + time.Second)
		s = g.login(email, pw1) // the old session's idle timeout passed too
		if res := change(pw1); res.status != http.StatusNoContent {
			t.Errorf("after the window: %d %s, want 204", res.status, res.body)
		}
	})
}

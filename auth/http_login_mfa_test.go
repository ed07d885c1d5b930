package auth

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// TestPasskeyLoginEndpoints: the options of a passwordless sign-in without
// a pending sign-in, of the second factor with one; the ceremony cookie;
// a finish that does not verify; the methods and paths below LOGIN_PATH.
func TestPasskeyLoginEndpoints(t *testing.T) {
	forEachStore(t, factorTune, func(t *testing.T, e *testEnv) {
		g := newFactorGateway(t, e)
		fc := newFactorCookies(e.cfg)
		const pw = "correct horse"
		tok := g.register("ann@example.com", pw)
		enrolTOTP(t, g, e, tok)
		addTestPasskey(t, e, User{ID: mustUserID(t, e, tok), Email: "ann@example.com"}, "anns-key", 0)

		type options struct {
			PublicKey struct {
				Challenge        string            `json:"challenge"`
				RPID             string            `json:"rpId"`
				UserVerification string            `json:"userVerification"`
				AllowCredentials []json.RawMessage `json:"allowCredentials"`
			} `json:"publicKey"`
		}
		post := func(path, body string, cookies ...string) result {
			return g.do(withCookies(request{method: "POST", path: path, contentType: jsonType, body: body}, cookies...))
		}
		decode := func(res result) options {
			t.Helper()
			var o options
			if res.status != http.StatusOK || json.Unmarshal([]byte(res.body), &o) != nil || o.PublicKey.Challenge == "" {
				t.Fatalf("options: %d %s", res.status, res.body)
			}
			checkNoStore(t, res)
			c := setCookie(res, fc.ceremony)
			if c == nil || !isStateID(c.Value) || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/login" || c.MaxAge != 300 {
				t.Fatalf("ceremony cookie = %+v", c)
			}
			return o
		}

		// Passwordless: no allowCredentials, user verification required.
		o := decode(post("/login/passkey/options", "{}"))
		if len(o.PublicKey.AllowCredentials) != 0 || o.PublicKey.UserVerification != "required" || o.PublicKey.RPID != "localhost" {
			t.Errorf("passwordless options = %+v", o.PublicKey)
		}
		// The second factor of a pending sign-in: ann's passkey is listed,
		// and the page offers it.
		res := formLogin(g, "ann@example.com", pw, "/admin/")
		if !strings.Contains(res.body, `data-passkey="second-factor" data-options="/login/passkey/options" data-finish="/login/passkey" data-rd="/admin/"`) {
			t.Errorf("second step lacks the passkey button: %s", res.body)
		}
		pending := setCookie(res, fc.pending).Value
		o = decode(post("/login/passkey/options", "", fc.pending, pending))
		if len(o.PublicKey.AllowCredentials) != 1 {
			t.Errorf("second-factor options = %+v, want ann's one passkey", o.PublicKey)
		}

		// A finish that does not verify: 400 invalid_code, no session, the
		// ceremony cookie cleared.
		state := setCookie(post("/login/passkey/options", "{}"), fc.ceremony).Value
		for _, c := range []struct {
			name    string
			cookies []string
			body    string
			want    apierror.Code
		}{
			{"garbage answer", []string{fc.ceremony, state}, `{"id":"x","type":"public-key"}`, apierror.InvalidCode},
			{"no ceremony", nil, `{"id":"x"}`, apierror.InvalidCode},
			{"answered twice", []string{fc.ceremony, state}, `{"id":"x"}`, apierror.InvalidCode},
			{"not JSON", []string{fc.ceremony, state}, `x`, apierror.InvalidCode},
		} {
			t.Run(c.name, func(t *testing.T) {
				res := post("/login/passkey", c.body, c.cookies...)
				checkError(t, res, c.want)
				if g.hasSessionCookie(res) {
					t.Error("a session from a failed passkey")
				}
				if cl := setCookie(res, fc.ceremony); cl == nil || cl.MaxAge >= 0 {
					t.Errorf("ceremony cookie not cleared: %q", res.header.Values("Set-Cookie"))
				}
			})
		}
		checkError(t, g.do(request{method: "POST", path: "/login/passkey", contentType: formType, body: "a=b"}), apierror.UnsupportedMediaType)
		checkError(t, g.do(request{method: "GET", path: "/login/passkey/options"}), apierror.MethodNotAllowed)
		checkError(t, g.do(request{method: "POST", path: "/login/other"}), apierror.NotFound)
		big := `{"id":"` + strings.Repeat("a", maxBodyBytes) + `"}`
		checkError(t, post("/login/passkey", big), apierror.PayloadTooLarge)
		checkError(t, g.do(request{method: "POST", path: "/login/passkey/options", contentType: jsonType, body: "{}",
			header: []string{"Sec-Fetch-Site", "cross-site"}}), apierror.CrossOrigin)
	})
}

// TestScriptAndPagesThroughGateway: gatehouse.js is served at
// ACCOUNT_PATH/gatehouse.js without a session, the pages load it, and their
// CSP allows it and nothing else.
func TestScriptAndPagesThroughGateway(t *testing.T) {
	e := newMiniEnv(t, factorTune)
	g := newFactorGateway(t, e)
	res := g.do(request{method: "GET", path: "/account/gatehouse.js"})
	if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/javascript") ||
		!strings.Contains(res.body, "data-passkey") {
		t.Fatalf("script: %d %v", res.status, res.header)
	}
	res = g.do(request{method: "GET", path: "/login?rd=/app"})
	for _, want := range []string{
		`<script src="/account/gatehouse.js" defer></script>`,
		`<button type="button" hidden data-passkey="login" data-options="/login/passkey/options" data-finish="/login/passkey" data-rd="/app">Sign in with a passkey</button>`,
	} {
		if !strings.Contains(res.body, want) {
			t.Errorf("sign-in page lacks %s", want)
		}
	}
	csp := res.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'; connect-src 'self'") || strings.Contains(csp, "img-src") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP = %q", csp)
	}
}

// TestRelyingPartyFromValidConfig: every webauthn configuration that
// config.Validate accepts builds a relying party, and the defaults are
// config's.
func TestRelyingPartyFromValidConfig(t *testing.T) {
	tests := []struct {
		name, publicURL, rpID string
		origins               []string
		wantID                string
		wantOrigins           []string
	}{
		{"nothing set", "", "", nil, "localhost", nil},
		{"public_url", "https://Auth.Example.com:8443/base/", "", nil, "auth.example.com", []string{"https://auth.example.com:8443"}},
		{"public_url on an IP", "http://127.0.0.1:8080", "", nil, "localhost", nil},
		{"rp_id set", "https://auth.example.com", "example.com", nil, "example.com", []string{"https://auth.example.com"}},
		{"rp_id elsewhere", "https://auth.example.com", "other.example", nil, "other.example", nil},
		{"origins set", "https://auth.example.com", "", []string{"https://a.auth.example.com"}, "auth.example.com", []string{"https://a.auth.example.com"}},
		{"rp_id without public_url", "", "Example.com", nil, "example.com", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			c.Upstreams = map[string]config.Upstream{"app": {URL: config.BuiltinEcho}}
			c.Auth.PublicURL, c.Auth.WebAuthn.RPID, c.Auth.WebAuthn.Origins = tc.publicURL, tc.rpID, tc.origins
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if id, o := c.RPID(), c.WebAuthnOrigins(); id != tc.wantID || strings.Join(o, " ") != strings.Join(tc.wantOrigins, " ") {
				t.Errorf("RPID, WebAuthnOrigins = %q %q, want %q %q", id, o, tc.wantID, tc.wantOrigins)
			}
			if _, err := NewRelyingParty(c.RPID(), c.WebAuthnOrigins()); err != nil {
				t.Errorf("NewRelyingParty refuses what check accepts: %v", err)
			}
		})
	}
	for _, rp := range []string{"127.0.0.1", "https://example.com", "example.com:443", "exa mple.com"} {
		c := config.Default()
		c.Upstreams = map[string]config.Upstream{"app": {URL: config.BuiltinEcho}}
		c.Auth.WebAuthn.RPID = rp
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "auth.webauthn.rp_id") {
			t.Errorf("Validate accepts rp_id %q", rp)
		}
	}
}

// TestFactorCookieNames: the second factor's cookies drop a __Host- prefix
// (which would force Path=/ and send them upstream) and take __Secure- when
// the session cookie is Secure.
func TestFactorCookieNames(t *testing.T) {
	tests := []struct {
		name                   string
		secure                 bool
		wantPending, wantCerem string
	}{
		{"gatehouse_session", true, "__Secure-gatehouse_session_2fa", "__Secure-gatehouse_session_webauthn"},
		{"__Host-gh", true, "__Secure-gh_2fa", "__Secure-gh_webauthn"},
		{"__Secure-gh", true, "__Secure-gh_2fa", "__Secure-gh_webauthn"},
		{"gh", false, "gh_2fa", "gh_webauthn"},
	}
	for _, tc := range tests {
		c := config.Default()
		c.Session.CookieName, c.Session.CookieSecure = tc.name, tc.secure
		fc := newFactorCookies(c)
		if fc.pending != tc.wantPending || fc.ceremony != tc.wantCerem {
			t.Errorf("%s: cookies %q %q, want %q %q", tc.name, fc.pending, fc.ceremony, tc.wantPending, tc.wantCerem)
		}
		ck := fc.cookie(fc.pending, "/login", "x", PendingTTL)
		if ck.Path != "/login" || ck.Secure != tc.secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Domain != "" {
			t.Errorf("%s: pending cookie %v", tc.name, ck)
		}
	}
}

package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// TestFactorEndpoints walks the /me/totp and /me/passkeys rows in order,
// each row's answer and error code as the account self-service table has
// them, on miniredis and a real redis-server.
func TestFactorEndpoints(t *testing.T) {
	forEachStore(t, factorTune, func(t *testing.T, e *testEnv) {
		g := newFactorGateway(t, e)
		ann := g.register("ann@example.com", "correct horse")
		other := g.login("ann@example.com", "correct horse") // a second session of ann
		bob := g.register("bob@example.com", "correct horse")
		annToken := apiToken(t, e, ann)
		var secret string
		var recovery []string
		code := func() string { return codeAt(t, secret, e.clock.Now()) }

		type step struct {
			name       string
			method     string
			path       string
			body       func() string
			cookie     *string // nil: no credential
			bearer     string
			wantStatus int
			wantCode   apierror.Code // "" for a success
			check      func(t *testing.T, res result)
		}
		none := func() string { return "" }
		fixed := func(s string) func() string { return func() string { return s } }
		steps := []step{
			{name: "begin without a session", method: "POST", path: "/me/totp", body: none, wantStatus: 401, wantCode: apierror.Unauthenticated},
			{name: "begin with an API token", method: "POST", path: "/me/totp", body: none, bearer: annToken, wantStatus: 403, wantCode: apierror.Forbidden},
			{name: "begin with a body field", method: "POST", path: "/me/totp", body: fixed(`{"x":"1"}`), cookie: &ann, wantStatus: 400, wantCode: apierror.InvalidRequest},
			{name: "begin", method: "POST", path: "/me/totp", body: fixed(`{}`), cookie: &ann, wantStatus: 200, check: func(t *testing.T, res result) {
				var b struct {
					Secret     string `json:"secret"`
					OTPAuthURL string `json:"otpauth_url"`
				}
				if err := json.Unmarshal([]byte(res.body), &b); err != nil || b.Secret == "" ||
					!strings.HasPrefix(b.OTPAuthURL, "otpauth://totp/Gatehouse:ann@example.com?") || !strings.Contains(b.OTPAuthURL, "secret="+b.Secret) {
					t.Fatalf("body %s: %v", res.body, err)
				}
				secret = b.Secret
			}},
			{name: "confirm a wrong code", method: "POST", path: "/me/totp/confirm", body: fixed(codeBody("000000")), cookie: &ann, wantStatus: 400, wantCode: apierror.InvalidCode},
			{name: "confirm without the field", method: "POST", path: "/me/totp/confirm", body: fixed(`{}`), cookie: &ann, wantStatus: 400, wantCode: apierror.InvalidRequest},
			{name: "confirm with an API token", method: "POST", path: "/me/totp/confirm", body: func() string { return codeBody(code()) }, bearer: annToken, wantStatus: 403, wantCode: apierror.Forbidden},
			{name: "confirm", method: "POST", path: "/me/totp/confirm", body: func() string { return codeBody(code()) }, cookie: &ann, wantStatus: 200, check: func(t *testing.T, res result) {
				var b struct {
					RecoveryCodes []string `json:"recovery_codes"`
				}
				if err := json.Unmarshal([]byte(res.body), &b); err != nil || len(b.RecoveryCodes) != 10 {
					t.Fatalf("body %s: %v", res.body, err)
				}
				recovery = b.RecoveryCodes
				if s := g.meFactors(ann); !s.MFA || !slices.Equal(s.Factors, []string{"totp"}) {
					t.Errorf("after confirm /me = %+v, want mfa and factors [totp]", s)
				}
				if s := g.meFactors(other); s.MFA {
					t.Errorf("the other session passed the second factor too: %+v", s)
				}
				e.clock.add(totpPeriod * time.Second)
			}},
			{name: "begin again", method: "POST", path: "/me/totp", body: none, cookie: &ann, wantStatus: 409, wantCode: apierror.Conflict},
			{name: "disable a wrong code", method: "POST", path: "/me/totp/disable", body: fixed(codeBody("123456")), cookie: &ann, wantStatus: 400, wantCode: apierror.InvalidCode},
			{name: "disable with an API token", method: "POST", path: "/me/totp/disable", body: func() string { return codeBody(recovery[0]) }, bearer: annToken, wantStatus: 403, wantCode: apierror.Forbidden},
			{name: "confirm on", method: "POST", path: "/me/totp/confirm", body: func() string { return codeBody(code()) }, cookie: &ann, wantStatus: 409, wantCode: apierror.Conflict},
			{name: "list passkeys", method: "GET", path: "/me/passkeys", body: none, cookie: &ann, wantStatus: 200, check: func(t *testing.T, res result) {
				if res.body != `{"passkeys":[]}` {
					t.Errorf("body = %s", res.body)
				}
			}},
			{name: "list passkeys with an API token", method: "GET", path: "/me/passkeys", body: none, bearer: annToken, wantStatus: 403, wantCode: apierror.Forbidden},
			{name: "passkey options", method: "POST", path: "/me/passkeys/options", body: fixed(`{}`), cookie: &ann, wantStatus: 200, check: func(t *testing.T, res result) {
				var b struct {
					PublicKey struct {
						Challenge string `json:"challenge"`
						RP        struct {
							ID string `json:"id"`
						} `json:"rp"`
					} `json:"publicKey"`
				}
				if err := json.Unmarshal([]byte(res.body), &b); err != nil || b.PublicKey.Challenge == "" || b.PublicKey.RP.ID != "localhost" {
					t.Fatalf("body %s: %v", res.body, err)
				}
				c := setCookie(res, newFactorCookies(e.cfg).ceremony)
				if c == nil || !isStateID(c.Value) || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/me" || c.MaxAge != 300 {
					t.Fatalf("ceremony cookie = %+v", c)
				}
			}},
			{name: "passkey options with an API token", method: "POST", path: "/me/passkeys/options", body: none, bearer: annToken, wantStatus: 403, wantCode: apierror.Forbidden},
			{name: "passkey finish without a ceremony", method: "POST", path: "/me/passkeys", body: fixed(`{"name":"k","credential":{"id":"x"}}`), cookie: &ann, wantStatus: 400, wantCode: apierror.InvalidCode, check: func(t *testing.T, res result) {
				if c := setCookie(res, newFactorCookies(e.cfg).ceremony); c == nil || c.MaxAge >= 0 {
					t.Errorf("ceremony cookie not cleared: %+v", c)
				}
			}},
			{name: "passkey finish with an unknown field", method: "POST", path: "/me/passkeys", body: fixed(`{"name":"k","credential":{},"x":1}`), cookie: &ann, wantStatus: 400, wantCode: apierror.InvalidRequest},
			{name: "passkey finish with a duplicate key", method: "POST", path: "/me/passkeys", body: fixed(`{"name":"k","name":"l","credential":{}}`), cookie: &ann, wantStatus: 400, wantCode: apierror.InvalidRequest},
			{name: "passkey finish without a credential", method: "POST", path: "/me/passkeys", body: fixed(`{"name":"k"}`), cookie: &ann, wantStatus: 400, wantCode: apierror.InvalidRequest},
			{name: "passkey finish with an API token", method: "POST", path: "/me/passkeys", body: fixed(`{"name":"k","credential":{}}`), bearer: annToken, wantStatus: 403, wantCode: apierror.Forbidden},
			{name: "delete an unknown passkey", method: "DELETE", path: "/me/passkeys/AAAA", body: none, cookie: &ann, wantStatus: 404, wantCode: apierror.NotFound},
			{name: "delete another user's passkey", method: "DELETE", path: "/me/passkeys/Ym9icy1rZXk", body: none, cookie: &ann, wantStatus: 404, wantCode: apierror.NotFound, check: func(t *testing.T, res result) {
				if pks, _ := e.svc.factors.ListPasskeys(context.Background(), mustUserID(t, e, bob)); len(pks) != 1 {
					t.Errorf("bob's passkeys = %v, want his one key kept", pks)
				}
			}},
			{name: "delete a passkey with an API token", method: "DELETE", path: "/me/passkeys/Ym9icy1rZXk", body: none, bearer: annToken, wantStatus: 403, wantCode: apierror.Forbidden},
			{name: "passkeys: wrong method", method: "PUT", path: "/me/passkeys", body: none, cookie: &ann, wantStatus: 405, wantCode: apierror.MethodNotAllowed},
			{name: "totp: wrong method", method: "GET", path: "/me/totp", body: none, cookie: &ann, wantStatus: 405, wantCode: apierror.MethodNotAllowed},
			{name: "unknown below totp", method: "POST", path: "/me/totp/other", body: none, cookie: &ann, wantStatus: 404, wantCode: apierror.NotFound},
			{name: "disable with a recovery code", method: "POST", path: "/me/totp/disable", body: func() string { return codeBody(recovery[0]) }, cookie: &ann, wantStatus: 204, check: func(t *testing.T, res result) {
				if s := g.meFactors(ann); len(s.Factors) != 0 {
					t.Errorf("factors after disable = %v", s.Factors)
				}
				if g.alive(other) {
					t.Error("the other session survived removing the last second factor")
				}
				if !g.alive(ann) || !g.alive(annToken) {
					t.Error("the current session or the API token ended with the last second factor")
				}
			}},
			{name: "disable when off", method: "POST", path: "/me/totp/disable", body: func() string { return codeBody(code()) }, cookie: &ann, wantStatus: 400, wantCode: apierror.InvalidCode},
		}
		// bob has a passkey that ann must not be able to remove.
		addTestPasskey(t, e, User{ID: mustUserID(t, e, bob), Email: "bob@example.com"}, "bobs-key", 0)
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				rq := request{method: st.method, path: st.path, body: st.body()}
				if rq.body != "" {
					rq.contentType = jsonType
				}
				if st.cookie != nil {
					rq.cookie = *st.cookie
				}
				if st.bearer != "" {
					rq.header = []string{"Authorization", "Bearer " + st.bearer}
				}
				res := g.do(rq)
				if st.wantCode != "" {
					checkError(t, res, st.wantCode)
				} else {
					if res.status != st.wantStatus {
						t.Fatalf("status = %d, want %d (body %s)", res.status, st.wantStatus, res.body)
					}
					checkNoStore(t, res)
				}
				if st.check != nil {
					st.check(t, res)
				}
			})
		}
	})
}

func mustUserID(t *testing.T, e *testEnv, tok string) string {
	t.Helper()
	id, err := e.svc.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return id.UserID
}

// TestTOTPUnavailableWithoutKey: a real Redis without
// auth.totp.encryption_key_file has TOTP off, and enrolment says so.
func TestTOTPUnavailableWithoutKey(t *testing.T) {
	forEachStore(t, func(c *config.Config) {
		factorTune(c)
		c.Auth.TOTP.EncryptionKey = nil
	}, func(t *testing.T, e *testEnv) {
		g := newFactorGateway(t, e)
		tok := g.register("ann@example.com", "correct horse")
		checkError(t, g.do(request{method: "POST", path: "/me/totp", cookie: tok}), apierror.Forbidden)
		if s := g.meFactors(tok); len(s.Factors) != 0 {
			t.Errorf("factors = %v", s.Factors)
		}
	})
}

// TestFactorChangesNeedAPassedSession: a session made before the first
// factor (so without it) cannot add another one.
func TestFactorChangesNeedAPassedSession(t *testing.T) {
	forEachStore(t, factorTune, func(t *testing.T, e *testEnv) {
		g := newFactorGateway(t, e)
		ann := g.register("ann@example.com", "correct horse")
		old := g.login("ann@example.com", "correct horse")
		enrolTOTP(t, g, e, ann)
		checkError(t, g.do(request{method: "POST", path: "/me/passkeys/options", cookie: old}), apierror.MFARequired)
		if res := g.do(request{method: "GET", path: "/account", cookie: old}); !strings.Contains(res.body, "signed in before your second factor") {
			t.Error("the account page does not tell the old session to sign in again")
		}
		if res := g.do(request{method: "GET", path: "/account", cookie: ann}); strings.Contains(res.body, "signed in before your second factor") {
			t.Error("the account page tells the enrolling session to sign in again")
		}
		res := g.do(request{method: "POST", path: "/me/passkeys/options", cookie: ann})
		if res.status != http.StatusOK {
			t.Errorf("options from the enrolling session: %d %s", res.status, res.body)
		}
	})
}

// TestDisableTOTPThrottled: wrong codes at /me/totp/disable count like
// wrong passwords, so a stolen session cannot try every code.
func TestDisableTOTPThrottled(t *testing.T) {
	forEachStore(t, factorTune, func(t *testing.T, e *testEnv) {
		g := newFactorGateway(t, e)
		ann := g.register("ann@example.com", "correct horse")
		secret, _ := enrolTOTP(t, g, e, ann)
		for i := range e.cfg.Auth.MaxLoginFailures {
			res := g.do(request{method: "POST", path: "/me/totp/disable", contentType: jsonType, cookie: ann, body: codeBody("000000")})
			if res.status != http.StatusBadRequest {
				t.Fatalf("wrong code %d: %d %s", i, res.status, res.body)
			}
		}
		res := g.do(request{method: "POST", path: "/me/totp/disable", contentType: jsonType, cookie: ann, body: codeBody(codeAt(t, secret, e.clock.Now()))})
		checkError(t, res, apierror.TooManyAttempts)
		if res.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	})
}

// TestMarkSecondFactor rewrites one session's value and info, keeping its
// TTL, and refuses a session that is gone.
func TestMarkSecondFactor(t *testing.T) {
	forEachStore(t, factorTune, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u, tok := e.register(t, "ann@example.com", "correct horse")
		id := e.mustAuth(t, tok, u)
		before := e.pttl(t, tok)
		if err := e.store.markSecondFactor(ctx, u.ID, id.SID); err != nil {
			t.Fatal(err)
		}
		if after := e.pttl(t, tok); after > before || after <= 0 {
			t.Errorf("pttl %v -> %v: the mark changed the lifetime", before, after)
		}
		if got := e.mustAuth(t, tok, u); !got.MFA || got.Groups != id.Groups || got.Method != id.Method {
			t.Errorf("after mark: %+v", got)
		}
		ss, err := e.svc.Sessions(ctx, u.ID, id.SID)
		if err != nil || len(ss) != 1 || !ss[0].MFA {
			t.Errorf("listing after mark = %+v, %v", ss, err)
		}
		if err := e.svc.RevokeSession(ctx, u.ID, id.SID); err != nil {
			t.Fatal(err)
		}
		if err := e.store.markSecondFactor(ctx, u.ID, id.SID); err != ErrSessionNotFound {
			t.Errorf("mark of an ended session = %v, want ErrSessionNotFound", err)
		}
		e.mustNotAuth(t, tok)
	})
}

// TestErrorCodesOfFactors maps the second factor's errors to the codes.
func TestErrorCodesOfFactors(t *testing.T) {
	tests := []struct {
		err  error
		want apierror.Code
	}{
		{ErrInvalidCode, apierror.InvalidCode},
		{invalidPasskey(ErrInvalidCode), apierror.InvalidCode},
		{ErrConflict, apierror.Conflict},
		{ErrTOTPUnavailable, apierror.Forbidden},
		{ErrPasskeysUnavailable, apierror.Forbidden},
		{ErrNotFound, apierror.NotFound},
		{&mfaNeeded{}, apierror.MFARequiredLogin},
		{ErrMFASessionRequired, apierror.MFARequired},
		{errPendingGone, apierror.InvalidCredentials},
	}
	for _, tc := range tests {
		if got := errorCode(tc.err); got != tc.want {
			t.Errorf("errorCode(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	if apierror.Status(apierror.MFARequiredLogin) != 401 || apierror.WireCode(apierror.MFARequiredLogin) != "mfa_required" {
		t.Error("mfa_required at login is not 401 mfa_required")
	}
}

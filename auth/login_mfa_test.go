package auth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// TestLoginWithCode: JSON POST /login for an account with TOTP: no code is
// 401 mfa_required and no session; a wrong code is 401
// invalid_credentials, counted by the throttle (429 after the limit, even
// with the right code); the right code or a recovery code (once) makes a
// session with mfa.
func TestLoginWithCode(t *testing.T) {
	forEachStore(t, factorTune, func(t *testing.T, e *testEnv) {
		g := newFactorGateway(t, e)
		const pw = "correct horse"
		annSecret, annRecovery := enrolTOTP(t, g, e, g.register("ann@example.com", pw))
		bobSecret, _ := enrolTOTP(t, g, e, g.register("bob@example.com", pw))
		login := func(email, password, code string, withCode bool) result {
			body := credsJSON(email, password)
			if withCode {
				body = loginCodeJSON(email, password, code)
			}
			return g.do(request{method: "POST", path: "/login", contentType: jsonType, body: body})
		}
		now := func(secret string) string { return codeAt(t, secret, e.clock.Now()) }

		res := login("ann@example.com", pw, "", false)
		checkError(t, res, apierror.MFARequiredLogin)
		if !strings.Contains(res.body, `"code":"mfa_required"`) || res.status != 401 {
			t.Errorf("without code: %d %s, want 401 mfa_required", res.status, res.body)
		}
		if len(res.header.Values("Set-Cookie")) != 0 {
			t.Errorf("without code: Set-Cookie %q, want no session", res.header.Values("Set-Cookie"))
		}
		checkError(t, login("ann@example.com", pw, "", true), apierror.MFARequiredLogin)
		checkError(t, login("ann@example.com", "wrong password", now(annSecret), true), apierror.InvalidCredentials)

		// ann: the right code.
		res = login("ann@example.com", pw, now(annSecret), true)
		if res.status != http.StatusOK {
			t.Fatalf("right code: %d %s", res.status, res.body)
		}
		tok := g.sessionToken(res)
		if s := g.meFactors(tok); !s.MFA || s.Method != "password" {
			t.Errorf("session = %+v, want mfa, method password", s)
		}
		// The same code again: replayed.
		checkError(t, login("ann@example.com", pw, now(annSecret), true), apierror.InvalidCredentials)
		// A recovery code, once.
		if res := login("ann@example.com", pw, strings.ToUpper(annRecovery[3]), true); res.status != http.StatusOK {
			t.Errorf("recovery code: %d %s", res.status, res.body)
		}
		checkError(t, login("ann@example.com", pw, annRecovery[3], true), apierror.InvalidCredentials)

		// bob: wrong codes up to the limit, then 429 even with the right one.
		for i := range e.cfg.Auth.MaxLoginFailures {
			if res := login("bob@example.com", pw, "000000", true); res.status != http.StatusUnauthorized {
				t.Fatalf("wrong code %d: %d %s", i, res.status, res.body)
			}
		}
		res = login("bob@example.com", pw, now(bobSecret), true)
		checkError(t, res, apierror.TooManyAttempts)
		if res.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		// A right password without a code must not reset the count.
		checkError(t, login("bob@example.com", pw, "", false), apierror.TooManyAttempts)
	})
}

// formLogin posts the sign-in form.
func formLogin(g *testGateway, email, password, rd string, cookies ...string) result {
	return g.do(withCookies(request{method: "POST", path: "/login", contentType: formType, body: credsForm(email, password, rd)}, cookies...))
}

// formCode posts the second step's form with the pending cookie.
func formCode(g *testGateway, pendingName, pending, code, rd string) result {
	v := url.Values{"code": {code}}
	if rd != "" {
		v.Set("rd", rd)
	}
	return g.do(withCookies(request{method: "POST", path: "/login", contentType: formType, body: v.Encode()}, pendingName, pending))
}

// TestSecondStepHTML: the sign-in form for an account with a factor answers
// the second step's page and a pending cookie, not a session; the code
// posted with that cookie signs in (303 to rd); wrong codes count in the
// throttle; the pending state is used once.
func TestSecondStepHTML(t *testing.T) {
	forEachStore(t, factorTune, func(t *testing.T, e *testEnv) {
		g := newFactorGateway(t, e)
		const pw = "correct horse"
		secret, _ := enrolTOTP(t, g, e, g.register("ann@example.com", pw))
		pendingName := newFactorCookies(e.cfg).pending

		res := formLogin(g, "ann@example.com", pw, "/admin/x")
		if res.status != http.StatusOK || !strings.Contains(res.body, `name="code"`) || !strings.Contains(res.body, `<input type="hidden" name="rd" value="/admin/x">`) {
			t.Fatalf("second step page: %d %s", res.status, res.body)
		}
		checkPageHeaders(t, res.header, res.body)
		if strings.Contains(res.body, `data-passkey="second-factor"`) {
			t.Error("passkey offered to an account without one")
		}
		if g.hasSessionCookie(res) {
			t.Fatal("a session before the second factor")
		}
		pc := setCookie(res, pendingName)
		if pc == nil || !isStateID(pc.Value) || !pc.HttpOnly || !pc.Secure || pc.SameSite != http.SameSiteStrictMode || pc.Path != "/login" || pc.MaxAge != 300 {
			t.Fatalf("pending cookie = %+v", pc)
		}
		// The store keeps only its hash.
		if n, _ := e.rdb.Exists(context.Background(), e.prefix+"mfa:"+pc.Value).Result(); n != 0 {
			t.Error("the pending id is a key name")
		}
		if n, _ := e.rdb.Exists(context.Background(), e.store.pendingKey(pc.Value)).Result(); n != 1 {
			t.Error("no pending state under the id's hash")
		}

		res = formCode(g, pendingName, pc.Value, "000000", "/admin/x")
		if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "The code is incorrect") || g.hasSessionCookie(res) {
			t.Fatalf("wrong code: %d %s", res.status, res.body)
		}
		res = formCode(g, pendingName, pc.Value, codeAt(t, secret, e.clock.Now()), "/admin/x")
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/admin/x" {
			t.Fatalf("right code: %d %v %s", res.status, res.header, res.body)
		}
		tok := g.sessionOf(res)
		if s := g.meFactors(tok); !s.MFA || s.Method != "password" {
			t.Errorf("session = %+v", s)
		}
		if admin := g.do(request{method: "GET", path: "/admin/x", cookie: tok}); admin.status != http.StatusOK {
			t.Errorf("mfa route after the second step: %d %s", admin.status, admin.body)
		}
		// Used: the pending state is gone.
		e.clock.add(totpPeriod * time.Second)
		res = formCode(g, pendingName, pc.Value, codeAt(t, secret, e.clock.Now()), "/admin/x")
		if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "<h1>Sign in</h1>") || g.hasSessionCookie(res) {
			t.Errorf("pending reused: %d %s", res.status, res.body)
		}

		// Wrong codes count in the same throttle as passwords.
		res = formLogin(g, "ann@example.com", pw, "")
		pc = setCookie(res, pendingName)
		for i := range e.cfg.Auth.MaxLoginFailures {
			if res := formCode(g, pendingName, pc.Value, "000000", ""); res.status != http.StatusUnauthorized {
				t.Fatalf("wrong code %d: %d", i, res.status)
			}
		}
		res = formCode(g, pendingName, pc.Value, codeAt(t, secret, e.clock.Now()), "")
		if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") == "" || g.hasSessionCookie(res) {
			t.Errorf("after the limit: %d %v", res.status, res.header)
		}
		checkError(t, g.do(request{method: "POST", path: "/login", contentType: jsonType,
			body: loginCodeJSON("ann@example.com", pw, codeAt(t, secret, e.clock.Now()))}), apierror.TooManyAttempts)
	})
}

// TestPendingIsNoSessionAndExpires: the pending id is refused as a session
// cookie and as a Bearer token everywhere, and it lives five minutes.
func TestPendingIsNoSessionAndExpires(t *testing.T) {
	e := newMiniEnv(t, factorTune)
	g := newFactorGateway(t, e)
	const pw = "correct horse"
	secret, _ := enrolTOTP(t, g, e, g.register("ann@example.com", pw))
	pendingName := newFactorCookies(e.cfg).pending
	pc := setCookie(formLogin(g, "ann@example.com", pw, ""), pendingName)
	if pc == nil {
		t.Fatal("no pending cookie")
	}
	for _, rq := range []request{
		{method: "GET", path: "/me", cookie: pc.Value},
		{method: "GET", path: "/me", header: []string{"Authorization", "Bearer " + pc.Value}},
		{method: "GET", path: "/app", cookie: pc.Value, header: []string{"Accept", "application/json"}},
		{method: "GET", path: "/app", header: []string{"Authorization", "Bearer " + pc.Value, "Accept", "application/json"}},
		withCookies(request{method: "GET", path: "/me"}, pendingName, pc.Value),
		withCookies(request{method: "GET", path: "/app", header: []string{"Accept", "application/json"}}, pendingName, pc.Value),
	} {
		res := g.do(rq)
		if res.status != http.StatusUnauthorized {
			t.Errorf("%s %s with the pending id (%v): %d %s, want 401", rq.method, rq.path, rq.header, res.status, res.body)
		}
	}
	e.advance(PendingTTL + time.Second)
	res := formCode(g, pendingName, pc.Value, codeAt(t, secret, e.clock.Now()), "")
	if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "expired") || g.hasSessionCookie(res) {
		t.Errorf("expired pending: %d %s", res.status, res.body)
	}
	if c := setCookie(res, pendingName); c == nil || c.MaxAge >= 0 {
		t.Errorf("expired pending cookie not cleared: %+v", c)
	}
}

// TestTOTPReplayOnSecondGateway: a code accepted by one gateway is refused
// by another sharing the store.
func TestTOTPReplayOnSecondGateway(t *testing.T) {
	forEachStore(t, factorTune, func(t *testing.T, e *testEnv) {
		a := newFactorGateway(t, e)
		svc2, err := NewService(e.store, e.cfg, ServiceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b := newGatewayOn(t, e, svc2)
		const pw = "correct horse"
		secret, _ := enrolTOTP(t, a, e, a.register("ann@example.com", pw))
		code := codeAt(t, secret, e.clock.Now())
		if res := a.do(request{method: "POST", path: "/login", contentType: jsonType, body: loginCodeJSON("ann@example.com", pw, code)}); res.status != http.StatusOK {
			t.Fatalf("gateway a: %d %s", res.status, res.body)
		}
		checkError(t, b.do(request{method: "POST", path: "/login", contentType: jsonType, body: loginCodeJSON("ann@example.com", pw, code)}), apierror.InvalidCredentials)
	})
}

// TestMFARequiredRoute: a session without a second factor gets 403
// mfa_required (302 to the account page for a navigation) on an mfa route;
// after TOTP is confirmed in it, or after a login with a code, it passes;
// an API token never does.
func TestMFARequiredRoute(t *testing.T) {
	forEachStore(t, factorTune, func(t *testing.T, e *testEnv) {
		g := newFactorGateway(t, e)
		const pw = "correct horse"
		tok := g.register("ann@example.com", pw)
		api := apiToken(t, e, tok)
		jsonGet := func(path, cookie, bearer string) result {
			rq := request{method: "GET", path: path, cookie: cookie, header: []string{"Accept", "application/json"}}
			if bearer != "" {
				rq.header = append(rq.header, "Authorization", "Bearer "+bearer)
			}
			return g.do(rq)
		}
		checkError(t, jsonGet("/admin/x", tok, ""), apierror.MFARequired)
		nav := g.do(request{method: "GET", path: "/admin/x?a=1", cookie: tok, header: []string{"Accept", "text/html", "Sec-Fetch-Mode", "navigate"}})
		if nav.status != http.StatusFound || !strings.HasPrefix(nav.header.Get("Location"), "/account?rd=") {
			t.Errorf("navigation: %d Location %q", nav.status, nav.header.Get("Location"))
		}
		if res := jsonGet("/app", tok, ""); res.status != http.StatusOK {
			t.Errorf("plain route: %d", res.status)
		}
		secret, _ := enrolTOTP(t, g, e, tok)
		if res := jsonGet("/admin/x", tok, ""); res.status != http.StatusOK {
			t.Errorf("after confirm: %d %s", res.status, res.body)
		}
		checkError(t, jsonGet("/admin/x", "", api), apierror.MFARequired)
		res := g.do(request{method: "POST", path: "/login", contentType: jsonType, body: loginCodeJSON("ann@example.com", pw, codeAt(t, secret, e.clock.Now()))})
		if res.status != http.StatusOK {
			t.Fatalf("code login: %d %s", res.status, res.body)
		}
		if res := jsonGet("/admin/x", g.sessionToken(res), ""); res.status != http.StatusOK {
			t.Errorf("after a code login: %d %s", res.status, res.body)
		}
		api2 := apiToken(t, e, g.sessionToken(res))
		checkError(t, jsonGet("/admin/x", "", api2), apierror.MFARequired)
	})
}

// TestResetSecondFactors: users reset-2fa's operation removes TOTP, the
// recovery codes and the passkeys, and ends every session.
func TestResetSecondFactors(t *testing.T) {
	forEachStore(t, factorTune, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		g := newFactorGateway(t, e)
		tok := g.register("ann@example.com", "correct horse")
		enrolTOTP(t, g, e, tok)
		uid := mustUserID(t, e, tok)
		addTestPasskey(t, e, User{ID: uid, Email: "ann@example.com"}, "anns-key", 0)
		if u, err := e.svc.User(ctx, "ann@example.com"); err != nil || len(u.SecondFactors) != 2 {
			t.Fatalf("users show factors = %v, %v; want totp and passkey", u.SecondFactors, err)
		}
		n, err := e.svc.ResetSecondFactors(ctx, "Ann@Example.com")
		if err != nil || n != 1 {
			t.Fatalf("ResetSecondFactors = %d, %v", n, err)
		}
		e.mustNotAuth(t, tok)
		if f, err := e.svc.factors.Factors(ctx, uid); err != nil || len(f) != 0 {
			t.Errorf("factors after reset = %v, %v", f, err)
		}
		if _, err := e.svc.ResetSecondFactors(ctx, "nobody@example.com"); err != ErrUserNotFound {
			t.Errorf("reset of no account = %v", err)
		}
		// Signing in needs the password alone again.
		if res := g.do(request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON("ann@example.com", "correct horse")}); res.status != http.StatusOK {
			t.Errorf("login after reset: %d %s", res.status, res.body)
		}
	})
}

// TestDeleteUserRemovesFactors: no secret outlives its account.
func TestDeleteUserRemovesFactors(t *testing.T) {
	forEachStore(t, factorTune, func(t *testing.T, e *testEnv) {
		g := newFactorGateway(t, e)
		tok := g.register("ann@example.com", "correct horse")
		enrolTOTP(t, g, e, tok)
		if err := e.svc.DeleteUser(context.Background(), "ann@example.com"); err != nil {
			t.Fatal(err)
		}
		for _, line := range e.dump(t) {
			if strings.Contains(line, ":totp") || strings.Contains(line, ":passkeys") {
				t.Errorf("left after delete: %s", line)
			}
		}
	})
}

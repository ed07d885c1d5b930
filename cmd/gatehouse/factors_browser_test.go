package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// mfaBrowserConfig is a gateway on the embedded store (its TOTP key is the
// process's ephemeral one) with an /admin/ rule that needs a second
// factor. No public_url: the relying party is "localhost" and each
// ceremony is bound to the page's own origin.
const mfaBrowserConfig = `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams:
  demo: builtin:echo
routes:
  - path: /admin/
    policy: authenticated
    mfa: required
  - path: /
    policy: authenticated
auth:
  registration: open
  bcrypt_cost: 4
session:
  cookie_secure: false
`

// localBase is the gateway's public URL on "localhost" instead of
// 127.0.0.1: the relying party id, and a secure context for WebAuthn.
func localBase(g *testGateway) string {
	return strings.Replace(g.public, "127.0.0.1", "localhost", 1)
}

// registerOverHTTP creates an account and returns its id and a client
// holding its session.
func registerOverHTTP(t *testing.T, base, email, password string) (string, *http.Client) {
	t.Helper()
	c := newClient(t)
	st, _, body := do(t, c, "POST", base+"/register", "application/json", `{"email":"`+email+`","password":"`+password+`"}`)
	if st != 201 {
		t.Fatalf("register: %d %s", st, body)
	}
	return decodeMe(t, body).User.ID, c
}

// checkMFAConsole is checkConsole for the second factor's flows: no CSP
// violation, no exception, no console error at all.
func checkMFAConsole(t *testing.T, b *testBrowser) {
	t.Helper()
	for _, m := range b.snapshotMessages() {
		if isCSPViolation(m) || m.level == "error" {
			t.Errorf("browser: %s", m)
		}
	}
}

// signInWithPassword signs the browser in on the sign-in page it shows and
// returns the document requests that followed.
func (b *testBrowser) signInWithPassword(t *testing.T, email, password string) []string {
	t.Helper()
	b.do(t, "type the password",
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), password))
	return b.navigate(t, "submit the password", chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
}

// signOut uses the account page's "Sign out" button.
func (b *testBrowser) signOut(t *testing.T, base string) {
	t.Helper()
	b.navigate(t, "open the account page", chromedp.Navigate(base+"/account"))
	chain := b.navigate(t, "sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)))
	if !slices.Equal(chain, []string{"POST /logout 303", "GET /login 200"}) || b.cookie(t, "gatehouse_session") != nil {
		t.Fatalf("sign out: %q%s", chain, b.diagnostics())
	}
}

// TestBrowserTOTPSignIn: a signed-in browser sets up TOTP on the account
// page (the QR code loads under the page's CSP; the key is read off the
// page and the code computed here, as an authenticator app would), sees
// its recovery codes, signs out, asks for an mfa route, signs in with the
// password, is asked for the code on the second step, and lands on the
// route, which the backend serves with the user's id.
func TestBrowserTOTPSignIn(t *testing.T) {
	findBrowser(t)
	g := newTestGateway(t, mfaBrowserConfig, nil)
	base := localBase(g)
	const email, password = "totp.user@example.com", "correct horse battery staple"
	userID, _ := registerOverHTTP(t, base, email, password)
	b := newTestBrowser(t)

	chain := b.navigate(t, "open the account page", chromedp.Navigate(base+"/account"))
	if !slices.Equal(chain, []string{"GET /account 302", "GET /login?rd=%2Faccount 200"}) {
		t.Fatalf("account page: %q%s", chain, b.diagnostics())
	}
	if chain := b.signInWithPassword(t, email, password); !slices.Equal(chain, []string{"POST /login 303", "GET /account 200"}) {
		t.Fatalf("sign in: %q%s", chain, b.diagnostics())
	}
	chain = b.navigate(t, "set up TOTP", chromedp.Click(chromedp.CSS(`form[action="/account/totp"] button`)))
	if !slices.Equal(chain, []string{"POST /account/totp 200"}) {
		t.Fatalf("set up: %q%s", chain, b.diagnostics())
	}
	type enrolPage struct {
		Secret  string
		QRWidth int
	}
	ep := evalJS[enrolPage](t, b, "read the set-up", `(() => ({
		Secret: document.querySelector('#totp-secret').value,
		QRWidth: document.querySelector('img[alt^="QR code"]').naturalWidth,
	}))()`)
	if ep.Secret == "" || ep.QRWidth != 200 {
		t.Fatalf("set-up page = %+v (the QR code must load: img-src data:)%s", ep, b.diagnostics())
	}
	shots := artifactsDir(t)
	b.screenshot(t, shots, "account-totp-setup.png")
	code, err := totp.GenerateCode(ep.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.do(t, "type the first code", chromedp.SendKeys(chromedp.CSS(`#totp-code`), code))
	chain = b.navigate(t, "confirm", chromedp.Click(chromedp.CSS(`form[action="/account/totp/confirm"] button`)))
	if !slices.Equal(chain, []string{"POST /account/totp/confirm 200"}) {
		t.Fatalf("confirm: %q%s", chain, b.diagnostics())
	}
	codes := evalJS[string](t, b, "read the recovery codes", `document.querySelector('#recovery-codes').textContent`)
	if n := len(strings.Fields(codes)); n != 10 {
		t.Fatalf("recovery codes shown: %d, want 10", n)
	}
	b.screenshot(t, shots, "account-recovery-codes.png")
	b.signOut(t, base)

	chain = b.navigate(t, "open /admin/x", chromedp.Navigate(base+"/admin/x?y=1"))
	if !slices.Equal(chain, []string{"GET /admin/x?y=1 302", "GET /login?rd=%2Fadmin%2Fx%3Fy%3D1 200"}) {
		t.Fatalf("open: %q%s", chain, b.diagnostics())
	}
	if chain := b.signInWithPassword(t, email, password); !slices.Equal(chain, []string{"POST /login 200"}) {
		t.Fatalf("password: %q%s", chain, b.diagnostics())
	}
	type stepPage struct {
		H1, RD    string
		Autofocus bool
		Passkey   bool
	}
	page := evalJS[stepPage](t, b, "read the second step", `(() => ({
		H1: document.querySelector('h1').textContent,
		Autofocus: document.querySelector('#code').autofocus,
		RD: (document.querySelector('input[name=rd]') || {}).value || '',
		Passkey: !!document.querySelector('[data-passkey]'),
	}))()`)
	b.screenshot(t, shots, "signin-second-step.png")
	if page.H1 != "Confirm it is you" || !page.Autofocus || page.RD != "/admin/x?y=1" || page.Passkey {
		t.Errorf("second step page = %+v", page)
	}
	if ck := b.cookie(t, "gatehouse_session"); ck != nil {
		t.Fatalf("a session cookie before the code: %+v", ck)
	}
	if ck := b.cookie(t, "gatehouse_session_2fa"); ck == nil || !ck.HTTPOnly || ck.Path != "/login" {
		t.Fatalf("pending cookie = %+v", ck)
	}
	// The set-up used this step's code; the next step's is within the one
	// step of skew and has not been used.
	code, err = totp.GenerateCode(ep.Secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b.do(t, "type the code", chromedp.SendKeys(chromedp.CSS(`#code`), code))
	chain = b.navigate(t, "submit the code", chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	if !slices.Equal(chain, []string{"POST /login 303", "GET /admin/x?y=1 200"}) {
		t.Fatalf("code: %q%s", chain, b.diagnostics())
	}
	echo := evalJS[echoPage](t, b, "read the echo page", readEchoJS)
	checkEcho(t, "mfa route", echo, "/admin/x", "y=1", userID, email)
	if ck := b.cookie(t, "gatehouse_session_2fa"); ck != nil {
		t.Errorf("pending cookie kept after the sign-in: %+v", ck)
	}
	checkMFAConsole(t, b)
}

// addVirtualAuthenticator gives the tab a platform authenticator that holds
// discoverable credentials and verifies its user without a prompt.
func (b *testBrowser) addVirtualAuthenticator(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	_, err := chromedp.Call(ctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
		Options: &cdpwebauthn.VirtualAuthenticatorOptions{
			Protocol:                    cdpwebauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                cdpwebauthn.Ctap2versionCtap21,
			Transport:                   cdpwebauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
}

// waitPath polls the page's location until its path is path.
func (b *testBrowser) waitPath(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(browserStepTimeout)
	for time.Now().Before(deadline) {
		if evalJS[string](t, b, "location", `location.pathname`) == path && evalJS[string](t, b, "readyState", `document.readyState`) == "complete" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the page never reached %s (at %s)%s", path, b.location(t), b.diagnostics())
}

// TestBrowserPasskeys: a signed-in browser adds a passkey on the account
// page (gatehouse.js and Chromium's virtual authenticator), signs out, uses
// "Sign in with a passkey" on the sign-in page and lands on an mfa route as
// the same user, with a passkey session.
func TestBrowserPasskeys(t *testing.T) {
	findBrowser(t)
	g := newTestGateway(t, mfaBrowserConfig, nil)
	base := localBase(g)
	const email, password = "passkey.user@example.com", "correct horse battery staple"
	userID, _ := registerOverHTTP(t, base, email, password)
	b := newTestBrowser(t)
	b.addVirtualAuthenticator(t)

	b.navigate(t, "open the account page", chromedp.Navigate(base+"/account"))
	if chain := b.signInWithPassword(t, email, password); !slices.Equal(chain, []string{"POST /login 303", "GET /account 200"}) {
		t.Fatalf("sign in: %q%s", chain, b.diagnostics())
	}
	b.do(t, "name the passkey",
		chromedp.WaitVisible(chromedp.CSS(`#passkey-add`)),
		chromedp.SendKeys(chromedp.CSS(`#passkey-name`), "Test laptop"),
		chromedp.Click(chromedp.CSS(`#passkey-add button`)))
	// The script reloads the page once the passkey is added.
	deadline := time.Now().Add(browserStepTimeout)
	for evalJS[int](t, b, "count passkeys", `document.querySelectorAll('#passkeys li').length`) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the passkey never showed on the account page: %q%s",
				evalJS[string](t, b, "status", `(document.querySelector('#passkey-add [role=status]') || {}).textContent || ''`), b.diagnostics())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if name := evalJS[string](t, b, "passkey name", `document.querySelector('#passkeys .item-title').textContent`); name != "Test laptop" {
		t.Errorf("passkey listed as %q", name)
	}
	b.signOut(t, base)

	// "Sign in with a passkey", straight to the mfa route.
	chain := b.navigate(t, "open /admin/panel", chromedp.Navigate(base+"/admin/panel"))
	if !slices.Equal(chain, []string{"GET /admin/panel 302", "GET /login?rd=%2Fadmin%2Fpanel 200"}) {
		t.Fatalf("open: %q", chain)
	}
	b.do(t, "wait for the passkey button", chromedp.WaitVisible(chromedp.CSS(`button[data-passkey=login]`)))
	b.do(t, "sign in with the passkey", chromedp.Click(chromedp.CSS(`button[data-passkey=login]`)))
	b.waitPath(t, "/admin/panel")
	echo := evalJS[echoPage](t, b, "read the echo page", readEchoJS)
	checkEcho(t, "passkey sign-in", echo, "/admin/panel", "", userID, email)
	me := evalJS[fetchResult](t, b, "ask /me", `fetch('/me').then(async r => ({Status: r.status, Body: await r.text()}))`)
	if me.Status != 200 || !strings.Contains(me.Body, `"mfa":true,"method":"passkey"`) || !strings.Contains(me.Body, `"second_factors":["passkey"]`) {
		t.Errorf("/me after the passkey sign-in: %d %s", me.Status, me.Body)
	}
	if ck := b.cookie(t, "gatehouse_session_webauthn"); ck != nil {
		t.Errorf("ceremony cookie kept: %+v", ck)
	}
	checkMFAConsole(t, b)
}

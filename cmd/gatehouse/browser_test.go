package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserConfig is embeddedConfig with registration open or closed.
func browserConfig(t *testing.T, registration string) string {
	t.Helper()
	cfg := strings.Replace(embeddedConfig, "registration: open", "registration: "+registration, 1)
	if !strings.Contains(cfg, "registration: "+registration) {
		t.Fatalf("embeddedConfig no longer has registration: open")
	}
	return cfg
}

// formState is what a sign-in or registration page shows, read from the DOM.
type formState struct {
	Title, H1, Alert      string
	AlertVisible          bool
	EmailLabel, PwLabel   string // text of each input's <label>
	EmailType, PwType     string
	EmailValue, PwValue   string
	EmailAC, PwAC         string // autocomplete
	EmailReq, PwReq       bool
	EmailInvalid, Invalid string // aria-invalid of email and password
	PwDescribedBy         string
	RD                    string // the hidden rd field, "" without one
	HasRD                 bool
	Action, Method        string
	OtherLink             string // href of the link to the other page
	Focused               string // id of the focused element
	ButtonBg              string // computed background of the submit button
	Lang                  string
}

const readFormJS = `(() => {
  const q = s => document.querySelector(s);
  const e = q('#email'), p = q('#password'), f = q('form'), rd = q('input[type=hidden][name=rd]');
  // The closed-registration page has no alert region (its text is there
  // from the start); its message is main's text.
  const alert = q('[role=alert]') || q('main');
  const label = el => el && el.labels && el.labels.length ? el.labels[0].textContent.trim() : '';
  const link = q('p.alt a');
  return {
    Title: document.title, H1: (q('h1') || {}).textContent || '',
    Alert: alert ? alert.textContent.trim() : '', AlertVisible: !!alert && alert.getClientRects().length > 0,
    EmailLabel: label(e), PwLabel: label(p),
    EmailType: e ? e.type : '', PwType: p ? p.type : '',
    EmailValue: e ? e.value : '', PwValue: p ? p.value : '',
    EmailAC: e ? e.autocomplete : '', PwAC: p ? p.autocomplete : '',
    EmailReq: !!e && e.required, PwReq: !!p && p.required,
    EmailInvalid: e ? (e.getAttribute('aria-invalid') || '') : '', Invalid: p ? (p.getAttribute('aria-invalid') || '') : '',
    PwDescribedBy: p ? (p.getAttribute('aria-describedby') || '') : '',
    RD: rd ? rd.value : '', HasRD: !!rd,
    Action: f ? f.getAttribute('action') : '', Method: f ? f.method : '',
    OtherLink: link ? link.getAttribute('href') : '',
    Focused: document.activeElement ? document.activeElement.id : '',
    ButtonBg: q('button') ? getComputedStyle(q('button')).backgroundColor : '',
    Lang: document.documentElement.lang,
  };
})()`

// readEchoJS reads the echo backend's JSON as the browser shows it (a JSON
// document is rendered as text; newer Chromium adds a pretty-print toggle
// around it, so take the <pre> when there is one).
const readEchoJS = `JSON.parse((document.querySelector('pre') || document.body).textContent)`

// echoPage is the echo backend's JSON as read in the browser.
type echoPage struct {
	Method   string              `json:"method"`
	Path     string              `json:"path"`
	RawQuery string              `json:"raw_query"`
	Headers  map[string][]string `json:"headers"`
}

// meUser is GET /me's body.
type meUser struct {
	User struct{ ID, Email string }
}

// fetchMeJS asks /me from the page, with the page's cookies.
const fetchMeJS = `fetch('/me', {credentials: 'same-origin'}).then(async r => ({status: r.status, body: await r.text()}))`

type fetchResult struct {
	Status int
	Body   string
}

func TestBrowserSignInFlow(t *testing.T) {
	findBrowser(t) // skip before starting anything
	g := newTestGateway(t, browserConfig(t, "open"), nil)
	closed := newTestGateway(t, browserConfig(t, "closed"), nil)
	// The browser comes last so that its Cleanup runs first: a gateway
	// that stops while Chromium holds a preconnected socket waits 5s for
	// it (net/http counts a connection that has sent nothing as active
	// for its first 5 seconds).
	b := newTestBrowser(t)
	shots := artifactsDir(t)
	start := time.Now()
	const (
		typedEmail = "Browser.User@Example.COM"
		email      = "browser.user@example.com"
		password   = "correct horse battery staple"
	)
	wantChain := func(step string, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Fatalf("%s: document requests\n got %q\nwant %q%s", step, got, want, b.diagnostics())
		}
	}

	// 1. A protected page without a session: a browser navigation is sent
	// to the sign-in page with the page it asked for as rd.
	chain := b.navigate(t, "open /app/page?x=1", chromedp.Navigate(g.public+"/app/page?x=1"))
	wantChain("step 1", chain, "GET /app/page?x=1 302", "GET /login?rd=%2Fapp%2Fpage%3Fx%3D1 200")
	if loc := b.location(t); loc.Path != "/login" || loc.Query().Get("rd") != "/app/page?x=1" {
		t.Fatalf("step 1: location %s, want /login with rd=/app/page?x=1", loc)
	}
	f := evalJS[formState](t, b, "read sign-in page", readFormJS)
	if f.Title != "Sign in · Gatehouse" || f.H1 != "Sign in" || f.Lang != "en" {
		t.Errorf("step 1: title %q, h1 %q, lang %q", f.Title, f.H1, f.Lang)
	}
	if f.EmailLabel != "Email" || f.PwLabel != "Password" || f.EmailType != "email" || f.PwType != "password" || !f.EmailReq || !f.PwReq {
		t.Errorf("step 1: fields not labelled as expected: %+v", f)
	}
	if f.EmailAC != "email" || f.PwAC != "current-password" {
		t.Errorf("step 1: autocomplete email=%q password=%q, want email/current-password", f.EmailAC, f.PwAC)
	}
	if f.Alert != "" || f.AlertVisible {
		t.Errorf("step 1: the error region shows %q on a fresh page", f.Alert)
	}
	if f.Action != "/login" || f.Method != "post" || f.RD != "/app/page?x=1" {
		t.Errorf("step 1: form action=%q method=%q rd=%q", f.Action, f.Method, f.RD)
	}
	if upperEscapes(f.OtherLink) != "/register?rd=%2Fapp%2Fpage%3Fx%3D1" {
		t.Errorf("step 1: register link %q, want /register carrying rd", f.OtherLink)
	}
	if f.Focused != "email" {
		t.Errorf("step 1: focused element %q, want the email field (autofocus)", f.Focused)
	}
	// The stylesheet is inline and allowed only by its CSP hash: if the
	// hash and the CSS drifted apart the button would be unstyled.
	if f.ButtonBg != "rgb(10, 91, 211)" {
		t.Errorf("step 1: button background %q, want the accent rgb(10, 91, 211): is the inline style blocked by the CSP?", f.ButtonBg)
	}
	csp := b.lastDocHeader("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("step 1: the browser got CSP %q", csp)
	}
	cleanShot := b.screenshot(t, shots, "signin-clean.png")

	// 2. Register through the form; the 303 goes back to the page first
	// asked for, which the backend serves with the new user's id.
	chain = b.navigate(t, "follow the register link", chromedp.Click(chromedp.CSS(`p.alt a`)))
	wantChain("step 2 link", chain, "GET /register?rd=%2Fapp%2Fpage%3Fx%3D1 200")
	f = evalJS[formState](t, b, "read registration page", readFormJS)
	if f.H1 != "Create an account" || f.EmailLabel != "Email" || f.PwLabel != "Password" || f.PwAC != "new-password" || f.RD != "/app/page?x=1" || f.Action != "/register" {
		t.Errorf("step 2: registration page %+v", f)
	}
	if !strings.Contains(f.PwDescribedBy, "password-hint") {
		t.Errorf("step 2: password field aria-describedby %q lacks the hint", f.PwDescribedBy)
	}
	b.screenshot(t, shots, "register.png")
	b.do(t, "type the new account",
		chromedp.SendKeys(chromedp.CSS(`#email`), typedEmail),
		chromedp.SendKeys(chromedp.CSS(`#password`), password))
	chain = b.navigate(t, "submit registration", chromedp.Click(chromedp.CSS(`button[type=submit]`)))
	wantChain("step 2 submit", chain, "POST /register 303", "GET /app/page?x=1 200")
	if loc := b.location(t); loc.String() != g.public+"/app/page?x=1" {
		t.Fatalf("step 2: location %s, want %s/app/page?x=1", loc, g.public)
	}
	echo := evalJS[echoPage](t, b, "read the echo page", readEchoJS)
	me := evalJS[fetchResult](t, b, "fetch /me", fetchMeJS)
	if me.Status != 200 {
		t.Fatalf("step 2: /me = %d %s", me.Status, me.Body)
	}
	user := decodeMe(t, me.Body)
	if user.User.Email != email || len(user.User.ID) != 32 {
		t.Errorf("step 2: /me user %+v, want email %s and a 32-hex id", user.User, email)
	}
	checkEcho(t, "step 2", echo, "/app/page", "x=1", user.User.ID, email)
	if c := b.cookie(t, "gatehouse_session"); c == nil || !c.HTTPOnly || c.SameSite != "Lax" || c.Path != "/" {
		t.Errorf("step 2: session cookie %+v, want HttpOnly, SameSite Lax, Path /", c)
	}
	if c := evalJS[string](t, b, "read document.cookie", `document.cookie`); strings.Contains(c, "gatehouse_session") {
		t.Errorf("step 2: the session cookie is readable from script: %q", c)
	}

	// 3. Sign out with a form post (the echo page has no button: inject
	// one), then the protected page asks for a sign-in again.
	chain = b.navigate(t, "sign out", chromedp.Evaluate[chromedp.Void](`
		document.body.innerHTML = '<form id="signout" method="post" action="/logout"><button type="submit">Sign out</button></form>';
		document.getElementById('signout').requestSubmit();`))
	wantChain("step 3 logout", chain, "POST /logout 303", "GET /login 200")
	// The sign-in page's CSP forbids fetch, so look at the browser's jar.
	if c := b.cookie(t, "gatehouse_session"); c != nil {
		t.Errorf("step 3: the session cookie survived the logout: %+v", c)
	}
	chain = b.navigate(t, "reopen the protected page", chromedp.Navigate(g.public+"/app/page?x=2&q=a%20b"))
	wantChain("step 3 reopen", chain, "GET /app/page?x=2&q=a%20b 302", "GET /login?rd=%2Fapp%2Fpage%3Fx%3D2%26q%3Da%2520b 200")

	// 4. A wrong password: the page again, with the error, the email
	// kept, the password not, and the return target still carried.
	b.do(t, "type a wrong password",
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), "not the password"))
	chain = b.navigate(t, "submit the wrong password", chromedp.Click(chromedp.CSS(`button[type=submit]`)))
	wantChain("step 4", chain, "POST /login 401")
	if loc := b.location(t); loc.Path != "/login" {
		t.Errorf("step 4: location %s, want /login", loc)
	}
	f = evalJS[formState](t, b, "read the failed sign-in page", readFormJS)
	if f.Alert != "The email or password is incorrect." || !f.AlertVisible {
		t.Errorf("step 4: alert %q visible=%v", f.Alert, f.AlertVisible)
	}
	if f.EmailValue != email || f.PwValue != "" {
		t.Errorf("step 4: email %q password %q, want the email refilled and the password empty", f.EmailValue, f.PwValue)
	}
	if f.RD != "/app/page?x=2&q=a%20b" {
		t.Errorf("step 4: hidden rd %q, want /app/page?x=2&q=a%%20b", f.RD)
	}
	if f.EmailInvalid != "true" || f.Invalid != "true" || !strings.Contains(f.PwDescribedBy, "form-error") {
		t.Errorf("step 4: aria-invalid email=%q password=%q describedby=%q", f.EmailInvalid, f.Invalid, f.PwDescribedBy)
	}
	if f.Focused != "password" {
		t.Errorf("step 4: focused element %q, want the password field", f.Focused)
	}
	errorShot := b.screenshot(t, shots, "signin-error.png")
	b.do(t, "switch to the dark theme", colorScheme("dark"))
	if bg := evalJS[string](t, b, "read the dark background", `getComputedStyle(document.body).backgroundColor`); bg != "rgb(13, 17, 23)" {
		t.Errorf("step 4: dark theme body background %q, want rgb(13, 17, 23)", bg)
	}
	b.screenshot(t, shots, "signin-error-dark.png")
	b.do(t, "switch back to the light theme", colorScheme(""))

	// 5. The right password: back to the page asked for in step 3, through
	// the hidden rd field.
	b.do(t, "type the right password", chromedp.SendKeys(chromedp.CSS(`#password`), password))
	chain = b.navigate(t, "submit the right password", chromedp.Click(chromedp.CSS(`button[type=submit]`)))
	wantChain("step 5", chain, "POST /login 303", "GET /app/page?x=2&q=a%20b 200")
	echo = evalJS[echoPage](t, b, "read the echo page after sign-in", readEchoJS)
	checkEcho(t, "step 5", echo, "/app/page", "x=2&q=a%20b", user.User.ID, email)

	// 6. Registration closed: the page says so, with 403.
	chain = b.navigate(t, "open /register (closed)", chromedp.Navigate(closed.public+"/register"))
	wantChain("step 6", chain, "GET /register 403")
	f = evalJS[formState](t, b, "read the closed page", readFormJS)
	if f.H1 != "Registration is closed" || !strings.Contains(f.Alert, "New accounts cannot be created") || f.Action != "" {
		t.Errorf("step 6: closed page h1 %q alert %q form action %q", f.H1, f.Alert, f.Action)
	}
	b.screenshot(t, shots, "register-closed.png")
	st, h, body := do(t, newClient(t), "GET", closed.public+"/register", "", "")
	if st != http.StatusForbidden || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, "Registration is closed") {
		t.Errorf("step 6: plain GET /register = %d %q %q", st, h.Get("Content-Type"), body)
	}
	chain = b.navigate(t, "open /login (closed)", chromedp.Navigate(closed.public+"/login"))
	wantChain("step 6 login", chain, "GET /login 200")
	if f = evalJS[formState](t, b, "read the closed sign-in page", readFormJS); f.OtherLink != "" || f.HasRD {
		t.Errorf("step 6: sign-in page links to %q while registration is closed (hidden rd without one asked: %v)", f.OtherLink, f.HasRD)
	}

	// 7. Headers as a plain client sees them, then the browser's console:
	// no CSP violation and no error other than the failed statuses the
	// steps above asked for.
	resp, err := http.Get(g.public + "/login?rd=%2Fapp")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("GET /login: Content-Security-Policy %q lacks frame-ancestors 'none'", csp)
	}
	if xfo := resp.Header.Get("X-Frame-Options"); xfo != "DENY" {
		t.Errorf("GET /login: X-Frame-Options %q, want DENY", xfo)
	}
	checkConsole(t, b.snapshotMessages())

	// The check above must be able to fail: a load the CSP forbids has to
	// show up as a violation in the same stream.
	b.navigate(t, "open /login for the CSP canary", chromedp.Navigate(g.public+"/login"))
	b.do(t, "trigger a CSP violation", chromedp.Evaluate[chromedp.Void](
		`document.body.appendChild(Object.assign(new Image(), {src: '/csp-canary.png'}))`))
	deadline := time.Now().Add(5 * time.Second)
	for !slices.ContainsFunc(b.snapshotMessages(), isCSPViolation) {
		if time.Now().After(deadline) {
			t.Fatalf("a forbidden image load produced no CSP violation message: the console check is blind%s", b.diagnostics())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("browser flow took %v; screenshots: %s, %s", time.Since(start).Round(time.Millisecond), cleanShot, errorShot)
}

func decodeMe(t *testing.T, body string) meUser {
	t.Helper()
	var u meUser
	if err := json.Unmarshal([]byte(body), &u); err != nil {
		t.Fatalf("/me body %q: %v", body, err)
	}
	return u
}

// checkEcho checks what the backend received for a signed-in browser.
func checkEcho(t *testing.T, step string, e echoPage, path, query, id, email string) {
	t.Helper()
	if e.Method != "GET" || e.Path != path || e.RawQuery != query {
		t.Errorf("%s: backend got %s %s ?%s, want GET %s ?%s", step, e.Method, e.Path, e.RawQuery, path, query)
	}
	if got := e.Headers["X-User-Id"]; len(got) != 1 || got[0] != id {
		t.Errorf("%s: backend X-User-Id = %q, want [%s] (the id of /me)", step, got, id)
	}
	if got := e.Headers["X-User-Email"]; len(got) != 1 || got[0] != email {
		t.Errorf("%s: backend X-User-Email = %q, want [%s]", step, got, email)
	}
	for _, c := range e.Headers["Cookie"] {
		if strings.Contains(c, "gatehouse_session") {
			t.Errorf("%s: the session cookie reached the backend: %q", step, c)
		}
	}
}

// isCSPViolation reports whether a browser message is Chromium's report of
// a Content-Security-Policy violation.
func isCSPViolation(m browserMessage) bool {
	return strings.Contains(m.text, "Content Security Policy")
}

// checkConsole fails on any CSP violation, exception or console error. The
// only errors allowed are Chromium's "Failed to load resource" entries for
// the statuses the flow caused on purpose (401 for the wrong password, 403
// for closed registration).
func checkConsole(t *testing.T, msgs []browserMessage) {
	t.Helper()
	for _, m := range msgs {
		t.Logf("browser said: %s", m)
		switch {
		case isCSPViolation(m):
			t.Errorf("CSP violation: %s", m)
		case m.kind == "log" && m.source == "network" &&
			(strings.Contains(m.text, "status of 401") && strings.HasSuffix(m.url, "/login") ||
				strings.Contains(m.text, "status of 403") && strings.HasSuffix(m.url, "/register")):
			// expected: the wrong-password and closed-registration pages
		case m.level == "error":
			t.Errorf("browser error: %s", m)
		}
	}
}

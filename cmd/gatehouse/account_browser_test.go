package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// otherContext opens a tab in a new browser context of b's browser: its
// own cookies and storage, as a second device would have. It closes when
// the test ends, before the browser does.
func (b *testBrowser) otherContext(t *testing.T) *testBrowser {
	t.Helper()
	o := &testBrowser{}
	tab, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	o.ctx = tab
	// The first Run creates the target and binds it to tab, not to a
	// step's deadline.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open a second browser context: %v", err)
	}
	if err := chromedp.Listen(tab, o.record); err != nil {
		t.Fatalf("listen to the second context: %v", err)
	}
	return o
}

// accountState is what the account page shows, read from the DOM.
type accountState struct {
	H1, Notice, Problem string
	NoticeVisible       bool
	Sessions            int
	Current             int
	OtherButtons        int
	Tokens              []string
	Labels              map[string]string // input id -> its label's text
	Unlabelled          []string          // ids of inputs (not hidden) without a label
}

const readAccountJS = `(() => {
  const q = s => document.querySelector(s), qa = s => [...document.querySelectorAll(s)];
  const labels = {}, unlabelled = [];
  for (const el of qa('input:not([type=hidden]):not([hidden]), select')) {
    if (el.labels && el.labels.length) labels[el.id] = el.labels[0].textContent.trim();
    else unlabelled.push(el.id || el.name);
  }
  const notice = q('.notice');
  return {
    H1: (q('h1') || {}).textContent || '',
    Notice: notice ? notice.textContent.trim() : '', NoticeVisible: !!notice && notice.getClientRects().length > 0,
    Problem: (q('#form-error') || {}).textContent || '',
    Sessions: qa('#sessions > li').length, Current: qa('#sessions > li[aria-current=true]').length,
    OtherButtons: qa('#sessions > li:not([aria-current]) button').length,
    Tokens: qa('#tokens .item-title').map(e => e.textContent.trim()),
    Labels: labels, Unlabelled: unlabelled,
  };
})()`

// contrastJS measures, for every element that shows text, the contrast of
// its colour against the background it is drawn on (the nearest opaque
// background up the tree), and for every field and outlined button the
// contrast of its border against that background. WCAG 2.2: 4.5:1 for text
// (1.4.3), 3:1 for the boundary of a control (1.4.11).
const contrastJS = `(() => {
  const rgb = s => { const m = s.match(/[\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const bg = el => { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.a > 0.5) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!el.getClientRects().length) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()) || (el.tagName === 'INPUT' && el.value);
    const cs = getComputedStyle(el);
    if (own) { const r = ratio(rgb(cs.color), bg(el)); if (r < 4.5) bad.push(el.tagName + '.' + el.className + ' "' + (el.textContent || el.value).trim().slice(0, 30) + '" text ' + r.toFixed(2)); }
    if (el.matches('input:not([type=hidden]), select, button.secondary, button.danger, .items li')) {
      const r = ratio(rgb(cs.borderTopColor), bg(el.parentElement));
      if (r < 3) bad.push(el.tagName + '.' + el.className + ' border ' + r.toFixed(2));
    }
  }
  return bad;
})()`

func TestBrowserAccountPage(t *testing.T) {
	findBrowser(t)
	g := newTestGateway(t, browserConfig(t, "open"), nil)
	a := newTestBrowser(t)
	b := a.otherContext(t)
	shots := artifactsDir(t)
	const email, pw1, pw2 = "account.user@example.com", "first password 1", "second password 2"
	wantChain := func(step string, br *testBrowser, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Fatalf("%s: document requests\n got %q\nwant %q%s", step, got, want, br.diagnostics())
		}
	}
	readAccount := func(step string, br *testBrowser) accountState {
		t.Helper()
		s := evalJS[accountState](t, br, step+": read the account page", readAccountJS)
		if s.H1 != "Your account" {
			t.Fatalf("%s: h1 %q, want Your account%s", step, s.H1, br.diagnostics())
		}
		return s
	}
	signIn := func(step string, br *testBrowser, password string, want ...string) []string {
		t.Helper()
		br.do(t, step+": type the credentials",
			chromedp.Evaluate[chromedp.Void](`document.querySelector('#email').value = ''; document.querySelector('#password').value = ''`),
			chromedp.SendKeys(chromedp.CSS(`#email`), email), chromedp.SendKeys(chromedp.CSS(`#password`), password))
		chain := br.navigate(t, step+": sign in", chromedp.Click(chromedp.CSS(`button[type=submit]`)))
		wantChain(step, br, chain, want...)
		return chain
	}
	checkContrast := func(step string, br *testBrowser) {
		t.Helper()
		if bad := evalJS[[]string](t, br, step+": measure contrast", contrastJS); len(bad) > 0 {
			t.Errorf("%s: contrast below WCAG AA:\n  %s", step, strings.Join(bad, "\n  "))
		}
	}

	// The account exists; no page shows before signing in.
	c := newClient(t)
	st, _, body := do(t, c, "POST", g.public+"/register", "application/json", `{"email":"`+email+`","password":"`+pw1+`"}`)
	if st != http.StatusCreated {
		t.Fatalf("register: %d %s", st, body)
	}
	if st, _, body := do(t, c, "POST", g.public+"/logout", "", ""); st != http.StatusNoContent {
		t.Fatalf("end the registration's session: %d %s", st, body)
	}

	// 1. Both contexts sign in through the page; /account sends them to
	// the sign-in page and back.
	chain := a.navigate(t, "A opens /account", chromedp.Navigate(g.public+"/account"))
	wantChain("step 1 A", a, chain, "GET /account 302", "GET /login?rd=%2Faccount 200")
	signIn("step 1 A", a, pw1, "POST /login 303", "GET /account 200")
	chain = b.navigate(t, "B opens /account", chromedp.Navigate(g.public+"/account"))
	wantChain("step 1 B", b, chain, "GET /account 302", "GET /login?rd=%2Faccount 200")
	signIn("step 1 B", b, pw1, "POST /login 303", "GET /account 200")
	if cc := b.lastDocHeader("Cache-Control"); cc != "no-store" {
		t.Errorf("step 1: /account Cache-Control %q, want no-store", cc)
	}
	if csp := b.lastDocHeader("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("step 1: /account CSP %q", csp)
	}

	// 2. A sees two sessions, its own marked; every field is labelled.
	a.navigate(t, "A reloads /account", chromedp.Navigate(g.public+"/account"))
	s := readAccount("step 2", a)
	if s.Sessions != 2 || s.Current != 1 || s.OtherButtons != 1 {
		t.Fatalf("step 2: %d sessions, %d current, %d sign-out buttons; want 2, 1, 1%s", s.Sessions, s.Current, s.OtherButtons, a.diagnostics())
	}
	if len(s.Unlabelled) > 0 {
		t.Errorf("step 2: fields without a label: %v", s.Unlabelled)
	}
	for id, want := range map[string]string{"current_password": "Current password", "new_password": "New password",
		"confirm_password": "Confirm new password", "token-name": "Name", "token-ttl": "Lifetime"} {
		if s.Labels[id] != want {
			t.Errorf("step 2: label of #%s = %q, want %q", id, s.Labels[id], want)
		}
	}
	if bg := evalJS[string](t, a, "read the button colour", `getComputedStyle(document.querySelector('form[action$="/password"] button')).backgroundColor`); bg != "rgb(10, 91, 211)" {
		t.Errorf("step 2: button background %q: is the inline style blocked?", bg)
	}
	checkContrast("step 2 light", a)
	// The measurement must be able to fail: grey on white is 2.3:1.
	canary := evalJS[[]string](t, a, "contrast canary", `(() => { const p = document.createElement('p');
		p.textContent = 'contrast canary'; p.style.color = '#aaaaaa'; document.querySelector('main').append(p);
		const bad = `+contrastJS+`; p.remove(); return bad; })()`)
	if len(canary) != 1 || !strings.Contains(canary[0], "contrast canary") {
		t.Errorf("step 2: the contrast check missed a 2.3:1 text: %q", canary)
	}
	for _, w := range []int64{375, 1280} {
		a.do(t, "resize", chromedp.EmulateViewport(w, 900))
		a.screenshot(t, shots, "account-"+strconv.FormatInt(w, 10)+".png")
	}
	a.do(t, "switch to the dark theme", colorScheme("dark"))
	checkContrast("step 2 dark", a)
	a.screenshot(t, shots, "account-1280-dark.png")
	a.do(t, "narrow, dark", chromedp.EmulateViewport(375, 900))
	a.screenshot(t, shots, "account-375-dark.png")
	a.do(t, "back to light and 1280", colorScheme(""), chromedp.EmulateViewport(1280, 900))

	// 3. A signs the other session out; B's next navigation is the
	// sign-in page.
	chain = a.navigate(t, "A signs B out", chromedp.Click(chromedp.CSS(`#sessions > li:not([aria-current]) button`)))
	wantChain("step 3", a, chain, "POST /account/sessions/revoke 303", "GET /account?done=session 200")
	if s = readAccount("step 3", a); s.Sessions != 1 || s.Notice != "That session has been signed out." || !s.NoticeVisible {
		t.Errorf("step 3: %d sessions, notice %q (visible %v)", s.Sessions, s.Notice, s.NoticeVisible)
	}
	checkContrast("step 3 notice", a)
	chain = b.navigate(t, "B reloads", chromedp.Navigate(g.public+"/account"))
	wantChain("step 3 B", b, chain, "GET /account 302", "GET /login?rd=%2Faccount 200")

	// 4. A changes the password; the old one then fails, the new one works.
	a.do(t, "type the passwords",
		chromedp.SendKeys(chromedp.CSS(`#current_password`), pw1),
		chromedp.SendKeys(chromedp.CSS(`#new_password`), pw2),
		chromedp.SendKeys(chromedp.CSS(`#confirm_password`), pw2))
	chain = a.navigate(t, "A changes the password", chromedp.Click(chromedp.CSS(`form[action$="/password"] button`)))
	wantChain("step 4", a, chain, "POST /account/password 303", "GET /account?done=password 200")
	if s = readAccount("step 4", a); !strings.HasPrefix(s.Notice, "Your password has been changed.") || s.Sessions != 1 {
		t.Errorf("step 4: notice %q, %d sessions", s.Notice, s.Sessions)
	}
	signIn("step 4 old password", b, pw1, "POST /login 401")
	signIn("step 4 new password", b, pw2, "POST /login 303", "GET /account 200")

	// 5. A creates a token; it shows once, and works as a Bearer token.
	a.do(t, "name the token", chromedp.SendKeys(chromedp.CSS(`#token-name`), "laptop script"))
	chain = a.navigate(t, "A creates a token", chromedp.Click(chromedp.CSS(`form[action$="/tokens"] button`)))
	wantChain("step 5", a, chain, "POST /account/tokens 200")
	type shown struct {
		Value          string
		ReadOnly, Copy bool
		Label          string
	}
	nt := evalJS[shown](t, a, "read the new token", `(() => { const e = document.querySelector('#new-token');
		return e ? {Value: e.value, ReadOnly: e.readOnly, Copy: e.hasAttribute('data-copy'), Label: e.labels[0].textContent} : {}; })()`)
	if !strings.HasPrefix(nt.Value, "ght1.") || !nt.ReadOnly || !nt.Copy || !strings.Contains(nt.Label, "laptop script") {
		t.Fatalf("step 5: new token field %+v", nt)
	}
	checkContrast("step 5 new token", a)
	a.screenshot(t, shots, "account-token-1280.png")
	a.do(t, "dark theme", colorScheme("dark"))
	checkContrast("step 5 new token, dark", a)
	a.do(t, "light theme", colorScheme(""))
	st, _, body = do(t, newClient(t), "GET", g.public+"/app/report", "", "", "Authorization", "Bearer "+nt.Value)
	if st != http.StatusOK {
		t.Fatalf("step 5: the page's token as Bearer: %d %s", st, body)
	}
	var echo echoed
	if err := json.Unmarshal([]byte(body), &echo); err != nil || echo.Path != "/app/report" || len(echo.Headers["X-User-Email"]) != 1 || echo.Headers["X-User-Email"][0] != email {
		t.Errorf("step 5: backend saw %+v (%v)", echo, err)
	}
	a.navigate(t, "A reloads /account", chromedp.Navigate(g.public+"/account"))
	if s = readAccount("step 5", a); !slices.Equal(s.Tokens, []string{"laptop script"}) {
		t.Errorf("step 5: tokens listed %q", s.Tokens)
	}
	if html := evalJS[string](t, a, "read the page source", `document.documentElement.outerHTML`); strings.Contains(html, nt.Value) || strings.Contains(html, "ght1.") {
		t.Errorf("step 5: the token shows again after the reload")
	}

	// An error message is as readable as the rest.
	a.navigate(t, "A opens a page with an error", chromedp.Navigate(g.public+"/account?error=invalid_credentials"))
	if s = readAccount("step 5 error", a); s.Problem != "The current password is incorrect." {
		t.Errorf("step 5: ?error=invalid_credentials shows %q", s.Problem)
	}
	checkContrast("step 5 error", a)
	a.do(t, "dark theme", colorScheme("dark"))
	checkContrast("step 5 error, dark", a)
	a.do(t, "light theme", colorScheme(""))

	// 6. Sign out everywhere: A lands on the sign-in page, and B's session
	// from step 4 is gone too.
	chain = a.navigate(t, "A signs out everywhere", chromedp.Click(chromedp.CSS(`button.danger`)))
	wantChain("step 6", a, chain, "POST /logout?all=1 303", "GET /login 200")
	chain = b.navigate(t, "B reloads", chromedp.Navigate(g.public+"/account"))
	wantChain("step 6 B", b, chain, "GET /account 302", "GET /login?rd=%2Faccount 200")

	checkConsole(t, a.snapshotMessages())
	checkConsole(t, b.snapshotMessages())
}

package auth

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAccountPageSecondFactor: the account page sets TOTP up (QR code as a
// data: image the CSP then allows, the key to type, the same QR code again
// after a wrong code), shows the recovery codes once, turns TOTP off with a
// code, and lists and removes passkeys.
func TestAccountPageSecondFactor(t *testing.T) {
	forEachStore(t, factorTune, func(t *testing.T, e *testEnv) {
		g := newFactorGateway(t, e)
		tok := g.register("ann@example.com", "correct horse")
		form := func(path string, v url.Values) result {
			return g.do(request{method: "POST", path: path, contentType: formType, body: v.Encode(), cookie: tok})
		}
		page := func(path string) result {
			t.Helper()
			res := g.do(request{method: "GET", path: path, cookie: tok})
			if res.status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, res.status, res.body)
			}
			return res
		}
		res := page("/account")
		for _, want := range []string{
			`action="/account/totp"`, `Set up an authenticator app`,
			`<form id="passkey-add" hidden data-passkey="register" data-options="/me/passkeys/options" data-finish="/me/passkeys">`,
			`You have no passkeys.`, `<script src="/account/gatehouse.js" defer></script>`,
		} {
			if !strings.Contains(res.body, want) {
				t.Errorf("account page lacks %s", want)
			}
		}
		if csp := res.header.Get("Content-Security-Policy"); strings.Contains(csp, "img-src") {
			t.Errorf("CSP %q allows images without a QR code", csp)
		}

		res = form("/account/totp", nil)
		secretRE := regexp.MustCompile(`id="totp-secret" type="text" readonly value="([A-Z2-7]+)"`)
		m := secretRE.FindStringSubmatch(res.body)
		if res.status != http.StatusOK || m == nil || !strings.Contains(res.body, `<img src="data:image/png;base64,`) {
			t.Fatalf("set-up answer: %d %s", res.status, res.body)
		}
		secret := m[1]
		if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src data:") {
			t.Errorf("CSP %q does not allow the QR code", csp)
		}
		if res.header.Get("Cache-Control") != "no-store" {
			t.Error("the secret's page may be cached")
		}
		res = form("/account/totp/confirm", url.Values{"code": {"000000"}})
		if m := secretRE.FindStringSubmatch(res.body); m == nil || m[1] != secret || !strings.Contains(res.body, "That code is not right") {
			t.Fatalf("wrong code: %d %s", res.status, res.body)
		}
		res = form("/account/totp/confirm", url.Values{"code": {codeAt(t, secret, e.clock.Now())}})
		codes := regexp.MustCompile(`(?s)<pre id="recovery-codes"[^>]*>(.*?)</pre>`).FindStringSubmatch(res.body)
		if res.status != http.StatusOK || codes == nil || len(strings.Fields(codes[1])) != recoveryCodeCount {
			t.Fatalf("confirm answer: %d %s", res.status, res.body)
		}
		if s := g.meFactors(tok); !s.MFA || len(s.Factors) != 1 {
			t.Errorf("after the page's set-up: %+v", s)
		}
		if strings.Contains(page("/account").body, "recovery-codes") {
			t.Error("recovery codes shown again")
		}
		e.clock.add(totpPeriod * time.Second)

		res = form("/account/totp/disable", url.Values{"code": {"000000"}})
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/account?error=invalid_code" {
			t.Errorf("wrong code to turn off: %d %v", res.status, res.header.Get("Location"))
		}
		if !strings.Contains(page("/account?error=invalid_code").body, "That code is not right") {
			t.Error("the page does not say the code was wrong")
		}
		res = form("/account/totp/disable", url.Values{"code": {strings.Fields(codes[1])[0]}})
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/account?done=totp_off" {
			t.Errorf("turn off: %d %v", res.status, res.header.Get("Location"))
		}
		if !strings.Contains(page("/account?done=totp_off").body, "turned off") {
			t.Error("no notice after turning off")
		}

		addTestPasskey(t, e, User{ID: mustUserID(t, e, tok), Email: "ann@example.com"}, "anns-key", 0)
		res = page("/account")
		if !strings.Contains(res.body, `<p class="item-title" id="pk-YW5ucy1rZXk">key anns-key</p>`) {
			t.Errorf("passkey not listed: %s", res.body)
		}
		res = form("/account/passkeys/remove", url.Values{"id": {"b3RoZXI"}})
		if res.header.Get("Location") != "/account?error=not_found" {
			t.Errorf("remove an unknown passkey: %d %v", res.status, res.header.Get("Location"))
		}
		res = form("/account/passkeys/remove", url.Values{"id": {"YW5ucy1rZXk"}})
		if res.header.Get("Location") != "/account?done=passkey" {
			t.Errorf("remove: %d %v", res.status, res.header.Get("Location"))
		}
		if s := g.meFactors(tok); len(s.Factors) != 0 {
			t.Errorf("factors left: %v", s.Factors)
		}
	})
}

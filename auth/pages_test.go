package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

func renderTestPage(t *testing.T, which string, d pageData) (*httptest.ResponseRecorder, string) {
	t.Helper()
	ps, err := loadPages()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	switch which {
	case "login":
		err = ps.render(rec, ps.login, http.StatusOK, d)
	case "register":
		err = ps.render(rec, ps.register, http.StatusOK, d)
	case "closed":
		err = ps.render(rec, ps.closed, http.StatusForbidden, d)
	default:
		t.Fatalf("no page %q", which)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rec, rec.Body.String()
}

var styleRE = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// checkPageHeaders asserts the security headers of every page and that the
// CSP's style hash is the hash of the page's one inline stylesheet.
func checkPageHeaders(t *testing.T, h http.Header, body string) {
	t.Helper()
	want := map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	m := styleRE.FindAllStringSubmatch(body, -1)
	if len(m) != 1 {
		t.Fatalf("%d <style> elements, want 1", len(m))
	}
	sum := sha256.Sum256([]byte(m[0][1]))
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	csp := h.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "style-src " + hash, "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, d)
		}
	}
	// Nothing is fetched but the gateway's own script, at most once: no
	// inline script, no external stylesheet, font or image.
	rest := body
	if i := strings.Index(body, `<script src="`); i >= 0 {
		end := strings.Index(body[i:], `</script>`)
		if end < 0 || body[i:i+end] != `<script src="/account/gatehouse.js" defer>` {
			t.Errorf("script element %q is not the gateway's script", body[i:])
		}
		if end >= 0 {
			rest = body[:i] + body[i+end:]
		}
	}
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "src=", "@import", "url("} {
		if strings.Contains(rest, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
}

func TestPagesLogin(t *testing.T) {
	rec, body := renderTestPage(t, "login", pageData{
		LoginPath: "/login", RegisterPath: "/register", RegistrationOpen: true, MinLength: 8, RD: "/app?x=1&y=2",
	})
	checkPageHeaders(t, rec.Header(), body)
	for _, want := range []string{
		`<html lang="en">`,
		`<title>Sign in · Gatehouse</title>`,
		`<p class="brand">Gatehouse</p>`,
		`<h1>Sign in</h1>`,
		`<div id="form-error" class="error" role="alert"></div>`,
		`<form method="post" action="/login">`,
		`<input type="hidden" name="rd" value="/app?x=1&amp;y=2">`,
		`<label for="email">Email</label>`,
		`<input id="email" name="email" type="email" autocomplete="email" required value=""`,
		`<label for="password">Password</label>`,
		`<input id="password" name="password" type="password" autocomplete="current-password" required`,
		`<button type="submit">Sign in</button>`,
		`<a href="/register?rd=%2fapp%3fx%3d1%26y%3d2">Create one</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %s\n%s", want, body)
		}
	}
}

func TestPagesLoginWithoutRegistration(t *testing.T) {
	_, body := renderTestPage(t, "login", pageData{LoginPath: "/login", RegisterPath: "/register"})
	if strings.Contains(body, `href="/register`) {
		t.Errorf("login page links to registration while it is closed")
	}
	if strings.Contains(body, `name="rd"`) {
		t.Errorf("login page has an rd field without a return target")
	}
}

func TestPagesRegisterError(t *testing.T) {
	msg := pageMessage(apierror.WeakPassword, 12, 0)
	rec, body := renderTestPage(t, "register", pageData{
		LoginPath: "/login", RegisterPath: "/register", RegistrationOpen: true, MinLength: 12,
		Email: `x"><script>alert(1)</script>@example.com`, Error: msg,
	})
	checkPageHeaders(t, rec.Header(), body)
	for _, want := range []string{
		`<h1>Create an account</h1>`,
		`<form method="post" action="/register">`,
		`<div id="form-error" class="error" role="alert">Passwords must be at least 12 characters and at most 72 bytes long.</div>`,
		`value="x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@example.com" aria-invalid="true" aria-describedby="form-error"`,
		`autocomplete="new-password" required minlength="12" aria-describedby="password-hint form-error" aria-invalid="true"`,
		`<p id="password-hint" class="hint">At least 12 characters and at most 72 bytes.</p>`,
		`<a href="/login">Sign in</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("register page lacks %s\n%s", want, body)
		}
	}
}

func TestPagesClosed(t *testing.T) {
	rec, body := renderTestPage(t, "closed", pageData{LoginPath: "/login", RegisterPath: "/register", RD: "/x"})
	checkPageHeaders(t, rec.Header(), body)
	if rec.Code != http.StatusForbidden {
		t.Errorf("status = %d, want 403", rec.Code)
	}
	for _, want := range []string{`<h1>Registration is closed</h1>`, `<a href="/login?rd=%2fx">Sign in</a>`} {
		if !strings.Contains(body, want) {
			t.Errorf("closed page lacks %s\n%s", want, body)
		}
	}
	if strings.Contains(body, "<form") {
		t.Errorf("closed page has a form")
	}
}

func TestPagesCSPFormActionForAbsoluteRD(t *testing.T) {
	ps, err := loadPages()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ rd, want string }{
		{"", "form-action 'self';"},
		{"/app", "form-action 'self';"},
		{"https://App.Example.com:8443/x?y", "form-action 'self' https://app.example.com:8443;"},
	}
	for _, tc := range tests {
		if got := ps.csp(tc.rd, false); !strings.Contains(got, tc.want) {
			t.Errorf("csp(%q) = %q, want it to contain %q", tc.rd, got, tc.want)
		}
	}
}

func TestPageMessages(t *testing.T) {
	tests := []struct {
		code  apierror.Code
		retry time.Duration
		want  string
	}{
		{apierror.InvalidCredentials, 0, "The email or password is incorrect."},
		{apierror.WeakPassword, 0, "at least 8 characters and at most 72 bytes"},
		{apierror.EmailTaken, 0, "already exists"},
		{apierror.TooManyAttempts, 14*time.Minute + time.Second, "Try again in 15 minutes."},
		{apierror.TooManyAttempts, 30 * time.Second, "Try again in 1 minute."},
		{apierror.RegistrationClosed, 0, "Registration is closed"},
		{apierror.InvalidEmail, 0, "valid email address"},
		{apierror.StoreUnavailable, 0, "temporarily unavailable"},
		{apierror.InvalidRequest, 0, "could not be read"},
		{apierror.PayloadTooLarge, 0, "too large"},
		{apierror.InternalError, 0, "Something went wrong"},
	}
	for _, tc := range tests {
		if got := pageMessage(tc.code, 8, tc.retry); !strings.Contains(got, tc.want) {
			t.Errorf("pageMessage(%s) = %q, want it to contain %q", tc.code, got, tc.want)
		}
	}
}

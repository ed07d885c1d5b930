package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

func TestHTTPPages(t *testing.T) {
	g := newTestGateway(t, nil)
	own := "http://" + g.host + "/x"
	tests := []struct {
		name, path string
		header     []string
		wantStatus int
		want       []string
		notWant    []string
	}{
		{"login", "/login", nil, 200,
			[]string{`<h1>Sign in</h1>`, `action="/login"`, `autocomplete="current-password"`, `href="/register"`},
			[]string{`name="rd"`}},
		{"login rd", "/login?rd=%2Fapp%3Fa%3D1", nil, 200,
			[]string{`<input type="hidden" name="rd" value="/app?a=1">`, `href="/register?rd=%2fapp%3fa%3d1"`}, nil},
		{"login evil rd", "/login?rd=%2F%2Fevil.com", nil, 200,
			[]string{`<input type="hidden" name="rd" value="/">`}, []string{"evil.com"}},
		{"login own absolute rd", "/login?rd=" + url.QueryEscape(own), nil, 200,
			[]string{`<input type="hidden" name="rd" value="` + own + `">`}, nil},
		{"login cross-site GET", "/login", []string{"Sec-Fetch-Site", "cross-site"}, 200, []string{`<h1>Sign in</h1>`}, nil},
		{"register", "/register?rd=/app", nil, 200,
			[]string{`<h1>Create an account</h1>`, `action="/register"`, `autocomplete="new-password"`, `minlength="8"`,
				`value="/app"`, `href="/login?rd=%2fapp"`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := g.do(request{method: "GET", path: tc.path, header: tc.header})
			if res.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d", res.status, tc.wantStatus)
			}
			checkPageHeaders(t, res.header, res.body)
			for _, w := range tc.want {
				if !strings.Contains(res.body, w) {
					t.Errorf("page lacks %s", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(res.body, w) {
					t.Errorf("page holds %s", w)
				}
			}
		})
	}

	res := g.do(request{method: "GET", path: "/login?rd=" + url.QueryEscape(own)})
	if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' http://"+g.host+";") {
		t.Errorf("CSP %q does not let the form's redirect reach %s", csp, g.host)
	}
	head := g.do(request{method: "HEAD", path: "/login"})
	if head.status != 200 || head.body != "" || head.header.Get("Content-Security-Policy") == "" {
		t.Errorf("HEAD /login: status %d, body %q, CSP %q", head.status, head.body, head.header.Get("Content-Security-Policy"))
	}
}

func TestHTTPRegisterClosed(t *testing.T) {
	g := newTestGateway(t, func(c *config.Config) { c.Auth.Registration = config.RegistrationClosed })
	res := g.do(request{method: "GET", path: "/register?rd=/app"})
	if res.status != http.StatusForbidden {
		t.Fatalf("status = %d, want 403", res.status)
	}
	checkPageHeaders(t, res.header, res.body)
	for _, w := range []string{"Registration is closed", `href="/login?rd=%2fapp"`} {
		if !strings.Contains(res.body, w) {
			t.Errorf("page lacks %s", w)
		}
	}
	login := g.do(request{method: "GET", path: "/login"})
	if strings.Contains(login.body, `href="/register`) {
		t.Error("sign-in page links to closed registration")
	}
	checkError(t, g.do(request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON("a@example.com", "password1")}),
		apierror.RegistrationClosed)
	form := g.do(request{method: "POST", path: "/register", contentType: formType, body: credsForm("a@example.com", "password1", "")})
	if form.status != http.StatusForbidden || !strings.Contains(form.body, "<h1>Registration is closed</h1>") {
		t.Errorf("form post: status = %d, want 403 and the closed page", form.status)
	}
}

// TestHTTPFormFlows posts HTML forms: success is 303 to the sanitised rd
// with the cookie set, failure is the page again with the table's status,
// the message and the email refilled, never the password.
func TestHTTPFormFlows(t *testing.T) {
	g := newTestGateway(t, func(c *config.Config) {
		c.Auth.AllowedRedirectHosts = []string{"app.example.net"}
		c.Auth.AllowedEmailDomains = []string{"example.com"}
		c.Auth.MaxLoginFailures = 3
	})
	g.register("form@example.com", "password1")
	const secret = "s3cret-Pa55"
	type want struct {
		status   int
		location string   // for 303
		page     []string // for an HTML answer
	}
	tests := []struct {
		name, path, body string
		want             want
	}{
		{"register success", "/register", credsForm("new@example.com", "password1", "/welcome"), want{status: 303, location: "/welcome"}},
		{"register no rd", "/register", credsForm("new2@example.com", "password1", ""), want{status: 303, location: "/"}},
		{"login success", "/login", credsForm("form@example.com", "password1", "/app?x=1"), want{status: 303, location: "/app?x=1"}},
		// The 302 to sign in carries rd in the query; a form that posts
		// back to that URL without an rd field still returns there.
		{"login rd in the query", "/login?rd=%2Fapp%2Fx", credsForm("form@example.com", "password1", ""), want{status: 303, location: "/app/x"}},
		{"login rd field wins over the query", "/login?rd=%2Fother", credsForm("form@example.com", "password1", "/app/y"), want{status: 303, location: "/app/y"}},
		{"login allowed host", "/login", credsForm("form@example.com", "password1", "https://app.example.net/x"), want{status: 303, location: "https://app.example.net/x"}},
		{"login evil rd", "/login", credsForm("form@example.com", "password1", "/\\evil.com"), want{status: 303, location: "/"}},
		{"login wrong password", "/login", credsForm("form@example.com", secret, "/app"), want{status: 401,
			page: []string{"<h1>Sign in</h1>", "The email or password is incorrect.", `value="form@example.com"`, `name="rd" value="/app"`}}},
		{"login unknown email", "/login", credsForm("ghost@example.com", secret, ""), want{status: 401,
			page: []string{"The email or password is incorrect.", `value="ghost@example.com"`}}},
		{"login invalid email", "/login", credsForm("ghost", secret, ""), want{status: 400, page: []string{"Enter a valid email address."}}},
		{"login too long", "/login", credsForm("form@example.com", strings.Repeat("x", 73), ""), want{status: 400,
			page: []string{"at least 8 characters and at most 72 bytes"}}},
		{"login duplicate field", "/login", "email=form%40example.com&password=" + secret + "&password=password1", want{status: 400,
			page: []string{"The form could not be read."}}},
		{"login unknown field", "/login", "email=form%40example.com&password=" + secret + "&admin=1", want{status: 400,
			page: []string{"The form could not be read."}}},
		{"login missing field", "/login", "email=form%40example.com", want{status: 400, page: []string{"The form could not be read."}}},
		{"login too large", "/login", credsForm("form@example.com", strings.Repeat("x", 64<<10), ""), want{status: 413,
			page: []string{"The form is too large."}}},
		{"register taken", "/register", credsForm(" Form@Example.com", secret, "/app"), want{status: 409,
			page: []string{"<h1>Create an account</h1>", "already exists", `value="Form@Example.com"`, `name="rd" value="/app"`}}},
		{"register weak", "/register", credsForm("weak@example.com", "short", ""), want{status: 400,
			page: []string{"at least 8 characters and at most 72 bytes"}}},
		{"register invalid email", "/register", credsForm("@example.com", secret, ""), want{status: 400, page: []string{"Enter a valid email address."}}},
		{"register domain", "/register", credsForm("x@other.org", secret, ""), want{status: 403,
			page: []string{"<h1>Create an account</h1>", "Registration is closed for this email address."}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := g.do(request{method: "POST", path: tc.path, contentType: formType, body: tc.body})
			if res.status != tc.want.status {
				t.Fatalf("status = %d, want %d (%s)", res.status, tc.want.status, res.body)
			}
			checkNoStore(t, res)
			if tc.want.status == http.StatusSeeOther {
				if got := res.header.Get("Location"); got != tc.want.location {
					t.Errorf("Location = %q, want %q", got, tc.want.location)
				}
				tok := g.sessionToken(res)
				if got := res.header.Get("Set-Cookie"); got != wantSessionCookie(tok) {
					t.Errorf("Set-Cookie = %q", got)
				}
				return
			}
			checkPageHeaders(t, res.header, res.body)
			for _, w := range tc.want.page {
				if !strings.Contains(res.body, w) {
					t.Errorf("page lacks %s\n%s", w, res.body)
				}
			}
			if strings.Contains(res.body, secret) {
				t.Error("page sent the password back")
			}
			if sc := res.header.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("failed form post set a cookie: %q", sc)
			}
		})
	}
	if strings.Contains(g.logs.String(), secret) {
		t.Error("a password reached the log")
	}
}

func TestHTTPFormThrottled(t *testing.T) {
	g := newTestGateway(t, func(c *config.Config) {
		c.Auth.MaxLoginFailures = 1
		c.Auth.LoginFailureWindow = config.Duration(10 * time.Minute)
	})
	g.register("t@example.com", "password1")
	bad := request{method: "POST", path: "/login", contentType: formType, body: credsForm("t@example.com", "nope-nope", "")}
	if res := g.do(bad); res.status != http.StatusUnauthorized {
		t.Fatalf("first failure: status = %d", res.status)
	}
	res := g.do(request{method: "POST", path: "/login", contentType: formType, body: credsForm("t@example.com", "password1", "")})
	if res.status != http.StatusTooManyRequests {
		t.Fatalf("status = %d, want 429", res.status)
	}
	if res.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if !strings.Contains(res.body, "Try again in 10 minutes.") {
		t.Errorf("page does not say how long to wait:\n%s", res.body)
	}
}

func TestHTTPLogoutForm(t *testing.T) {
	g := newTestGateway(t, nil)
	tok := g.register("bye@example.com", "password1")
	tests := []struct{ name, body, location string }{
		{"no rd", "", "/login"},
		{"rd", "rd=%2Fbye", "/bye"},
		{"evil rd", "rd=%2F%2Fevil.com", "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := g.do(request{method: "POST", path: "/logout", contentType: formType, body: tc.body, cookie: tok})
			if res.status != http.StatusSeeOther {
				t.Fatalf("status = %d, want 303", res.status)
			}
			if got := res.header.Get("Location"); got != tc.location {
				t.Errorf("Location = %q, want %q", got, tc.location)
			}
			if got := res.header.Get("Set-Cookie"); got != wantClearCookie {
				t.Errorf("Set-Cookie = %q, want %q", got, wantClearCookie)
			}
			checkNoStore(t, res)
		})
	}
	if g.alive(tok) {
		t.Error("session survived a form logout")
	}
}

func TestHTTPCrossOrigin(t *testing.T) {
	g := newTestGateway(t, func(c *config.Config) { c.CSRF.TrustedOrigins = []string{"https://trusted.example"} })
	g.register("csrf@example.com", "password1")
	tests := []struct {
		name   string
		header []string
		wantOK bool
	}{
		{"sec-fetch-site cross-site", []string{"Sec-Fetch-Site", "cross-site"}, false},
		{"sec-fetch-site same-site", []string{"Sec-Fetch-Site", "same-site"}, false},
		{"sec-fetch-site same-origin", []string{"Sec-Fetch-Site", "same-origin"}, true},
		{"sec-fetch-site none", []string{"Sec-Fetch-Site", "none"}, true},
		{"no headers (not a browser)", nil, true},
		{"origin mismatch", []string{"Origin", "http://evil.example"}, false},
		{"origin null", []string{"Origin", "null"}, false},
		{"origin matches host", []string{"Origin", "http://" + g.host}, true},
		{"origin other port", []string{"Origin", "http://" + strings.Split(g.host, ":")[0] + ":1"}, false},
		{"trusted origin cross-site", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://trusted.example"}, true},
		{"trusted origin without fetch metadata", []string{"Origin", "https://trusted.example"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/login", "/register", "/logout"} {
				body := credsJSON("csrf@example.com", "password1")
				switch path {
				case "/register":
					body = credsJSON(fmt.Sprintf("csrf-%d@example.com", time.Now().UnixNano()), "password1")
				case "/logout":
					body = "{}" // logout has no fields
				}
				res := g.do(request{method: "POST", path: path, contentType: jsonType, body: body, header: tc.header})
				if !tc.wantOK {
					checkError(t, res, apierror.CrossOrigin)
					continue
				}
				if res.status >= 300 {
					t.Errorf("%s: status = %d, want success (%s)", path, res.status, res.body)
				}
			}
		})
	}
}

func TestHTTPStoreDown(t *testing.T) {
	g := newTestGateway(t, nil)
	tok := g.register("down@example.com", "password1")
	g.mr.Close()
	tests := []struct {
		name string
		rq   request
	}{
		{"logout cookie", request{method: "POST", path: "/logout", cookie: tok}},
		{"logout all", request{method: "POST", path: "/logout?all=1", cookie: tok}},
		{"logout bearer", request{method: "POST", path: "/logout", header: []string{"Authorization", "Bearer " + tok}}},
		{"me cookie", request{method: "GET", path: "/me", cookie: tok}},
		{"login", request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON("down@example.com", "password1"), cookie: tok}},
		{"register", request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON("new@example.com", "password1")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := g.do(tc.rq)
			checkError(t, res, apierror.StoreUnavailable)
			if sc := res.header.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("Set-Cookie %q while the store is down; the cookie must be kept", sc)
			}
		})
	}
	form := g.do(request{method: "POST", path: "/login", contentType: formType, body: credsForm("down@example.com", "password1", "")})
	if form.status != http.StatusServiceUnavailable || !strings.Contains(form.body, "temporarily unavailable") {
		t.Errorf("form login: status = %d, want 503 and the message", form.status)
	}
	// Nothing to end without a session: no store access needed.
	if res := g.do(request{method: "POST", path: "/logout"}); res.status != http.StatusNoContent {
		t.Errorf("logout without session: status = %d, want 204", res.status)
	}
	if strings.Contains(g.logs.String(), tok) {
		t.Error("a token reached the log")
	}
}

func TestWriteErrorInternal(t *testing.T) {
	logs := &syncBuffer{}
	ps, err := loadPages()
	if err != nil {
		t.Fatal(err)
	}
	h := &handlers{logger: slog.New(slog.NewJSONHandler(logs, nil)), pages: ps, minLength: 8}
	r := httptest.NewRequest("POST", "/login", nil)
	rec := httptest.NewRecorder()
	h.writeError(rec, r, fmt.Errorf("redis said: %w", errors.New("WRONGTYPE secret detail")), bodyJSON, nil)
	if rec.Code != 500 || rec.Body.String() != string(apierror.Body(apierror.InternalError)) {
		t.Errorf("answer = %d %s, want 500 internal_error", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "auth endpoint failed") {
		t.Errorf("unexpected error not logged: %s", logs)
	}
	// A known error is answered, not logged.
	logs.buf.Reset()
	h.writeError(httptest.NewRecorder(), r, ErrInvalidCredentials, bodyJSON, nil)
	if logs.String() != "" {
		t.Errorf("expected error was logged: %s", logs)
	}
	// The form page for an internal error shows no Go text either.
	rec = httptest.NewRecorder()
	h.writeError(rec, r, errors.New("WRONGTYPE secret detail"), bodyForm, &formPage{tmpl: ps.login, email: "a@b.c"})
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "WRONGTYPE") || !strings.Contains(rec.Body.String(), "Something went wrong") {
		t.Errorf("form answer = %d %s", rec.Code, rec.Body)
	}
}

func TestErrorCodeMapping(t *testing.T) {
	tests := []struct {
		err  error
		want apierror.Code
	}{
		{errBadBody, apierror.InvalidRequest},
		{errBodyTooLarge, apierror.PayloadTooLarge},
		{errMediaType, apierror.UnsupportedMediaType},
		{ErrInvalidEmail, apierror.InvalidEmail},
		{fmt.Errorf("x: %w", ErrWeakPassword), apierror.WeakPassword},
		{fmt.Errorf("x: %w", ErrRegistrationClosed), apierror.RegistrationClosed},
		{ErrEmailTaken, apierror.EmailTaken},
		{ErrInvalidCredentials, apierror.InvalidCredentials},
		{&ThrottledError{RetryAfter: time.Second}, apierror.TooManyAttempts},
		{ErrSessionNotFound, apierror.Unauthenticated},
		{fmt.Errorf("dial: %w", ErrStoreUnavailable), apierror.StoreUnavailable},
		{ErrUserNotFound, apierror.InternalError},
		{errors.New("boom"), apierror.InternalError},
	}
	for _, tc := range tests {
		if got := errorCode(tc.err); got != tc.want {
			t.Errorf("errorCode(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

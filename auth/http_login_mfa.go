package auth

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// factorCookies are the names and attributes of the two short-lived
// cookies of the second factor, and the paths they are scoped to:
//
//   - the pending sign-in (the second step after a right password), Path
//     LOGIN_PATH, Max-Age PendingTTL;
//   - a WebAuthn ceremony's state id, Path LOGIN_PATH (sign-in) or ME_PATH
//     (adding a passkey), Max-Age CeremonyTTL, cleared by its finish.
//
// Both are HttpOnly and SameSite=Strict, Secure as the session cookie is.
// Their names drop a __Host- prefix (which would force Path=/ and so send
// them to every upstream) for __Secure- when the cookie is Secure. Their
// values are random ids, not token-shaped: they are no session anywhere.
type factorCookies struct {
	pending, ceremony string // cookie names
	secure            bool
	loginPath, mePath string
	scriptPath        string
	script            http.Handler
}

func newFactorCookies(cfg *config.Config) factorCookies {
	base := strings.TrimPrefix(strings.TrimPrefix(cfg.Session.CookieName, "__Host-"), "__Secure-")
	prefix := ""
	if cfg.Session.CookieSecure {
		prefix = "__Secure-"
	}
	return factorCookies{
		pending:    prefix + base + "_2fa",
		ceremony:   prefix + base + "_webauthn",
		secure:     cfg.Session.CookieSecure,
		loginPath:  cfg.Auth.LoginPath,
		mePath:     cfg.Auth.MePath,
		scriptPath: cfg.Auth.AccountPath + "/gatehouse.js",
		script:     ScriptHandler(),
	}
}

func (fc *factorCookies) cookie(name, path, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: path, MaxAge: int(maxAge / time.Second),
		Secure: fc.secure, HttpOnly: true, SameSite: http.SameSiteStrictMode}
	if maxAge <= 0 {
		c.MaxAge = -1
	}
	return c
}

func (h *handlers) ceremonyCookie(path, state string) *http.Cookie {
	return h.fc.cookie(h.fc.ceremony, path, state, CeremonyTTL)
}

func (h *handlers) clearCeremonyCookie(path string) string {
	return h.fc.cookie(h.fc.ceremony, path, "", 0).String()
}

func (h *handlers) clearPendingCookie(w http.ResponseWriter, r *http.Request) {
	if cookieValue(r, h.fc.pending) != "" {
		w.Header().Add("Set-Cookie", h.fc.cookie(h.fc.pending, h.fc.loginPath, "", 0).String())
	}
}

// loginAPI routes the paths below LOGIN_PATH: the passkey sign-in.
func (h *handlers) loginAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var serve http.HandlerFunc
		switch strings.TrimPrefix(r.URL.Path, h.fc.loginPath+"/") {
		case "passkey/options":
			serve = h.passkeyLoginOptions
		case "passkey":
			serve = h.passkeyLogin
		default:
			h.writeError(w, r, errNotFoundPath, bodyJSON, nil)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			apierror.Write(w, apierror.MethodNotAllowed)
			return
		}
		serve(w, r)
	})
}

// loginBody is a POST /login body: the password step (email, password,
// optionally code) or, from the HTML second step, the code alone.
type loginBody struct {
	credentials
	Code       string
	secondStep bool
}

// readLoginBody reads a /login body as readCredentials does, with the
// optional code field.
func readLoginBody(w http.ResponseWriter, r *http.Request) (loginBody, bodyKind, error) {
	kind, err := mediaKind(r)
	if err != nil {
		return loginBody{}, kind, err
	}
	body, err := readBody(w, r)
	if err != nil {
		return loginBody{}, kind, err
	}
	var fields map[string]string
	if kind == bodyForm {
		fields, err = parseForm(body, "email", "password", "rd", "code")
	} else {
		fields, err = parseJSONObject(body, "email", "password", "code")
	}
	if err != nil {
		return loginBody{}, kind, err
	}
	e, okE := fields["email"]
	p, okP := fields["password"]
	code, okC := fields["code"]
	b := loginBody{credentials: credentials{Email: e, Password: p}, Code: code}
	if kind == bodyForm {
		b.RD = formRD(fields, r)
	}
	switch {
	case okE && okP:
	case kind == bodyForm && okC && !okE && !okP:
		b.secondStep = true
	default:
		return loginBody{}, kind, errBadBody
	}
	return b, kind, nil
}

// startSecondStep answers a form sign-in whose password was right for an
// account with a second factor: the pending state, its cookie, and the
// page that asks for the code (or the passkey).
func (h *handlers) startSecondStep(w http.ResponseWriter, r *http.Request, need *mfaNeeded, rd string) {
	id, err := h.svc.beginPending(r.Context(), need.user, need.hash)
	if err != nil {
		h.writeError(w, r, err, bodyForm, &formPage{tmpl: h.pages.login, email: need.user.Email, rd: rd})
		return
	}
	http.SetCookie(w, h.fc.cookie(h.fc.pending, h.fc.loginPath, id, PendingTTL))
	h.renderSecondStep(w, r, http.StatusOK, rd, "", need.factors)
}

// secondStep handles the HTML second step's post (field code).
func (h *handlers) secondStep(w http.ResponseWriter, r *http.Request, c loginBody) {
	id := cookieValue(r, h.fc.pending)
	prev, all := h.carried(r)
	info := credential.InfoFrom(r.Context())
	user, token, err := h.svc.secondStepCode(r.Context(), id, c.Code,
		LoginRequest{ClientIP: info.ClientIP, UserAgent: r.UserAgent(), Previous: prev, Devices: deviceCookies(r)})
	if errors.Is(err, errPendingGone) {
		h.clearPendingCookie(w, r)
		d := h.pageData(r, c.RD)
		d.Error = "Your sign-in has expired. Sign in again."
		h.renderPage(w, r, h.pages.login, http.StatusUnauthorized, d)
		return
	}
	if err != nil {
		code := errorCode(err)
		msg := pageMessage(code, h.minLength, 0)
		switch {
		case code == apierror.InvalidCredentials:
			msg = "The code is incorrect, or was already used."
		case code == apierror.TooManyAttempts:
			if te, ok := errors.AsType[*ThrottledError](err); ok {
				w.Header().Set("Retry-After", strconv.Itoa(te.Seconds()))
				msg = pageMessage(code, h.minLength, te.RetryAfter)
			}
		case code == apierror.InternalError:
			h.logger.LogAttrs(r.Context(), slog.LevelError, "auth endpoint failed",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
		}
		_, factors, ferr := h.svc.pendingFactors(r.Context(), id)
		if ferr != nil {
			factors = []string{FactorTOTP}
		}
		h.renderSecondStep(w, r, apierror.Status(code), c.RD, msg, factors)
		return
	}
	h.clearPendingCookie(w, r)
	if err := h.endOthers(r, prev, all); err != nil {
		h.writeError(w, r, err, bodyForm, &formPage{tmpl: h.pages.login, rd: c.RD})
		return
	}
	h.signedIn(w, r, bodyForm, http.StatusOK, user, token, c.RD)
}

// renderSecondStep writes the second step's page.
func (h *handlers) renderSecondStep(w http.ResponseWriter, r *http.Request, status int, rawRD, msg string, factors []string) {
	d := h.pageData(r, rawRD)
	d.Error = msg
	d.Factor = &factorView{TOTP: slices.Contains(factors, FactorTOTP), Passkey: slices.Contains(factors, FactorPasskey)}
	h.renderPage(w, r, h.pages.second, status, d)
}

func (h *handlers) renderPage(w http.ResponseWriter, r *http.Request, t *template.Template, status int, d pageData) {
	if err := h.pages.render(w, t, status, d); err != nil {
		h.logger.LogAttrs(r.Context(), slog.LevelError, "auth page failed",
			slog.String("path", r.URL.Path), slog.Any("err", err))
	}
}

// passkeyLoginOptions handles POST LOGIN_PATH/passkey/options: with a
// pending sign-in, the passkey check of its user (the second factor);
// without one, a passwordless sign-in with any passkey of this site.
func (h *handlers) passkeyLoginOptions(w http.ResponseWriter, r *http.Request) {
	if err := readNoFields(w, r); err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	var opts []byte
	var state string
	var err error
	if id := cookieValue(r, h.fc.pending); id != "" {
		opts, state, err = h.svc.beginSecondStepPasskey(r.Context(), id, h.requestOrigin(r))
		if errors.Is(err, errPendingGone) {
			h.clearPendingCookie(w, r)
			opts, state, err = h.svc.factors.BeginPasskeyLogin(r.Context(), h.requestOrigin(r))
		}
	} else {
		opts, state, err = h.svc.factors.BeginPasskeyLogin(r.Context(), h.requestOrigin(r))
	}
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	http.SetCookie(w, h.ceremonyCookie(h.fc.loginPath, state))
	h.writeRawJSON(w, http.StatusOK, opts)
}

// passkeyLogin handles POST LOGIN_PATH/passkey, the browser's answer: a
// session cookie and {"user"} as a login answers.
func (h *handlers) passkeyLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Set-Cookie", h.clearCeremonyCookie(h.fc.loginPath))
	kind, err := mediaKind(r)
	if err == nil && kind != bodyJSON {
		err = errMediaType
	}
	var body []byte
	if err == nil {
		body, err = readBody(w, r)
	}
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	state := cookieValue(r, h.fc.ceremony)
	prev, all := h.carried(r)
	info := credential.InfoFrom(r.Context())
	req := LoginRequest{ClientIP: info.ClientIP, UserAgent: r.UserAgent(), Previous: prev}
	var user User
	var token string
	pendingID := cookieValue(r, h.fc.pending)
	if _, perr := h.svc.pending(r.Context(), pendingID); pendingID != "" && perr == nil {
		user, token, err = h.svc.secondStepPasskey(r.Context(), pendingID, state, body, req)
	} else {
		user, token, err = h.svc.passkeyLogin(r.Context(), state, body, req)
	}
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	h.clearPendingCookie(w, r)
	if err := h.endOthers(r, prev, all); err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	h.signedIn(w, r, bodyJSON, http.StatusOK, user, token, "")
}

package auth

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

// loginPage serves GET/HEAD of the sign-in page. A signed-in user sees the
// form too: signing in again simply replaces the session.
func (h *handlers) loginPage(w http.ResponseWriter, r *http.Request) {
	h.servePage(w, r, h.pages.login, http.StatusOK, queryRD(r))
}

// registerPage serves GET/HEAD of the registration page, or 403 with a page
// saying registration is closed.
func (h *handlers) registerPage(w http.ResponseWriter, r *http.Request) {
	if !h.registrationOpen {
		h.servePage(w, r, h.pages.closed, http.StatusForbidden, queryRD(r))
		return
	}
	h.servePage(w, r, h.pages.register, http.StatusOK, queryRD(r))
}

// queryRD is the rd query parameter; absent means no return target.
func queryRD(r *http.Request) string {
	return r.URL.Query().Get("rd")
}

func (h *handlers) servePage(w http.ResponseWriter, r *http.Request, t *template.Template, status int, rawRD string) {
	if err := h.pages.render(w, t, status, h.pageData(r, rawRD)); err != nil {
		h.logger.LogAttrs(r.Context(), slog.LevelError, "auth page failed",
			slog.String("path", r.URL.Path), slog.Any("err", err))
	}
}

// pageData fills what every page shows. The return target is sanitised
// before it reaches the page, so the hidden field and the links never
// carry an open redirect.
func (h *handlers) pageData(r *http.Request, rawRD string) pageData {
	d := pageData{
		Script:           h.fc.scriptPath,
		LoginPath:        h.loginPath,
		RegisterPath:     h.registerPath,
		RegistrationOpen: h.registrationOpen,
		MinLength:        h.minLength,
	}
	if rawRD != "" {
		d.RD = SafeRedirect(rawRD, r.Host, h.allowedHosts)
	}
	return d
}

// login handles POST: JSON answers 200 with the user, a form post 303 to
// its rd; both set a new session cookie.
func (h *handlers) login(w http.ResponseWriter, r *http.Request) {
	c, kind, err := readLoginBody(w, r)
	page := &formPage{tmpl: h.pages.login, email: strings.TrimSpace(c.Email), rd: c.RD}
	if err != nil {
		h.writeError(w, r, err, kind, page)
		return
	}
	if c.secondStep {
		h.secondStep(w, r, c)
		return
	}
	// The token the client brought is handed over so that the Service
	// deletes it: a session fixed before login never survives it.
	prev, all := h.carried(r)
	info := credential.InfoFrom(r.Context())
	user, token, err := h.svc.LoginWith(r.Context(), LoginRequest{Email: c.Email, Password: c.Password,
		ClientIP: info.ClientIP, UserAgent: r.UserAgent(), Previous: prev, Devices: deviceCookies(r), Code: c.Code})
	if need, ok := errors.AsType[*mfaNeeded](err); ok && kind == bodyForm {
		h.startSecondStep(w, r, need, c.RD)
		return
	}
	if err != nil {
		h.writeError(w, r, err, kind, page)
		return
	}
	if err := h.endOthers(r, prev, all); err != nil {
		h.writeError(w, r, err, kind, page)
		return
	}
	h.clearPendingCookie(w, r)
	h.signedIn(w, r, kind, http.StatusOK, user, token, c.RD)
}

// register handles POST: JSON answers 201 with the user, a form post 303 to
// its rd; both set the new account's session cookie.
func (h *handlers) register(w http.ResponseWriter, r *http.Request) {
	c, kind, err := readCredentials(w, r)
	page := &formPage{tmpl: h.pages.register, email: strings.TrimSpace(c.Email), rd: c.RD}
	if err != nil {
		h.writeError(w, r, err, kind, page)
		return
	}
	// Registration signs the new account in; like a login it deletes the
	// session the client brought along, if any.
	prev, all := h.carried(r)
	user, token, err := h.svc.RegisterWith(r.Context(), LoginRequest{Email: c.Email, Password: c.Password,
		ClientIP: credential.InfoFrom(r.Context()).ClientIP, UserAgent: r.UserAgent(), Previous: prev})
	if err != nil {
		h.writeError(w, r, err, kind, page)
		return
	}
	if err := h.endOthers(r, prev, all); err != nil {
		h.writeError(w, r, err, kind, page)
		return
	}
	h.signedIn(w, r, kind, http.StatusCreated, user, token, c.RD)
}

// signedIn sets the session cookie and a device cookie (device.go), and
// answers a successful login or registration.
func (h *handlers) signedIn(w http.ResponseWriter, r *http.Request, kind bodyKind, status int, u User, token, rd string) {
	credential.InfoFrom(r.Context()).UserID = u.ID
	http.SetCookie(w, h.cookie.Set(token))
	h.setDeviceCookie(w, r, u)
	if kind == bodyForm {
		seeOther(w, SafeRedirect(rd, r.Host, h.allowedHosts))
		return
	}
	h.writeUser(w, status, u)
}

// logout handles POST: it ends the session the request carries (every
// session of its user with ?all=1) and clears the cookie. JSON or no body
// gets 204, a form post 303 to rd or else to the sign-in page. Without a
// session it succeeds all the same. If the store cannot be asked the
// answer is 503 and the cookie is kept: the session may still be alive,
// and a client that thought it signed out must learn it did not.
func (h *handlers) logout(w http.ResponseWriter, r *http.Request) {
	kind, rd, err := readLogoutBody(w, r)
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	// Every session the request names ends: an empty cookie tossed in ahead
	// of the real one, or a second one beside it, must not leave it alive.
	var buf [maxCarriedTokens]string
	everywhere := r.URL.Query().Get("all")
	for _, token := range credential.All(r.Header, h.cookie.Name, buf[:0], maxCarriedTokens) {
		if err := h.svc.Logout(r.Context(), token, everywhere == "1" || everywhere == "true"); err != nil {
			h.writeError(w, r, err, bodyJSON, nil)
			return
		}
	}
	w.Header().Add("Set-Cookie", h.cookie.Clear())
	if kind == bodyForm {
		target := h.loginPath
		if rd != "" {
			target = SafeRedirect(rd, r.Host, h.allowedHosts)
		}
		seeOther(w, target)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxCarriedTokens bounds how many tokens one login or logout looks at:
// the previous session and the maxEndTokens others that EndSessions ends
// in one transaction. A request with hundreds of token-shaped cookies
// costs no more than that.
const maxCarriedTokens = 1 + maxEndTokens

// carried returns the token the request's credential rule picks (prev,
// ended by the Service as the previous session) and every gateway token the
// request carries (all, each ended too): no token held before signing in
// stays valid after it.
func (h *handlers) carried(r *http.Request) (prev string, all []string) {
	all = credential.All(r.Header, h.cookie.Name, make([]string, 0, 2), maxCarriedTokens)
	if f := credential.Read(r.Header, h.cookie.Name); f.Token != "" {
		return f.Token, all
	}
	if len(all) > 0 {
		return all[0], all
	}
	return "", all
}

// endOthers ends every gateway token the request carried besides prev,
// which was handed to the Service as the previous session (a cookie and a
// Bearer token, several Bearer values, several session cookies): no token
// held before signing in stays valid after it. However many the request
// carried, this is one store transaction (see Service.EndSessions).
func (h *handlers) endOthers(r *http.Request, prev string, all []string) error {
	others := make([]string, 0, len(all))
	for _, t := range all {
		if t != prev {
			others = append(others, t)
		}
	}
	return h.svc.EndSessions(r.Context(), others)
}

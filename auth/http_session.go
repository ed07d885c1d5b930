package auth

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
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
	c, kind, err := readCredentials(w, r)
	page := &formPage{tmpl: h.pages.login, email: strings.TrimSpace(c.Email), rd: c.RD}
	if err != nil {
		h.writeError(w, r, err, kind, page)
		return
	}
	// The token the client brought is handed over so that the Service
	// deletes it: a session fixed before login never survives it.
	prev, _, all := h.credential(r)
	user, token, err := h.svc.login(r.Context(), c.Email, c.Password, h.clientIP(r), prev, deviceCookies(r))
	if err != nil {
		h.writeError(w, r, err, kind, page)
		return
	}
	if err := h.endOthers(r, prev, all); err != nil {
		h.writeError(w, r, err, kind, page)
		return
	}
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
	prev, _, all := h.credential(r)
	user, token, err := h.svc.RegisterFrom(r.Context(), c.Email, c.Password, h.clientIP(r), prev)
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
	h.setUserID(r, u.ID)
	http.SetCookie(w, h.sessionCookie(token))
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
	// The session the proxy would use for this request (Credential): an
	// empty cookie tossed in ahead of the real one must not leave it alive.
	if token, _, _ := h.credential(r); token != "" {
		all := r.URL.Query().Get("all")
		if err := h.svc.Logout(r.Context(), token, all == "1" || all == "true"); err != nil {
			h.writeError(w, r, err, bodyJSON, nil)
			return
		}
	}
	http.SetCookie(w, h.clearCookie())
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

// me handles GET/HEAD: the signed-in user, or 401 (clearing a stale
// cookie), or 503 when the store cannot be asked (cookie kept).
func (h *handlers) me(w http.ResponseWriter, r *http.Request) {
	token, fromCookie, _ := h.credential(r)
	if token == "" {
		h.writeError(w, r, ErrSessionNotFound, bodyJSON, nil)
		return
	}
	s, err := h.svc.Authenticate(r.Context(), token)
	if err != nil {
		if fromCookie && errors.Is(err, ErrSessionNotFound) {
			http.SetCookie(w, h.clearCookie())
		}
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	h.setUserID(r, s.User.ID)
	h.writeUser(w, http.StatusOK, s.User)
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

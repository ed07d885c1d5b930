package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// Errors of the self-service endpoints.
var (
	// errTokenForbidden: an API token may act as its user on proxied
	// routes, but never mint, list or revoke tokens or change the password.
	errTokenForbidden = errors.New("not with an API token")
	errNotFoundPath   = errors.New("no such endpoint")
)

// protect serves every method of an endpoint subtree: unsafe methods go
// through the cross-origin check, answers are never cached, and a body gets
// bodyReadTimeout to arrive.
func (h *handlers) protect(next http.Handler) http.Handler {
	protected := h.csrf.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h.limitBodyRead(w, r)
		protected.ServeHTTP(w, r)
	})
}

// session returns the identity of the request's credential, or answers
// 401 (clearing a stale cookie) or 503 itself and returns false.
func (h *handlers) session(w http.ResponseWriter, r *http.Request) (credential.Identity, bool) {
	f := credential.Read(r.Header, h.cookie.Name)
	if f.Token == "" {
		if f.FromCookie && !f.Tossed {
			w.Header().Add("Set-Cookie", h.cookie.Clear())
		}
		h.writeError(w, r, ErrSessionNotFound, bodyJSON, nil)
		return credential.Identity{}, false
	}
	id, err := h.svc.Authenticate(r.Context(), f.Token)
	if err != nil {
		if f.FromCookie && errors.Is(err, ErrSessionNotFound) {
			w.Header().Add("Set-Cookie", h.cookie.Clear())
		}
		h.writeError(w, r, err, bodyJSON, nil)
		return credential.Identity{}, false
	}
	credential.InfoFrom(r.Context()).UserID = id.UserID
	return id, true
}

// me handles GET/HEAD /me: the user, with groups and second factors, and
// the session the request used.
func (h *handlers) me(w http.ResponseWriter, r *http.Request) {
	id, ok := h.session(w, r)
	if !ok {
		return
	}
	groups := id.GroupList()
	if groups == nil {
		groups = []string{}
	}
	type sessionOut struct {
		ID        string    `json:"id"`
		CreatedAt time.Time `json:"created_at"`
		ExpiresAt time.Time `json:"expires_at"`
		MFA       bool      `json:"mfa"`
		Method    string    `json:"method"`
	}
	out := struct {
		User struct {
			ID            string   `json:"id"`
			Email         string   `json:"email"`
			Groups        []string `json:"groups"`
			SecondFactors []string `json:"second_factors"`
		} `json:"user"`
		Session sessionOut `json:"session"`
	}{}
	out.User.ID, out.User.Email, out.User.Groups = id.UserID, id.Email, groups
	factors, err := h.svc.factors.Factors(r.Context(), id.UserID)
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	out.User.SecondFactors = factors
	out.Session = sessionOut{ID: id.SID, ExpiresAt: id.Expires.UTC(), MFA: id.MFA, Method: string(id.Method)}
	if created, err := h.svc.created(r.Context(), id); err == nil {
		out.Session.CreatedAt = created
	} else {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	h.writeJSON(w, http.StatusOK, out)
}

// meAPI routes the endpoints below ME_PATH: sessions, password, tokens.
func (h *handlers) meAPI(mePath string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, mePath+"/")
		name, arg, hasArg := strings.Cut(rest, "/")
		if hasArg && (arg == "" || strings.Contains(arg, "/")) {
			h.writeError(w, r, errNotFoundPath, bodyJSON, nil)
			return
		}
		var allow string
		switch {
		case name == "sessions" && !hasArg:
			allow = "GET, HEAD"
			if isGet(r) {
				h.listSessions(w, r)
				return
			}
		case name == "sessions":
			allow = "DELETE"
			if r.Method == http.MethodDelete {
				h.deleteSession(w, r, arg)
				return
			}
		case name == "password" && !hasArg:
			allow = "POST"
			if r.Method == http.MethodPost {
				h.changePassword(w, r)
				return
			}
		case name == "tokens" && !hasArg:
			allow = "GET, HEAD, POST"
			switch {
			case isGet(r):
				h.listTokens(w, r)
				return
			case r.Method == http.MethodPost:
				h.createToken(w, r)
				return
			}
		case name == "tokens":
			allow = "DELETE"
			if r.Method == http.MethodDelete {
				h.deleteToken(w, r, arg)
				return
			}
		case name == "totp" && (!hasArg || arg == "confirm" || arg == "disable"):
			allow = "POST"
			if r.Method == http.MethodPost {
				map[string]http.HandlerFunc{"": h.totpBegin, "confirm": h.totpConfirm, "disable": h.totpDisable}[arg](w, r)
				return
			}
		case name == "passkeys" && !hasArg:
			allow = "GET, HEAD, POST"
			switch {
			case isGet(r):
				h.listPasskeys(w, r)
				return
			case r.Method == http.MethodPost:
				h.passkeyRegister(w, r)
				return
			}
		case name == "passkeys" && arg == "options":
			allow = "POST"
			if r.Method == http.MethodPost {
				h.passkeyRegisterOptions(w, r)
				return
			}
		case name == "passkeys":
			allow = "DELETE"
			if r.Method == http.MethodDelete {
				h.deletePasskey(w, r, arg)
				return
			}
		default:
			h.writeError(w, r, errNotFoundPath, bodyJSON, nil)
			return
		}
		// An API token is refused on every request under tokens and
		// password, whatever the method: 403 (or 401 for a dead token),
		// never a 405 that suggests another method would do.
		if (name == "tokens" || name == "password") && credential.Read(r.Header, h.cookie.Name).Kind == credential.APIToken {
			if _, ok := h.sessionOnly(w, r); !ok {
				return
			}
		}
		w.Header().Set("Allow", allow)
		apierror.Write(w, apierror.MethodNotAllowed)
	})
}

func isGet(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

// sessionOnly is session for the endpoints an API token may not use.
func (h *handlers) sessionOnly(w http.ResponseWriter, r *http.Request) (credential.Identity, bool) {
	id, ok := h.session(w, r)
	if ok && id.Method == credential.MethodToken {
		h.writeError(w, r, errTokenForbidden, bodyJSON, nil)
		return id, false
	}
	return id, ok
}

func (h *handlers) listSessions(w http.ResponseWriter, r *http.Request) {
	id, ok := h.session(w, r)
	if !ok {
		return
	}
	ss, err := h.svc.Sessions(r.Context(), id.UserID, id.SID)
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	h.writeJSON(w, http.StatusOK, struct {
		Sessions []SessionInfo `json:"sessions"`
	}{ss})
}

func (h *handlers) deleteSession(w http.ResponseWriter, r *http.Request, sid string) {
	id, ok := h.session(w, r)
	if !ok {
		return
	}
	if err := h.svc.RevokeSession(r.Context(), id.UserID, sid); err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handlers) changePassword(w http.ResponseWriter, r *http.Request) {
	// The credential first: without one the answer is 401 whatever the
	// body holds.
	id, ok := h.sessionOnly(w, r)
	if !ok {
		return
	}
	fields, err := readJSONFields(w, r, "current_password", "new_password")
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	err = h.svc.ChangePassword(r.Context(), id, credential.InfoFrom(r.Context()).ClientIP, fields["current_password"], fields["new_password"])
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handlers) listTokens(w http.ResponseWriter, r *http.Request) {
	id, ok := h.sessionOnly(w, r)
	if !ok {
		return
	}
	ts, err := h.svc.Tokens(r.Context(), id.UserID)
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	if ts == nil {
		ts = []TokenInfo{}
	}
	h.writeJSON(w, http.StatusOK, struct {
		Tokens []TokenInfo `json:"tokens"`
	}{ts})
}

func (h *handlers) createToken(w http.ResponseWriter, r *http.Request) {
	id, ok := h.sessionOnly(w, r)
	if !ok {
		return
	}
	fields, err := readJSONFields(w, r, "name", "ttl")
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	ttl, err := time.ParseDuration(fields["ttl"])
	if err != nil {
		h.writeError(w, r, ErrInvalidTokenRequest, bodyJSON, nil)
		return
	}
	tok, info, err := h.svc.CreateToken(r.Context(), id, fields["name"], ttl)
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	h.writeJSON(w, http.StatusCreated, struct {
		Token     string    `json:"token"`
		ID        string    `json:"id"`
		Name      string    `json:"name"`
		CreatedAt time.Time `json:"created_at"`
		ExpiresAt time.Time `json:"expires_at"`
	}{tok, info.ID, info.Name, info.CreatedAt, info.ExpiresAt})
}

func (h *handlers) deleteToken(w http.ResponseWriter, r *http.Request, tokenID string) {
	id, ok := h.sessionOnly(w, r)
	if !ok {
		return
	}
	if err := h.svc.RevokeToken(r.Context(), id.UserID, tokenID); err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readJSONFields reads a JSON object body holding exactly the string
// fields keys (strict: unknown, duplicate or missing fields are 400).
func readJSONFields(w http.ResponseWriter, r *http.Request, keys ...string) (map[string]string, error) {
	kind, err := mediaKind(r)
	if err != nil {
		return nil, err
	}
	if kind != bodyJSON {
		return nil, errMediaType
	}
	body, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	fields, err := parseJSONObject(body, keys...)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if _, ok := fields[k]; !ok {
			return nil, errBadBody
		}
	}
	return fields, nil
}

// writeJSON answers v as JSON with status.
func (h *handlers) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		apierror.Write(w, apierror.InternalError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

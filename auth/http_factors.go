package auth

import (
	"bytes"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

// factorView is what a page shows of the second factor: which factors the
// user has and, on the account page during an enrolment, the QR code.
type factorView struct {
	TOTP, Passkey bool
	// QRCode is a data: URL of the enrolment's QR code; the page's CSP
	// allows data: images only when it is set.
	QRCode template.URL
}

// The endpoints below ME_PATH for the second factor, routed by meAPI. Each
// checks the credential before reading the body, so a request without a
// session is 401 whatever it sends, and an API token is 403: a token acts
// as its user on proxied routes, never on the user's factors.

// totpBegin handles POST /me/totp: a pending enrolment.
func (h *handlers) totpBegin(w http.ResponseWriter, r *http.Request) {
	id, ok := h.sessionOnly(w, r)
	if !ok {
		return
	}
	if err := readNoFields(w, r); err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	secret, u, err := h.svc.BeginTOTP(r.Context(), id)
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	h.writeJSON(w, http.StatusOK, struct {
		Secret     string `json:"secret"`
		OTPAuthURL string `json:"otpauth_url"`
	}{secret, u})
}

// totpConfirm handles POST /me/totp/confirm {"code"}.
func (h *handlers) totpConfirm(w http.ResponseWriter, r *http.Request) {
	id, ok := h.sessionOnly(w, r)
	if !ok {
		return
	}
	fields, err := readJSONFields(w, r, "code")
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	codes, err := h.svc.ConfirmTOTP(r.Context(), id, fields["code"])
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	h.writeJSON(w, http.StatusOK, struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}{codes})
}

// totpDisable handles POST /me/totp/disable {"code"}.
func (h *handlers) totpDisable(w http.ResponseWriter, r *http.Request) {
	id, ok := h.sessionOnly(w, r)
	if !ok {
		return
	}
	fields, err := readJSONFields(w, r, "code")
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	if err := h.svc.DisableTOTP(r.Context(), id, credential.InfoFrom(r.Context()).ClientIP, fields["code"]); err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listPasskeys handles GET /me/passkeys.
func (h *handlers) listPasskeys(w http.ResponseWriter, r *http.Request) {
	id, ok := h.sessionOnly(w, r)
	if !ok {
		return
	}
	pks, err := h.svc.factors.ListPasskeys(r.Context(), id.UserID)
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	h.writeJSON(w, http.StatusOK, struct {
		Passkeys []Passkey `json:"passkeys"`
	}{pks})
}

// passkeyRegisterOptions handles POST /me/passkeys/options: the creation
// options, with the ceremony's state id in a cookie scoped to ME_PATH.
func (h *handlers) passkeyRegisterOptions(w http.ResponseWriter, r *http.Request) {
	id, ok := h.sessionOnly(w, r)
	if !ok {
		return
	}
	if err := readNoFields(w, r); err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	if err := h.svc.requireFactorSession(r.Context(), id); err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	opts, state, err := h.svc.factors.BeginPasskeyRegistration(r.Context(), h.requestOrigin(r), id.UserID, id.Email)
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	http.SetCookie(w, h.ceremonyCookie(h.fc.mePath, state))
	h.writeRawJSON(w, http.StatusOK, opts)
}

// passkeyRegister handles POST /me/passkeys {"name","credential"}: the
// browser's answer to the options, which adds the passkey.
func (h *handlers) passkeyRegister(w http.ResponseWriter, r *http.Request) {
	id, ok := h.sessionOnly(w, r)
	if !ok {
		return
	}
	// The challenge is answered at most once, right or wrong.
	w.Header().Add("Set-Cookie", h.clearCeremonyCookie(h.fc.mePath))
	name, cred, err := readPasskeyBody(w, r)
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	state := cookieValue(r, h.fc.ceremony)
	pk, err := h.svc.factors.FinishPasskeyRegistration(r.Context(), id.UserID, id.Email, name, state, cred)
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	h.writeJSON(w, http.StatusCreated, struct {
		Passkey Passkey `json:"passkey"`
	}{pk})
}

// deletePasskey handles DELETE /me/passkeys/{id}.
func (h *handlers) deletePasskey(w http.ResponseWriter, r *http.Request, passkeyID string) {
	id, ok := h.sessionOnly(w, r)
	if !ok {
		return
	}
	if err := h.svc.RemovePasskey(r.Context(), id, passkeyID); err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readNoFields accepts an empty body, or a JSON object without fields (what
// gatehouse.js posts to an options endpoint).
func readNoFields(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	kind, err := mediaKind(r)
	if err != nil {
		return err
	}
	if kind != bodyJSON {
		return errMediaType
	}
	_, err = parseJSONObject(body)
	return err
}

// readPasskeyBody reads {"name": string, "credential": object}: exactly
// these keys, each once, and nothing after the object. The credential is
// returned as its raw JSON for go-webauthn to parse.
func readPasskeyBody(w http.ResponseWriter, r *http.Request) (string, []byte, error) {
	kind, err := mediaKind(r)
	if err != nil {
		return "", nil, err
	}
	if kind != bodyJSON {
		return "", nil, errMediaType
	}
	body, err := readBody(w, r)
	if err != nil {
		return "", nil, err
	}
	if !utf8.Valid(body) {
		return "", nil, errBadBody
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", nil, errBadBody
	}
	var name *string
	var cred json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", nil, errBadBody
		}
		switch tok {
		case "name":
			var s string
			if name != nil || dec.Decode(&s) != nil {
				return "", nil, errBadBody
			}
			name = &s
		case "credential":
			if cred != nil || dec.Decode(&cred) != nil || len(cred) == 0 || cred[0] != '{' {
				return "", nil, errBadBody
			}
		default:
			return "", nil, errBadBody
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return "", nil, errBadBody
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", nil, errBadBody
	}
	if name == nil || cred == nil {
		return "", nil, errBadBody
	}
	return *name, cred, nil
}

// requestOrigin is the origin the page that called runs at, for a
// ceremony when no origins are configured (with public_url or
// auth.webauthn.origins they are, and this is not used): the browser's
// Origin header, which the cross-origin check has already matched to the
// request's host and which carries the scheme a TLS terminator hides, else
// the request's own host with the scheme of its connection.
func (h *handlers) requestOrigin(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err == nil && strings.EqualFold(u.Host, r.Host) {
			return o
		}
	}
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// cookieValue is the value of the first cookie called name, or "".
func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// writeRawJSON answers body, already JSON.
func (h *handlers) writeRawJSON(w http.ResponseWriter, status int, body []byte) {
	h.writeJSON(w, status, json.RawMessage(body))
}

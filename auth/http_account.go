package auth

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// The account page is the browser's face of the self-service endpoints: the
// same Service calls, with form posts (behind the same cross-origin check)
// that answer 303 back to the page. The result of an action travels as a
// short code in the query (?done=password, ?error=not_found) that the page
// maps to a fixed sentence: nothing a link could carry is ever shown as
// text. A new token is the one secret the page shows, and only on the
// answer of the post that created it, which is rendered directly (200) and
// never cached.

// accountNotices are the ?done= codes and what the page says for each.
var accountNotices = map[string]string{
	"session":  "That session has been signed out.",
	"others":   "Every other session has been signed out.",
	"password": "Your password has been changed. Every other session and every API token has ended.",
	"token":    "The token has been revoked.",
}

// accountErrors are the ?error= codes besides those of pageMessage.
var accountErrors = map[string]string{
	"not_found":           "That session or token no longer exists.",
	"invalid_credentials": "The current password is incorrect.",
	"mismatch":            "The new password and its confirmation do not match.",
	"too_many_attempts":   "Too many wrong passwords. Try again later.",
	"invalid_token":       "Give the token a name that no other token of yours has, and a lifetime from the list.",
	"invalid_request":     "The form could not be read. Reload the page and try again.",
	"store_unavailable":   "The service is temporarily unavailable. Try again in a moment.",
}

// accountView is what the account template shows besides pageData's
// common fields.
type accountView struct {
	Email    string
	Groups   []string
	Sessions []sessionRow
	Tokens   []tokenRow
	// NewToken is set only on the answer to the post that created it.
	NewToken *createdToken
	// Notice and Problem are fixed sentences chosen by a code.
	Notice, Problem string
	// TTLChoices are the token lifetimes offered, all within max_ttl.
	TTLChoices  []ttlChoice
	AccountPath string
	LogoutPath  string
	MinLength   int
	// SecondFactor is TOTP and the passkeys (http_account_factors.go).
	SecondFactor *accountFactors
}

type sessionRow struct {
	ID                            string
	Created, LastSeen, Expires    displayTime
	IP, UserAgent                 string
	MFA, Current, LastSeenUnknown bool
}

type tokenRow struct {
	ID, Name               string
	Created, Expires, Used displayTime
	NeverUsed              bool
}

type createdToken struct {
	Token, Name string
	Expires     displayTime
}

type ttlChoice struct {
	Value, Label string
	Selected     bool
}

// displayTime is a timestamp as the page writes it: machine-readable in
// <time datetime>, readable in the text.
type displayTime struct {
	RFC3339, Text string
}

func showTime(t time.Time) displayTime {
	t = t.UTC()
	return displayTime{RFC3339: t.Format(time.RFC3339), Text: t.Format("2 Jan 2006, 15:04 UTC")}
}

// ttlChoices are the lifetimes the page offers: the usual ones that fit
// within limit (auth.tokens.max_ttl), and limit itself when it is none of
// them. 30 days is preselected, or else the longest.
func ttlChoices(limit time.Duration) []ttlChoice {
	days := []int{1, 7, 30, 90, 365}
	var out []ttlChoice
	seenMax := false
	for _, d := range days {
		ttl := time.Duration(d) * 24 * time.Hour
		if ttl > limit {
			break
		}
		label := "1 day"
		if d > 1 {
			label = strconv.Itoa(d) + " days"
		}
		out = append(out, ttlChoice{Value: ttl.String(), Label: label, Selected: d == 30})
		seenMax = seenMax || ttl == limit
	}
	if !seenMax {
		out = append(out, ttlChoice{Value: limit.String(), Label: "The longest allowed (" + humanDuration(limit) + ")"})
	}
	if !slices.ContainsFunc(out, func(c ttlChoice) bool { return c.Selected }) {
		out[len(out)-1].Selected = true
	}
	return out
}

// humanDuration writes whole days as days and anything else as Go does.
func humanDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		n := int(d / (24 * time.Hour))
		if n == 1 {
			return "1 day"
		}
		return strconv.Itoa(n) + " days"
	}
	return d.String()
}

// pageSession returns the session of a request to the account page. Without
// one it redirects to the sign-in page and back (clearing a stale cookie);
// an API token is refused with 403, since the page can change the password
// and mint tokens, which a token never may.
func (h *handlers) pageSession(w http.ResponseWriter, r *http.Request, status int) (credential.Identity, bool) {
	f := credential.Read(r.Header, h.cookie.Name)
	if f.Token != "" {
		id, err := h.svc.Authenticate(r.Context(), f.Token)
		switch {
		case err == nil && id.Method == credential.MethodToken:
			h.writeError(w, r, errTokenForbidden, bodyJSON, nil)
			return id, false
		case err == nil:
			credential.InfoFrom(r.Context()).UserID = id.UserID
			return id, true
		case !errors.Is(err, ErrSessionNotFound):
			h.writeError(w, r, err, bodyJSON, nil)
			return id, false
		}
	}
	if f.FromCookie && !f.Tossed {
		w.Header().Add("Set-Cookie", h.cookie.Clear())
	}
	w.Header().Set("Location", h.loginPath+"?rd="+url.QueryEscape(h.accountPath))
	w.WriteHeader(status)
	return credential.Identity{}, false
}

// accountPage serves GET/HEAD ACCOUNT_PATH.
func (h *handlers) accountPage(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pageSession(w, r, http.StatusFound)
	if !ok {
		return
	}
	q := r.URL.Query()
	notice := accountNotices[q.Get("done")]
	if notice == "" {
		notice = accountFactorNotices[q.Get("done")]
	}
	h.renderAccount(w, r, id, notice, h.accountProblem(q.Get("error")), nil, nil)
}

// accountProblem is the sentence of an ?error= code; "" for an unknown one.
func (h *handlers) accountProblem(code string) string {
	if code == string(apierror.WeakPassword) {
		return pageMessage(apierror.WeakPassword, h.minLength, 0)
	}
	if m, ok := accountErrors[code]; ok {
		return m
	}
	return accountFactorErrors[code]
}

// renderAccount renders the page for id with its sessions and tokens.
func (h *handlers) renderAccount(w http.ResponseWriter, r *http.Request, id credential.Identity, notice, problem string, nt *createdToken, fx *factorExtras) {
	ctx := r.Context()
	sessions, err := h.svc.Sessions(ctx, id.UserID, id.SID)
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	tokens, err := h.svc.Tokens(ctx, id.UserID)
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	v := &accountView{
		Email: id.Email, Groups: id.GroupList(), NewToken: nt, Notice: notice, Problem: problem,
		TTLChoices: ttlChoices(h.maxTokenTTL), AccountPath: h.accountPath, LogoutPath: h.logoutPath,
		MinLength: h.minLength,
	}
	for _, s := range sessions {
		row := sessionRow{ID: s.ID, Created: showTime(s.CreatedAt), Expires: showTime(s.ExpiresAt),
			IP: s.IP, UserAgent: s.UserAgent, MFA: s.MFA, Current: s.Current}
		if s.LastSeenAt != nil {
			row.LastSeen = showTime(*s.LastSeenAt)
		} else {
			row.LastSeenUnknown = true
		}
		v.Sessions = append(v.Sessions, row)
	}
	for _, t := range tokens {
		row := tokenRow{ID: t.ID, Name: t.Name, Created: showTime(t.CreatedAt), Expires: showTime(t.ExpiresAt)}
		if t.LastUsed != nil {
			row.Used = showTime(*t.LastUsed)
		} else {
			row.NeverUsed = true
		}
		v.Tokens = append(v.Tokens, row)
	}
	if v.SecondFactor, err = h.accountFactorsView(r, id, fx); err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	d := h.pageData(r, "")
	d.Account = v
	if e := v.SecondFactor.Enrol; e != nil {
		// The QR code is a data: image, which the CSP then allows.
		d.Factor = &factorView{QRCode: e.QRCode}
	}
	if err := h.pages.render(w, h.pages.account, http.StatusOK, d); err != nil {
		h.logger.LogAttrs(ctx, slog.LevelError, "auth page failed", slog.String("path", r.URL.Path), slog.Any("err", err))
	}
}

// accountActions serves the form posts below ACCOUNT_PATH.
func (h *handlers) accountActions(accountPath string) http.Handler {
	type action struct {
		fields []string
		run    func(http.ResponseWriter, *http.Request, credential.Identity, map[string]string)
	}
	actions := map[string]action{
		"sessions/revoke":        {[]string{"id"}, h.formRevokeSession},
		"sessions/revoke-others": {nil, h.formRevokeOthers},
		"password":               {[]string{"current_password", "new_password", "confirm_password"}, h.formPassword},
		"tokens":                 {[]string{"name", "ttl"}, h.formCreateToken},
		"tokens/revoke":          {[]string{"id"}, h.formRevokeToken},
		"totp":                   {nil, h.formTOTPBegin},
		"totp/confirm":           {[]string{"code"}, h.formTOTPConfirm},
		"totp/disable":           {[]string{"code"}, h.formTOTPDisable},
		"passkeys/remove":        {[]string{"id"}, h.formRemovePasskey},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := actions[strings.TrimPrefix(r.URL.Path, accountPath+"/")]
		if !ok {
			h.writeError(w, r, errNotFoundPath, bodyJSON, nil)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			apierror.Write(w, apierror.MethodNotAllowed)
			return
		}
		id, ok := h.pageSession(w, r, http.StatusSeeOther)
		if !ok {
			return
		}
		fields, err := readFormFields(w, r, a.fields...)
		if err != nil {
			if code := errorCode(err); code != apierror.InvalidRequest {
				h.writeError(w, r, err, bodyJSON, nil)
				return
			}
			h.accountResult(w, "error", "invalid_request")
			return
		}
		a.run(w, r, id, fields)
	})
}

// readFormFields reads a form body holding exactly the fields keys.
func readFormFields(w http.ResponseWriter, r *http.Request, keys ...string) (map[string]string, error) {
	kind, err := mediaKind(r)
	if err != nil && len(keys) > 0 {
		return nil, err
	}
	if len(keys) > 0 && kind != bodyForm {
		return nil, errMediaType
	}
	body, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	fields, err := parseForm(body, keys...)
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

// accountResult answers a form post with 303 to the page and one code.
func (h *handlers) accountResult(w http.ResponseWriter, kind, code string) {
	seeOther(w, h.accountPath+"?"+kind+"="+code)
}

// accountFailure answers a failed action: a code the page knows, or the
// JSON error of something unexpected (a store outage is a known one).
func (h *handlers) accountFailure(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrInvalidTokenRequest) {
		h.accountResult(w, "error", "invalid_token")
		return
	}
	switch code := errorCode(err); code {
	case apierror.NotFound, apierror.InvalidCredentials, apierror.WeakPassword,
		apierror.TooManyAttempts, apierror.StoreUnavailable:
		h.accountResult(w, "error", string(code))
	default:
		h.writeError(w, r, err, bodyJSON, nil)
	}
}

func (h *handlers) formRevokeSession(w http.ResponseWriter, r *http.Request, id credential.Identity, f map[string]string) {
	if err := h.svc.RevokeSession(r.Context(), id.UserID, f["id"]); err != nil {
		h.accountFailure(w, r, err)
		return
	}
	if f["id"] == id.SID {
		// The page's own session ended: what comes next is the sign-in page.
		w.Header().Add("Set-Cookie", h.cookie.Clear())
	}
	h.accountResult(w, "done", "session")
}

func (h *handlers) formRevokeOthers(w http.ResponseWriter, r *http.Request, id credential.Identity, _ map[string]string) {
	if _, err := h.svc.RevokeOtherSessions(r.Context(), id.UserID, id.SID); err != nil {
		h.accountFailure(w, r, err)
		return
	}
	h.accountResult(w, "done", "others")
}

func (h *handlers) formPassword(w http.ResponseWriter, r *http.Request, id credential.Identity, f map[string]string) {
	if f["new_password"] != f["confirm_password"] {
		h.accountResult(w, "error", "mismatch")
		return
	}
	err := h.svc.ChangePassword(r.Context(), id, credential.InfoFrom(r.Context()).ClientIP, f["current_password"], f["new_password"])
	if err != nil {
		h.accountFailure(w, r, err)
		return
	}
	h.accountResult(w, "done", "password")
}

func (h *handlers) formCreateToken(w http.ResponseWriter, r *http.Request, id credential.Identity, f map[string]string) {
	ttl, err := time.ParseDuration(f["ttl"])
	if err != nil {
		h.accountResult(w, "error", "invalid_token")
		return
	}
	tok, info, err := h.svc.CreateToken(r.Context(), id, f["name"], ttl)
	if err != nil {
		h.accountFailure(w, r, err)
		return
	}
	// Rendered here, not after a redirect: the token must not travel in a
	// URL, and this answer (no-store) is the only place it ever appears.
	h.renderAccount(w, r, id, "", "", &createdToken{Token: tok, Name: info.Name, Expires: showTime(info.ExpiresAt)}, nil)
}

func (h *handlers) formRevokeToken(w http.ResponseWriter, r *http.Request, id credential.Identity, f map[string]string) {
	if err := h.svc.RevokeToken(r.Context(), id.UserID, f["id"]); err != nil {
		h.accountFailure(w, r, err)
		return
	}
	h.accountResult(w, "done", "token")
}

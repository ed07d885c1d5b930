// Package apierror writes the gateway's JSON error body, the one shape every
// handler answers with (README "Errors"):
//
//	{"errors":[{"status":401,"code":"unauthenticated","title":"Unauthorized","detail":"..."}]}
//
// It is shared by the proxy and by the auth endpoints so that both answer
// alike. It must never put upstream, Redis or Go error text into a body: the
// detail is always one of the fixed sentences below, chosen by code.
package apierror

import (
	"net/http"
	"strconv"
)

// Code is one of the documented error codes.
type Code string

// The documented error codes.
const (
	InvalidRequest       Code = "invalid_request"
	InvalidEmail         Code = "invalid_email"
	WeakPassword         Code = "weak_password"
	RegistrationClosed   Code = "registration_closed"
	EmailTaken           Code = "email_taken"
	InvalidCredentials   Code = "invalid_credentials"
	TooManyAttempts      Code = "too_many_attempts"
	Unauthenticated      Code = "unauthenticated"
	Forbidden            Code = "forbidden"
	CrossOrigin          Code = "cross_origin"
	BadPath              Code = "bad_path"
	MethodNotAllowed     Code = "method_not_allowed"
	PayloadTooLarge      Code = "payload_too_large"
	UnsupportedMediaType Code = "unsupported_media_type"
	UpstreamUnavailable  Code = "upstream_unavailable"
	UpstreamTimeout      Code = "upstream_timeout"
	StoreUnavailable     Code = "store_unavailable"
	Overloaded           Code = "overloaded"
	InternalError        Code = "internal_error"
	NotFound             Code = "not_found"
	Conflict             Code = "conflict"
	InvalidCode          Code = "invalid_code"
	MFARequired          Code = "mfa_required"
	// MFARequiredLogin is mfa_required as a login answers it: 401, since
	// no session exists yet (a route answers MFARequired, 403). Its JSON
	// code is "mfa_required"; the Go value differs only so that each Code
	// keeps one status.
	MFARequiredLogin Code = "mfa_required/login"
)

// entry is a code's status and its default detail.
type entry struct {
	status int
	detail string
}

// wireCodes are the codes whose JSON body carries another code.
var wireCodes = map[Code]Code{MFARequiredLogin: MFARequired}

var entries = map[Code]entry{
	InvalidRequest:       {http.StatusBadRequest, "The request body is not valid."},
	InvalidEmail:         {http.StatusBadRequest, "The email address is not valid."},
	WeakPassword:         {http.StatusBadRequest, "The password does not meet the requirements."},
	RegistrationClosed:   {http.StatusForbidden, "Registration is closed."},
	EmailTaken:           {http.StatusConflict, "An account with this email already exists."},
	InvalidCredentials:   {http.StatusUnauthorized, "The email or password is incorrect."},
	TooManyAttempts:      {http.StatusTooManyRequests, "Too many failed attempts; try again later."},
	Unauthenticated:      {http.StatusUnauthorized, "A valid session is required."},
	Forbidden:            {http.StatusForbidden, "Access to this resource is denied."},
	CrossOrigin:          {http.StatusForbidden, "Cross-origin request refused."},
	BadPath:              {http.StatusBadRequest, "The request path is not allowed."},
	MethodNotAllowed:     {http.StatusMethodNotAllowed, "The method is not allowed for this resource."},
	PayloadTooLarge:      {http.StatusRequestEntityTooLarge, "The request body is too large."},
	UnsupportedMediaType: {http.StatusUnsupportedMediaType, "The request body must be application/json or application/x-www-form-urlencoded."},
	UpstreamUnavailable:  {http.StatusBadGateway, "The upstream service is unavailable."},
	UpstreamTimeout:      {http.StatusGatewayTimeout, "The upstream service did not answer in time."},
	StoreUnavailable:     {http.StatusServiceUnavailable, "The session store is unavailable; try again shortly."},
	Overloaded:           {http.StatusServiceUnavailable, "The service is busy; try again in a second."},
	InternalError:        {http.StatusInternalServerError, "An internal error occurred."},
	NotFound:             {http.StatusNotFound, "No such resource."},
	Conflict:             {http.StatusConflict, "The request conflicts with the current state."},
	InvalidCode:          {http.StatusBadRequest, "The code is not valid."},
	MFARequired:          {http.StatusForbidden, "This resource requires a second factor."},
	MFARequiredLogin:     {http.StatusUnauthorized, "A second factor code is required."},
}

// bodies holds each code's pre-rendered body, so that answering an error on
// the hot path (a 401 flood, say) costs no JSON encoding.
var bodies = func() map[Code][]byte {
	m := make(map[Code][]byte, len(entries))
	for c, e := range entries {
		m[c] = render(e.status, WireCode(c), e.detail)
	}
	return m
}()

// Status returns the HTTP status of code (500 for an unknown code).
func Status(c Code) int {
	if e, ok := entries[c]; ok {
		return e.status
	}
	return http.StatusInternalServerError
}

// WireCode returns the code the JSON body of c carries: c itself, except
// for MFARequiredLogin, which is "mfa_required".
func WireCode(c Code) Code {
	if w, ok := wireCodes[c]; ok {
		return w
	}
	return c
}

// Write answers the request with code's status and JSON body. Headers
// already set on w (Allow, Retry-After, WWW-Authenticate, Set-Cookie) are
// kept; Content-Type, Content-Length and X-Content-Type-Options are set.
func Write(w http.ResponseWriter, c Code) {
	body, ok := bodies[c]
	if !ok {
		c, body = InternalError, bodies[InternalError]
	}
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["X-Content-Type-Options"] = nosniff
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("Content-Encoding")
	w.WriteHeader(entries[c].status)
	_, _ = w.Write(body)
}

// Body returns code's JSON body, for tests and for handlers that must
// compare or embed it.
func Body(c Code) []byte {
	b := bodies[c]
	return append([]byte(nil), b...)
}

var (
	contentTypeJSON = []string{"application/json"}
	nosniff         = []string{"nosniff"}
)

// render builds {"errors":[{...}]}. The strings are fixed ASCII without
// characters that need escaping, which render checks at init.
func render(status int, c Code, detail string) []byte {
	title := http.StatusText(status)
	for _, s := range []string{string(c), title, detail} {
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] == '"' || s[i] == '\\' || s[i] >= 0x7f {
				panic("apierror: string needs escaping: " + s)
			}
		}
	}
	b := []byte(`{"errors":[{"status":`)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"code":"`...)
	b = append(b, c...)
	b = append(b, `","title":"`...)
	b = append(b, title...)
	b = append(b, `","detail":"`...)
	b = append(b, detail...)
	b = append(b, `"}]}`...)
	return b
}

package proxy

import (
	"net/http"
	"slices"
	"strings"
)

// Credential returns the session credential of a request's headers h, as the
// gateway reads it for proxied and forward-auth requests. Package auth's
// endpoints get it injected (auth.HandlerOptions.Credential), so that
// /login, /logout and /me can never see a different session than the
// proxy does.
//
// token is the first non-empty cookie called cookieName (an empty one
// tossed in ahead of it, "NAME=; NAME=TOKEN", does not hide it), else the
// first Authorization: Bearer value for which isToken holds (a foreign
// Bearer token is not ours). fromCookie says the token came from a cookie,
// so that a stale one is cleared. all lists every distinct gateway token
// the request carries, whatever it was sent in: every non-empty session
// cookie and every Bearer value for which isToken holds; a login or
// registration ends them all, so that no token held before signing in stays
// valid after it.
func Credential(h http.Header, cookieName string, isToken func(string) bool) (token string, fromCookie bool, all []string) {
	token, fromCookie, _, all = credential(h, cookieName, isToken, nil)
	return token, fromCookie, all
}

// CredentialFunc returns Credential bound to the session cookie's name and
// the token test, for a request: the shape of auth.HandlerOptions.Credential,
// where the command wires it.
func CredentialFunc(cookieName string, isToken func(string) bool) func(*http.Request) (token string, fromCookie bool, all []string) {
	return func(r *http.Request) (string, bool, []string) {
		return Credential(r.Header, cookieName, isToken)
	}
}

// credential is Credential, also reporting whether any Authorization value
// carried a gateway token (the proxy strips those before the request goes
// upstream). Gateway tokens are appended to all, which the hot path passes
// as a stack buffer, so that reading the credential does not allocate.
func credential(h http.Header, cookieName string, isToken func(string) bool, all []string) (token string, fromCookie, gatewayBearer bool, _ []string) {
	for _, line := range h["Cookie"] {
		for line != "" {
			var v string
			v, line = nextCookie(line, cookieName)
			if v == "" {
				continue
			}
			if token == "" {
				token, fromCookie = v, true
			}
			if isToken(v) && !slices.Contains(all, v) {
				all = append(all, v)
			}
		}
	}
	for _, a := range h["Authorization"] {
		b := bearerToken(a, isToken)
		if b == "" {
			continue
		}
		gatewayBearer = true
		if token == "" {
			token = b
		}
		if !slices.Contains(all, b) {
			all = append(all, b)
		}
	}
	return token, fromCookie, gatewayBearer, all
}

// nextCookie parses the first pair of a Cookie header line in place (no
// allocation, unlike Request.Cookie) and returns its value when it is
// called name ("" otherwise, and for an empty value) and the rest of the
// line.
func nextCookie(line, name string) (value, rest string) {
	part, rest, _ := strings.Cut(line, ";")
	part = strings.TrimSpace(part)
	k, v, ok := strings.Cut(part, "=")
	if !ok || k != name {
		return "", rest
	}
	if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v, rest
}

// bearerToken returns the credential of an "Authorization: Bearer T" value
// when isToken says T is a gateway token, else "". It is the one test of
// "this Authorization value carries our session": reading the credential
// and stripping it before the request goes upstream both use it.
func bearerToken(v string, isToken func(string) bool) string {
	if b := bearer(v); b != "" && isToken(b) {
		return b
	}
	return ""
}

// bearer returns the credential of an "Authorization: Bearer T" value
// (scheme case-insensitive), or "".
func bearer(v string) string {
	const p = "bearer "
	if len(v) > len(p) && strings.EqualFold(v[:len(p)], p) {
		return strings.TrimSpace(v[len(p):])
	}
	return ""
}

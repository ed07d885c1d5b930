package proxy

import (
	"net/http"
	"strings"
)

// apiTokenPrefix starts an API token; its body has the shape of a session
// token's ("ght1." instead of "gh1.", then user id, end and secret).
const (
	apiTokenPrefix     = "ght1."
	sessionTokenPrefix = "gh1."
	// maxShapedLen bounds the values looked at: a longer one is no token,
	// and a huge cookie must cost nothing.
	maxShapedLen = 128
)

// upstreamCookie returns the Cookie header that a forward-auth proxy should
// hand the app in place of the client's: the request's cookies in their
// order, without every cookie called cookieName and without every cookie
// whose value has the shape of a gateway token (a session token as isToken
// judges it, or an API token), whatever its name. A sibling subdomain or a
// script may have stored a token under another name; the app must never be
// able to replay one. It returns "" when no cookie remains, so that the
// proxy sends none.
//
// It runs on every allowed forward-auth request: a single Cookie line that
// loses nothing is returned as it is, without allocating.
func upstreamCookie(h http.Header, cookieName string, isToken func(string) bool) string {
	lines := h["Cookie"]
	if len(lines) == 1 && !dropsCookie(lines[0], cookieName, isToken) {
		return strings.TrimSpace(lines[0])
	}
	n := 0
	for _, l := range lines {
		n += len(l) + 2
	}
	var b strings.Builder
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			if part == "" || dropPair(part, cookieName, isToken) {
				continue
			}
			if b.Len() == 0 {
				b.Grow(n)
			} else {
				b.WriteString("; ")
			}
			b.WriteString(part)
		}
	}
	return b.String()
}

// dropsCookie reports whether upstreamCookie would remove any pair of line.
func dropsCookie(line, cookieName string, isToken func(string) bool) bool {
	for line != "" {
		var part string
		part, line, _ = strings.Cut(line, ";")
		if part = strings.TrimSpace(part); part != "" && dropPair(part, cookieName, isToken) {
			return true
		}
	}
	return false
}

// dropPair reports whether the trimmed "name=value" pair must not reach
// the app: it is the session cookie, or its value is token-shaped.
func dropPair(part, cookieName string, isToken func(string) bool) bool {
	k, v, _ := strings.Cut(part, "=")
	if strings.TrimSpace(k) == cookieName {
		return true
	}
	v = strings.TrimSpace(v)
	if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return forwardAuthTokenShaped(v, isToken)
}

// forwardAuthTokenShaped reports whether v looks like a gateway session or
// API token. An API token's body is a session token's, so until the store
// knows API tokens it is judged by the session check with the session
// prefix in its place; that costs an allocation only for a value that
// starts with the API token prefix.
func forwardAuthTokenShaped(v string, isToken func(string) bool) bool {
	switch {
	case len(v) > maxShapedLen:
		return false
	case strings.HasPrefix(v, sessionTokenPrefix):
		return isToken(v)
	case strings.HasPrefix(v, apiTokenPrefix):
		return isToken(sessionTokenPrefix + v[len(apiTokenPrefix):])
	}
	return false
}

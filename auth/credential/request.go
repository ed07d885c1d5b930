package credential

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Found is the credential a request carries, as Read finds it.
type Found struct {
	// Token is the one credential that counts, or "".
	Token string
	// Kind is Token's kind (NotAToken when Token is "").
	Kind Kind
	// FromCookie: Token came from the session cookie (a stale one is
	// cleared; a cross-origin unsafe request carrying it is refused).
	FromCookie bool
	// Cookie: a non-empty session cookie is present, whether or not it
	// counts. The CSRF check applies whenever it is.
	Cookie bool
	// Tossed: the request carries several session cookies with different
	// non-empty values (a sibling subdomain can set one beside the real
	// one). None of them counts and none is cleared: guessing would let the
	// tossed one in or log the user out.
	Tossed bool
	// Bearer: an Authorization: Bearer value has the shape of a gateway
	// token; it is stripped before the request goes upstream.
	Bearer bool
}

// Read returns the credential of a request's headers h, by the one rule
// that the proxy, forward-auth and the gateway's own endpoints share:
//
//   - the session cookie called cookieName, if it has a session token's
//     shape; an empty one tossed in ahead ("NAME=; NAME=TOKEN") does not
//     hide it, and two different non-empty ones cancel each other (Tossed);
//   - else the first Authorization: Bearer value with a gateway token's
//     shape, session or API token; a foreign Bearer (an upstream's own API
//     token) is not ours and is left alone.
//
// An API token is never accepted as the cookie. Read does not allocate.
func Read(h http.Header, cookieName string) Found {
	var f Found
	var cookie string
	for _, line := range h["Cookie"] {
		for line != "" {
			var name, v string
			name, v, line = NextCookie(line)
			if name != cookieName || v == "" {
				continue
			}
			f.Cookie = true
			switch {
			case cookie == "":
				cookie = v
			case v != cookie:
				f.Tossed = true
			}
		}
	}
	if f.Tossed {
		return f
	}
	if k, _, _, ok := Parse(cookie); ok && k == Session {
		f.Token, f.Kind, f.FromCookie = cookie, Session, true
	} else if cookie != "" {
		// A cookie that is not a session token: no session, and a stale
		// cookie to clear, but never a Bearer token in its place (the
		// cookie counts when both are sent).
		f.FromCookie = true
	}
	for _, a := range h["Authorization"] {
		b := Bearer(a)
		k, _, _, ok := Parse(b)
		if !ok {
			continue
		}
		f.Bearer = true
		if f.Token == "" && !f.FromCookie {
			f.Token, f.Kind = b, k
		}
	}
	return f
}

// All appends to dst every distinct gateway token of h: each token-shaped
// value of the session cookie and each token-shaped Bearer value. A login
// ends them all, so that no token held before signing in stays valid, and a
// logout ends every session the cookies name. At most max are appended, so
// that a request with hundreds of cookies costs a bounded amount of work.
func All(h http.Header, cookieName string, dst []string, max int) []string {
	add := func(v string) bool {
		if len(dst) >= max {
			return false
		}
		if IsToken(v) && !slices.Contains(dst, v) {
			dst = append(dst, v)
		}
		return true
	}
	for _, line := range h["Cookie"] {
		for line != "" {
			var name, v string
			name, v, line = NextCookie(line)
			if name == cookieName && !add(v) {
				return dst
			}
		}
	}
	for _, a := range h["Authorization"] {
		if !add(Bearer(a)) {
			return dst
		}
	}
	return dst
}

// NextCookie parses the first pair of a Cookie header line in place (no
// allocation, unlike Request.Cookie) and returns its name, value (quotes
// removed) and the rest of the line.
func NextCookie(line string) (name, value, rest string) {
	part, rest, _ := strings.Cut(line, ";")
	part = strings.TrimSpace(part)
	name, value, ok := strings.Cut(part, "=")
	if !ok {
		return "", "", rest
	}
	if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	return name, value, rest
}

// Bearer returns the credential of an "Authorization: Bearer T" value
// (scheme case-insensitive), or "".
func Bearer(v string) string {
	const p = "bearer "
	if len(v) > len(p) && strings.EqualFold(v[:len(p)], p) {
		return strings.TrimSpace(v[len(p):])
	}
	return ""
}

// StripTokens removes from h what must never leave the gateway: every
// cookie called cookieName, every cookie of any name whose value has a
// gateway token's shape (a cookie renamed by a reload still holds live
// tokens), and every Authorization: Bearer value with that shape. Other
// cookies and a foreign Bearer stay. The Cookie lines are rewritten only
// when something is removed. It reuses h's value slices in place, as the
// outbound request's cloned header allows, so that it costs one allocation
// (the rewritten Cookie line) at most.
func StripTokens(h http.Header, cookieName string) {
	if lines, ok := h["Cookie"]; ok {
		if c := KeptCookies(lines, cookieName); c == "" {
			delete(h, "Cookie")
		} else if len(lines) != 1 || c != lines[0] {
			lines[0] = c
			h["Cookie"] = lines[:1]
		}
	}
	if vs, ok := h["Authorization"]; ok {
		kept := vs[:0]
		strip := false
		for _, v := range vs {
			if IsToken(Bearer(v)) {
				strip = true
				continue
			}
			kept = append(kept, v)
		}
		switch {
		case !strip:
		case len(kept) == 0:
			delete(h, "Authorization")
		default:
			h["Authorization"] = kept
		}
	}
}

// KeptCookies returns the Cookie header of lines without the session
// cookie and without any token-shaped cookie, joined with "; ", or "" when
// nothing remains. It returns a single line unchanged (no allocation) when
// it holds nothing to remove. Forward-auth answers it as the Cookie the
// front proxy must send to the app instead of the browser's.
func KeptCookies(lines []string, cookieName string) string {
	if len(lines) == 1 && !hasGatewayCookie(lines[0], cookieName) {
		return strings.TrimSpace(lines[0])
	}
	var b strings.Builder
	for _, line := range lines {
		for line != "" {
			part, rest, _ := strings.Cut(line, ";")
			line = rest
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, v, _ := NextCookie(part)
			if name == cookieName || tokenShaped(v) || !strings.Contains(part, "=") && tokenShaped(part) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(part)
		}
	}
	return b.String()
}

func hasGatewayCookie(line, cookieName string) bool {
	for line != "" {
		part, rest, _ := strings.Cut(line, ";")
		line = rest
		name, v, _ := NextCookie(part)
		// A part without "=" is a nameless cookie whose value an app may
		// read as it stands.
		if name == cookieName || tokenShaped(v) || !strings.Contains(part, "=") && tokenShaped(part) {
			return true
		}
	}
	return false
}

// tokenShaped reports whether a cookie value holds a gateway token as a
// lenient application would read it: blanks around it trimmed (Node's
// cookie package, Python's SimpleCookie) and escapes decoded (PHP,
// Express and Rack decode %XX, PHP also "+"), so that "a= TOKEN" or
// "a=gh1%2E..." cannot carry a live token past the strip. It allocates
// only for a value as long as a token that holds '%' or '+'.
func tokenShaped(v string) bool {
	v = strings.Trim(v, " \t")
	if IsToken(v) {
		return true
	}
	// Decoding only shortens a value: one shorter than any token's
	// user id and secret cannot become one.
	if len(v) < UserIDLen+SecretLen || !strings.ContainsAny(v, "%+") {
		return false
	}
	d, err := url.QueryUnescape(v)
	return err == nil && IsToken(strings.Trim(d, " \t"))
}

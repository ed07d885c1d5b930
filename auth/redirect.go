package auth

import (
	"net"
	"net/url"
	"strings"
)

// SafeRedirect returns rd when it is a return target the README allows,
// and "/" otherwise. Allowed are a same-origin path (one leading "/", never
// "//" or "/\" even once percent-decoded, no control characters or
// backslashes raw or decoded) and an absolute http(s) URL without userinfo
// whose host is requestHost or matches allowedHosts ("app.example.com",
// "app.example.com:8443", "app.example.com:*" for any port, or
// ".example.com" for its subdomains but not example.com itself).
//
// It errs towards "/": anything a browser might read differently from the
// way Go parses it (a tab, a backslash, a percent sign or a non-ASCII byte in
// a host, a scheme without "//") is refused rather than normalised, because
// every open-redirect advisory of oauth2-proxy and Authelia comes from such
// a difference. An accepted path is returned with spaces and non-ASCII bytes
// percent-encoded, so that the Location header is plain ASCII.
func SafeRedirect(rd string, requestHost string, allowedHosts []string) string {
	if rd == "" {
		return "/"
	}
	if rd[0] == '/' {
		if p, ok := safePath(rd); ok {
			return p
		}
		return "/"
	}
	if safeAbsolute(rd, requestHost, allowedHosts) {
		return rd
	}
	return "/"
}

// safePath checks a same-origin path and returns it ASCII-encoded.
func safePath(rd string) (string, bool) {
	// Browsers drop tabs and newlines anywhere in a URL and read "\" as "/"
	// in http(s) URLs, so "/\t/evil.com" and "/\evil.com" both leave the
	// site: refuse them raw.
	if len(rd) > 1 && rd[1] == '/' || hasControlOrBackslash(rd) {
		return "", false
	}
	// Decoded once, the target must still be a plain path: a server or a
	// second redirect that decodes "/%2F/evil.com" or "/%5Cevil.com"
	// would otherwise produce a protocol-relative URL.
	dec, err := url.PathUnescape(rd)
	if err != nil || strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, `/\`) || hasControlOrBackslash(dec) {
		return "", false
	}
	return encodeNonASCII(rd), true
}

// safeAbsolute checks an absolute http(s) URL against the request's host
// and the allowed hosts.
func safeAbsolute(rd, requestHost string, allowedHosts []string) bool {
	// Only printable ASCII: a non-ASCII host may be an IDN spoof or hold a
	// character (U+3002, U+FF0E) that browsers map to "." after we
	// compared it, and a space or control byte is dropped or trimmed by
	// browsers.
	for i := 0; i < len(rd); i++ {
		if c := rd[i]; c <= 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	lower := strings.ToLower(rd)
	var scheme string
	switch {
	case strings.HasPrefix(lower, "http://"):
		scheme = "http"
	case strings.HasPrefix(lower, "https://"):
		scheme = "https"
	default:
		// "https:evil.com", "https:/evil.com", "javascript:", "data:",
		// "//evil.com" and relative paths.
		return false
	}
	rest := rd[len(scheme)+len("://"):]
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	// "@" is userinfo ("http://good.com@evil.com"); "%" would be decoded
	// in the host by some parsers and not by others.
	if authority == "" || strings.ContainsAny(authority, "@%") {
		return false
	}
	u, err := url.Parse(rd)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host != authority {
		return false
	}
	host, port := splitHostPort(authority)
	if host == "" || !validHostname(host) {
		return false
	}
	port = canonicalPort(scheme, port)
	if reqHost, reqPort := splitHostPort(requestHost); reqHost != "" &&
		host == strings.ToLower(reqHost) && port == canonicalPort(scheme, reqPort) {
		return true
	}
	for _, a := range allowedHosts {
		if allowedHostMatches(a, scheme, host, port) {
			return true
		}
	}
	return false
}

// allowedHostMatches reports whether one entry of allowed_redirect_hosts
// admits host:port.
func allowedHostMatches(entry, scheme, host, port string) bool {
	entry = strings.ToLower(strings.TrimSpace(entry))
	if entry == "" {
		return false
	}
	anyPort := false
	if strings.HasSuffix(entry, ":*") {
		anyPort = true
		entry = strings.TrimSuffix(entry, ":*")
	}
	eHost, ePort := splitHostPort(entry)
	if !anyPort && canonicalPort(scheme, ePort) != port {
		return false
	}
	if strings.HasPrefix(eHost, ".") {
		// Subdomains only: ".example.com" admits a.example.com, never
		// example.com or evilexample.com.
		return len(host) > len(eHost) && strings.HasSuffix(host, eHost)
	}
	return host == eHost
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port" and
// lower-cases the host; a malformed value gives an empty host.
func splitHostPort(hp string) (host, port string) {
	if hp == "" {
		return "", ""
	}
	if h, p, err := net.SplitHostPort(hp); err == nil {
		if p == "" {
			// "good.com:" is not a port.
			return "", ""
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return "", ""
			}
		}
		return strings.ToLower(h), p
	}
	if strings.HasPrefix(hp, "[") && strings.HasSuffix(hp, "]") {
		return strings.ToLower(hp[1 : len(hp)-1]), ""
	}
	if strings.ContainsAny(hp, ":[]") {
		return "", ""
	}
	return strings.ToLower(hp), ""
}

// canonicalPort drops the scheme's default port so that "good.com" and
// "good.com:443" compare equal for https.
func canonicalPort(scheme, port string) string {
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		return ""
	}
	return port
}

// validHostname accepts DNS names (letters, digits, "-", ".", "_") and IP
// literals; a trailing dot or an empty label is refused.
func validHostname(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") || strings.Contains(h, "..") {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// hasControlOrBackslash reports a C0 control byte, DEL or "\".
func hasControlOrBackslash(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return true
		}
	}
	return false
}

// encodeNonASCII percent-encodes spaces and bytes >= 0x80, leaving existing
// escapes alone; the result means the same path to a browser.
func encodeNonASCII(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] >= 0x80 {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c >= 0x80 {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// checkHostPort returns what is wrong with a host:port listen or dial
// address, or "".
func checkHostPort(s string) string {
	if s == "" {
		return "required: host:port"
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", s)
	}
	return checkPort(port)
}

func checkPort(p string) string {
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 || p == "" || p[0] == '+' || p[0] == '-' {
		return fmt.Sprintf("port %q must be a number between 0 and 65535", p)
	}
	return ""
}

// checkPath returns what is wrong with a configured path (a route or one of
// the gateway's own), or "". Configured paths must already be in the clean
// form the path check produces, or they could never match.
func checkPath(p string) string {
	switch {
	case p == "":
		return "required"
	case p[0] != '/':
		return `must start with "/"`
	case !utf8.ValidString(p):
		return "must be valid UTF-8"
	case strings.Contains(p, "//"):
		return `must not contain "//"`
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "must not contain control characters"
		}
	}
	for _, bad := range []string{"%", `\`, ";", "#", "?"} {
		if strings.Contains(p, bad) {
			return fmt.Sprintf("must not contain %q", bad)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return `must not contain "." or ".." segments`
		}
	}
	return ""
}

// UnderPath reports whether the clean path p is base or below it on a
// segment boundary (/admin covers /admin and /admin/x, never
// /administrator; /assets/ covers /assets/x). It does not allocate: the
// route table matches with it on every request.
func UnderPath(p, base string) bool {
	if !strings.HasPrefix(p, base) {
		return false
	}
	if len(p) == len(base) || base[len(base)-1] == '/' {
		return true
	}
	return p[len(base)] == '/'
}

// IsToken reports whether s is a non-empty RFC 9110 token (the syntax of
// methods, header names and cookie names).
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isDomain reports whether s is a DNS name of letters, digits and hyphens
// (any case), without a trailing dot, and not an IP address.
func isDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	// An all-digit last label would make 10.0.0.1 a "domain".
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}

// parsePrefix parses a CIDR or a single address (as a full-length prefix).
func parsePrefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// String formats d in Go syntax ("15m0s").
func (d Duration) String() string { return time.Duration(d).String() }

package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// trustedNets is the parsed trusted_proxies list.
type trustedNets []netip.Prefix

func parseTrusted(list []string) (trustedNets, error) {
	var t trustedNets
	for i, s := range list {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted_proxies[%d]: %w", i, err)
			}
			t = append(t, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies[%d]: %w", i, err)
		}
		a = a.Unmap()
		t = append(t, netip.PrefixFrom(a, a.BitLen()))
	}
	return t, nil
}

func (t trustedNets) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// containsString reports whether s is an address inside t.
func (t trustedNets) containsString(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && t.contains(a)
}

// peerHost is the host part of RemoteAddr (RemoteAddr itself when it has no
// port).
func peerHost(remoteAddr string) string {
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return h
	}
	return remoteAddr
}

// clientAddr returns the client's address and whether the peer is a trusted
// proxy. The client is the peer, or, behind trusted proxies, the rightmost
// X-Forwarded-For entry that is not a trusted address: everything left of
// it may have been written by the client. An entry may carry a port, which
// is dropped. An entry that is not an address at all ("unknown", an
// obfuscated name) is the client as written: ending the walk at the last
// trusted hop instead would make that proxy the client, and merge every
// client behind it into one for throttling (one client's failed logins
// would lock out all of them). With every hop trusted, the leftmost one is
// the client.
//
// It is on the hot path: the address it returns is a substring of the
// header or of RemoteAddr, so it allocates nothing.
func (t trustedNets) clientAddr(r *http.Request) (ip string, trustedPeer bool) {
	peer := peerHost(r.RemoteAddr)
	if len(t) == 0 || !t.containsString(peer) {
		return peer, false
	}
	client := peer
	xff := r.Header["X-Forwarded-For"]
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for line != "" {
			var part string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				part, line = line[j+1:], line[:j]
			} else {
				part, line = line, ""
			}
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			host, a, ok := parseForwardedAddr(part)
			if !ok {
				return part, true
			}
			client = host
			if !t.contains(a) {
				return client, true
			}
		}
	}
	return client, true
}

// parseForwardedAddr parses one X-Forwarded-For entry: an address
// ("203.0.113.5", "2001:db8::1"), one with a port ("203.0.113.5:4711",
// "[2001:db8::1]:4711") or a bracketed IPv6 address ("[2001:db8::1]").
// host is the address part as written, without brackets, port and IPv6
// zone. The form is told apart before parsing, since a failed netip parse
// allocates its error and this runs for every hop of every request.
func parseForwardedAddr(s string) (host string, a netip.Addr, ok bool) {
	if s == "" {
		return "", netip.Addr{}, false
	}
	v6 := false
	switch {
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 || (end+1 < len(s) && (s[end+1] != ':' || !validPort(s[end+2:]))) {
			return "", netip.Addr{}, false
		}
		host, v6 = s[1:end], true
		if strings.IndexByte(host, '[') >= 0 {
			return "", netip.Addr{}, false // "[::%[]:0": netip takes any zone
		}
	case strings.Count(s, ":") == 1:
		i := strings.IndexByte(s, ':')
		if !validPort(s[i+1:]) {
			return "", netip.Addr{}, false
		}
		host = s[:i]
	default:
		host = s
	}
	a, err := netip.ParseAddr(host)
	if err != nil || (v6 && !a.Is6()) || (host != s && !v6 && !a.Is4()) {
		return "", netip.Addr{}, false
	}
	if z := strings.IndexByte(host, '%'); z >= 0 {
		// A zone names an interface of the proxy that wrote it; it says
		// nothing about the client and may hold any bytes.
		host, a = host[:z], a.WithZone("")
	}
	return host, a, true
}

// validPort reports whether p is a decimal port number (0 to 65535).
func validPort(p string) bool {
	if p == "" {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return false
		}
	}
	return true
}

// ClientIP returns the client address of a request the gateway is serving
// (the handlers of Options.Endpoints get it this way, for throttling): the
// peer, or behind trusted proxies the rightmost untrusted X-Forwarded-For
// entry (without its port). Outside the gateway it falls back to
// RemoteAddr's host.
func ClientIP(r *http.Request) string {
	if st := stateFrom(r.Context()); st != nil && st.info.ClientIP != "" {
		return st.info.ClientIP
	}
	return peerHost(r.RemoteAddr)
}

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
// X-Forwarded-For address that is not trusted: everything left of it may
// have been written by the client. With every hop trusted, the leftmost
// one is the client. An entry that is not an address ends the walk at the
// last trusted hop, since it proves nothing.
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
			a, err := netip.ParseAddr(part)
			if err != nil {
				return client, true
			}
			client = part
			if !t.contains(a) {
				return client, true
			}
		}
	}
	return client, true
}

// ClientIP returns the client address of a request the gateway is serving
// (the handlers of Options.Endpoints get it this way, for throttling): the
// peer, or behind trusted proxies the rightmost untrusted X-Forwarded-For
// address. Outside the gateway it falls back to RemoteAddr's host.
func ClientIP(r *http.Request) string {
	if st := stateFrom(r.Context()); st != nil && st.info.ClientIP != "" {
		return st.info.ClientIP
	}
	return peerHost(r.RemoteAddr)
}

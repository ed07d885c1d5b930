package proxy

import (
	"net/http"
	"net/http/httputil"
)

// rewrite builds the outbound request. ReverseProxy calls it after removing
// hop-by-hop headers (including any a client named in Connection) and the
// canonical X-Forwarded-*/Forwarded headers, so nothing set here can be
// removed by the client.
func (g *Gateway) rewrite(up *upstream, pr *httputil.ProxyRequest) {
	st := stateFrom(pr.In.Context())
	out := pr.Out
	out.Method = st.method

	// The upstream receives exactly the path that was matched, in its
	// canonical encoding; the query is what ReverseProxy kept of it.
	out.URL.Scheme = up.scheme
	out.URL.Host = up.host
	out.URL.Path = st.clean
	out.URL.RawPath = ""
	out.URL.Opaque = ""
	out.URL.User = nil
	out.URL.Fragment, out.URL.RawFragment = "", ""
	out.Host = pr.In.Host

	h := out.Header
	for k := range h {
		switch g.headers.kind(k) {
		case hkIdentity, hkReroute, hkForwarding:
			delete(h, k)
		case hkProxyOnly:
			if !st.trustedPeer {
				delete(h, k)
			}
		}
	}
	// A non-WebSocket upgrade was already dropped in serve; this keeps the
	// rule local to the outbound request too.
	if _, ok := h["Upgrade"]; ok && !isWebSocketUpgrade(h) {
		delete(h, "Upgrade")
		delete(h, "Connection")
	}
	// Every cookie of the session's name goes, not only the one that was
	// used: "NAME=; NAME=TOKEN" must not carry the token upstream.
	stripCookie(h, g.cookieName)
	if st.bearerToken {
		g.stripBearer(h)
	}

	g.setForwarded(h, pr.In, st)

	if st.authed {
		h[g.userIDHeader] = []string{st.id.UserID}
		if g.emailHeader != "" && st.id.Email != "" {
			h[g.emailHeader] = []string{st.id.Email}
		}
	}
}

// setForwarded writes X-Forwarded-For/-Host/-Proto and X-Real-IP. From an
// untrusted peer they are replaced; behind a trusted proxy its chain is
// kept and the peer appended, and its -Host/-Proto/Forwarded believed.
func (g *Gateway) setForwarded(h http.Header, in *http.Request, st *reqState) {
	peer := peerHost(in.RemoteAddr)
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	if st.trustedPeer {
		xff := peer
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			xff = joinComma(prior) + ", " + peer
		}
		h["X-Forwarded-For"] = []string{xff}
		for _, k := range [...]string{"X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "Forwarded"} {
			if v := in.Header[k]; len(v) > 0 {
				h[k] = append([]string(nil), v...)
			}
		}
		if _, ok := h["X-Forwarded-Host"]; !ok {
			h["X-Forwarded-Host"] = []string{in.Host}
		}
		if _, ok := h["X-Forwarded-Proto"]; !ok {
			h["X-Forwarded-Proto"] = []string{proto}
		}
	} else {
		h["X-Forwarded-For"] = []string{peer}
		h["X-Forwarded-Host"] = []string{in.Host}
		if in.TLS != nil {
			h["X-Forwarded-Proto"] = protoHTTPS
		} else {
			h["X-Forwarded-Proto"] = protoHTTP
		}
	}
	h["X-Real-Ip"] = []string{st.clientIP}
}

var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

func joinComma(vs []string) string {
	if len(vs) == 1 {
		return vs[0]
	}
	n := 0
	for _, v := range vs {
		n += len(v) + 2
	}
	b := make([]byte, 0, n)
	for i, v := range vs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, v...)
	}
	return string(b)
}

// stripBearer removes Authorization values that carry a gateway session
// token; a foreign Bearer (an upstream's own API token) stays.
func (g *Gateway) stripBearer(h http.Header) {
	vs := h["Authorization"]
	kept := vs[:0]
	for _, v := range vs {
		if bearerToken(v, g.auth.IsToken) != "" {
			continue
		}
		kept = append(kept, v)
	}
	if len(kept) == 0 {
		delete(h, "Authorization")
		return
	}
	h["Authorization"] = kept
}

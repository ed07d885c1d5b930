package proxy

import (
	"net/http"
	"net/http/httputil"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
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
	// No gateway token leaves the gateway: every cookie of the session's
	// name ("NAME=; NAME=TOKEN" included), every token-shaped cookie of
	// any name (a cookie renamed by a reload still holds live tokens), and
	// every token-shaped Bearer.
	credential.StripTokens(h, g.cookie.Name)
	g.setForwarded(h, pr.In, st)

	if st.authed {
		g.setIdentity(h, &st.id, st.assertion)
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
	h["X-Real-Ip"] = []string{st.info.ClientIP}
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

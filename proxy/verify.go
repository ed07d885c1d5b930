package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// original is the request a forward-auth caller asks about.
type original struct {
	method string
	uri    *url.URL // path and query (and, from X-Original-URL, host)
	host   string
	proto  string
}

// serveVerify is the forward-auth endpoint. It works out the original
// request from the headers of the proxy in front and has it decided exactly
// like a proxied one (decide); render answers 200 with the identity
// headers, 401, 403 or 503. It believes the X-Forwarded-*/X-Original-*
// headers from any caller: the endpoint must only be reachable by the
// proxy in front. The original request gets the CSRF check of a proxied
// one: an allowed answer lets it through to the upstream, whose state it
// may change.
func (g *Gateway) serveVerify(w http.ResponseWriter, r *http.Request, st *reqState) {
	w.Header()["Cache-Control"] = noStore
	o, ok := g.originalRequest(r, st)
	if !ok {
		g.metrics.decision(decBadPath)
		apierror.Write(w, apierror.Forbidden)
		return
	}
	clean, err := CheckPath(o.uri)
	if err != nil || o.method == http.MethodConnect || o.method == http.MethodTrace {
		g.metrics.decision(decBadPath)
		apierror.Write(w, apierror.Forbidden)
		return
	}
	// The CSRF check judges the original method and host with the Origin
	// and Sec-Fetch-Site headers the proxy passed along from the browser:
	// with the verify request's own, a cross-site POST would look like a
	// same-origin GET.
	or := r
	if o.method != r.Method || o.host != r.Host {
		c := *r // shallow: the check reads the method, host and headers
		c.Method, c.Host = o.method, o.host
		or = &c
	}
	v := view{method: o.method, path: clean, query: o.uri.RawQuery, r: or, ws: isWebSocketUpgrade(r.Header) || asksForWebSocket(r.Header),
		navigation:  r.URL.Query().Get("redirect") == "1" && isNavigation(o.method, r.Header),
		forwardAuth: true, scheme: o.proto, host: o.host}
	out := g.decide(st, &v)
	st.rule, st.found, st.authed, st.id = out.rule, out.found, out.authed, out.id
	g.render(w, &v, &out)
}

var zeroLength = []string{"0"}

// originalRequest works out the request being asked about, in the
// contract's order of sources. ok is false for a URI that does not parse.
func (g *Gateway) originalRequest(r *http.Request, st *reqState) (original, bool) {
	h := r.Header
	// Two lines of one of these let the client choose the request judged
	// when the proxy in front appends to a header instead of replacing it.
	for _, k := range originalHeaders {
		if len(h[k]) > 1 {
			return original{}, false
		}
	}
	o := original{host: r.Host, proto: "http"}
	if r.TLS != nil {
		o.proto = "https"
	}
	var uri string
	switch {
	case first(h, "X-Forwarded-Uri") != "":
		// Traefik ForwardAuth, Caddy forward_auth.
		o.method = first(h, "X-Forwarded-Method")
		uri = first(h, "X-Forwarded-Uri")
		if v := first(h, "X-Forwarded-Host"); v != "" {
			if !validHost(v) {
				return o, false
			}
			o.host = v
		}
		if v := first(h, "X-Forwarded-Proto"); v != "" {
			o.proto = v
		}
	case first(h, "X-Original-Uri") != "" || first(h, "X-Original-Url") != "":
		// nginx auth_request, ingress-nginx.
		o.method = first(h, "X-Original-Method")
		if abs := first(h, "X-Original-Url"); abs != "" {
			if strings.IndexByte(abs, '#') >= 0 {
				// url.Parse would cut "/public/x#/../../admin" to
				// "/public/x", while a proxied request with that
				// target is refused and an upstream handed the raw
				// target may clean it to /admin.
				return o, false
			}
			u, err := url.Parse(abs)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !validHost(u.Host) {
				return o, false
			}
			o.host, o.proto = u.Host, u.Scheme
			uri = u.RequestURI()
			if u.Opaque != "" {
				return o, false
			}
		}
		if v := first(h, "X-Original-Uri"); v != "" {
			uri = v
		}
	default:
		// Envoy ext_authz path_prefix: the original path follows
		// verify_path, and the method is the request's own.
		o.method = st.method
		rest := strings.TrimPrefix(st.clean, g.verifyPath)
		if rest == "" || rest[0] != '/' {
			rest = "/" + rest
		}
		o.uri = &url.URL{Path: rest, RawQuery: stripRedirectParam(r.URL.RawQuery)}
		return o, true
	}
	if o.method == "" {
		o.method = http.MethodGet
	}
	o.method = upperMethod(o.method)
	if !config.IsToken(o.method) {
		// "GET, POST" would match no rule's method list and fall through
		// to a later, more permissive rule.
		return o, false
	}
	if o.proto != "http" && o.proto != "https" {
		o.proto = "http"
	}
	// No request line can hold a blank or a control byte; one here is a
	// proxy in front that appended to, or comma-joined, a client's header.
	if !strings.HasPrefix(uri, "/") || strings.ContainsFunc(uri, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return o, false
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return o, false
	}
	o.uri = u
	return o, true
}

// asksForWebSocket reports whether a forward-auth request carries a
// WebSocket handshake's own headers: a proxy in front (Traefik) removes the
// hop-by-hop Upgrade and Connection from the auth request but passes
// Origin and Sec-WebSocket-*, and the Origin check must hold all the same.
func asksForWebSocket(h http.Header) bool {
	return len(h["Sec-Websocket-Key"]) > 0 || len(h["Sec-Websocket-Version"]) > 0
}

// originalHeaders are the headers that name the original request.
var originalHeaders = [...]string{"X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host",
	"X-Original-Uri", "X-Original-Url", "X-Original-Method"}

// stripRedirectParam removes the gateway's own redirect=1 from a verify
// request's query in Envoy mode, where the rest is the original's query.
func stripRedirectParam(q string) string {
	if !strings.Contains(q, "redirect=") {
		return q
	}
	var kept []string
	for part := range strings.SplitSeq(q, "&") {
		if part != "redirect=1" && part != "redirect=0" {
			kept = append(kept, part)
		}
	}
	return strings.Join(kept, "&")
}

// validHost reports whether a host from a forward-auth header is a plain
// host[:port]: letters, digits and "-._:[]" only, as a proxy in front
// sends it. The host becomes part of the rd URL of a redirect, where
// "app.example@evil.example" or "evil.example/x?" would change what that
// URL points at.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == ':' || c == '[' || c == ']':
		default:
			return false
		}
	}
	return true
}

func first(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

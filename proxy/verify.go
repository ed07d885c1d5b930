package proxy

import (
	"errors"
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

// serveVerify is the forward-auth endpoint (CONTRACT "Forward-auth"). It
// answers exactly 200, 401, 403 or 503 (nginx turns a 3xx into a 500),
// except a 302 to the sign-in page that ?redirect=1 asks for on a browser
// navigation. It believes the X-Forwarded-*/X-Original-* headers from any
// caller: the endpoint must only be reachable by the proxy in front. The
// original request gets the CSRF check of a proxied one: an allowed answer
// lets it through to the upstream, whose state it may change.
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
	d := g.routes.Match(o.method, clean)
	rt := &g.rts[d.Index+1]
	st.rule = d.Index
	if rt.policy == config.Deny {
		g.metrics.decision(decForbidden)
		apierror.Write(w, apierror.Forbidden)
		return
	}

	token, fromCookie, _ := g.credential(r.Header)
	if g.protectUpstream && fromCookie && !g.sameOriginal(r, o) {
		// 403 forbidden, not cross_origin: forward-auth answers only
		// 200/401/403/503, and nginx shows its own page for the 403.
		g.metrics.decision(decCrossOrigin)
		apierror.Write(w, apierror.Forbidden)
		return
	}
	if token != "" {
		err := g.authenticate(st, token)
		switch {
		case err == nil:
			st.authed = true
			h := w.Header()
			h[g.userIDHeader] = []string{st.id.UserID}
			if g.emailHeader != "" && st.id.Email != "" {
				h[g.emailHeader] = []string{st.id.Email}
			}
		case rt.policy == config.Public:
		case errors.Is(err, ErrNoSession):
			if fromCookie {
				w.Header()["Set-Cookie"] = append(w.Header()["Set-Cookie"], g.clearCookie)
			}
			g.verifyUnauthenticated(w, r, o, clean)
			return
		default:
			g.metrics.decision(decStoreUnavailable)
			apierror.Write(w, apierror.StoreUnavailable)
			return
		}
	} else if rt.policy == config.Authenticated {
		g.verifyUnauthenticated(w, r, o, clean)
		return
	}
	g.metrics.decision(decAllowed)
	w.Header()["Content-Length"] = zeroLength
	w.WriteHeader(http.StatusOK)
}

var zeroLength = []string{"0"}

// sameOriginal reports whether the original request o passes the CSRF
// check of a proxied request: http.CrossOriginProtection judges it with
// the original method and host and the Origin and Sec-Fetch-Site headers
// that the proxy in front passed along from the browser. The verify
// request's own method and host are the proxy's, not the browser's: with
// them a cross-site POST would look like a same-origin GET.
func (g *Gateway) sameOriginal(r *http.Request, o original) bool {
	switch o.method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true // CrossOriginProtection passes them; skip the copy
	}
	or := *r
	or.Method, or.Host = o.method, o.host
	return g.csrf.Check(&or) == nil
}

// originalRequest works out the request being asked about, in the
// contract's order of sources. ok is false for a URI that does not parse.
func (g *Gateway) originalRequest(r *http.Request, st *reqState) (original, bool) {
	h := r.Header
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
	if !strings.HasPrefix(uri, "/") {
		return o, false
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return o, false
	}
	o.uri = u
	return o, true
}

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

// verifyUnauthenticated answers 401, or with ?redirect=1 and a browser
// navigation 302 to the sign-in page with the original absolute URL as rd
// (Traefik and Caddy pass that answer on to the browser).
func (g *Gateway) verifyUnauthenticated(w http.ResponseWriter, r *http.Request, o original, clean string) {
	g.metrics.decision(decUnauthenticated)
	q := r.URL.Query()
	if q.Get("redirect") == "1" && isNavigation(o.method, r.Header) {
		target := o.proto + "://" + o.host + (&url.URL{Path: clean}).EscapedPath()
		if o.uri.RawQuery != "" {
			target += "?" + o.uri.RawQuery
		}
		w.Header()["Location"] = []string{g.publicURL + g.loginPath + "?rd=" + url.QueryEscape(target)}
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header()["Www-Authenticate"] = wwwAuthenticate
	apierror.Write(w, apierror.Unauthenticated)
}

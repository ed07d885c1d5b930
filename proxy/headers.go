package proxy

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/config"
)

// headerKind classifies a request header name for the upstream rewrite.
type headerKind uint8

const (
	hkNone headerKind = iota
	// hkIdentity: a client's copy of an identity header. Always removed;
	// only the gateway sets these.
	hkIdentity
	// hkReroute: a header that some servers and frameworks honour to
	// change the method, host or path behind the gateway's back. Always
	// removed, even from a trusted proxy.
	hkReroute
	// hkForwarding: a header describing the client or the original
	// request's address. Replaced for an untrusted peer; behind a trusted
	// one the canonical names are carried over (see rewrite.go).
	hkForwarding
	// hkProxyOnly: another header that only a proxy in front may write:
	// every other X-Forwarded-* name (X-Forwarded-Client-Cert, or one an
	// upstream reads that we have never heard of) and CDN client-address
	// headers. Removed from an untrusted peer; passed on from a trusted
	// one, which wrote it.
	hkProxyOnly
)

// Header names by kind. Their folded forms (lower case, without '-', '_'
// and '.') are what a client's header name is compared with, because PHP,
// CGI and WSGI backends read X_User_Id and X.User.Id as the same variable
// as X-User-Id (oauth2-proxy CVE-2025-64484).
var (
	identityHeaders = []string{
		// The defaults of identity.*_header stay identity headers when
		// the file renames or turns one off: an upstream written for
		// the default still reads X-User-Groups.
		"X-User-Id", "X-User-Email", "X-User-Groups", "Remote-User", "X-Remote-User",
		"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username",
		"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Preferred-Username",
		// What an upstream moved from behind oauth2-proxy (groups, access
		// token), Authelia (Remote-Groups/-Email/-Name) or a Grafana-style
		// auth proxy may still authorise with. Always removed, even from a
		// trusted proxy, which passes a client's copies on unchanged.
		"X-Forwarded-Groups", "X-Forwarded-Access-Token",
		"X-Auth-Request-Groups", "X-Auth-Request-Access-Token",
		"Remote-Groups", "Remote-Email", "Remote-Name",
		// Grafana's auth proxy mode reads these as the signed-in user.
		"X-Webauth-User", "X-Webauth-Email",
	}
	rerouteHeaders = []string{
		"X-Original-URL", "X-Rewrite-URL", "X-Forwarded-Prefix",
		"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
		// The forward-auth request headers: an upstream that is itself
		// behind a forward-auth check must not be fed a forged original.
		"X-Original-URI", "X-Original-Method", "X-Forwarded-Uri", "X-Forwarded-Method",
		// Host and path overrides some frameworks and proxies honour in
		// place of Host and the request line: an upstream would build
		// links, pick a tenant or route by a host or path the gateway
		// never matched.
		"X-Host", "X-Original-Host", "X-Envoy-Original-Path",
	}
	forwardingHeaders = []string{
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme",
		"X-Real-IP", "X-Client-IP", "True-Client-IP",
	}
	// proxyOnlyHeaders are hkProxyOnly by name; any other X-Forwarded-*
	// is by prefix (see kind).
	proxyOnlyHeaders = []string{
		"Forwarded-For", "X-Original-Forwarded-For", "CF-Connecting-IP",
		"Fastly-Client-IP", "X-Cluster-Client-IP",
	}
)

// forwardedPrefix is the folded "X-Forwarded-".
const forwardedPrefix = "xforwarded"

// headerPolicy classifies request header names without allocating.
type headerPolicy struct {
	kinds map[string]headerKind
}

func newHeaderPolicy(extraIdentity ...string) (headerPolicy, error) {
	hp := headerPolicy{kinds: make(map[string]headerKind)}
	add := func(names []string, k headerKind) error {
		for _, n := range names {
			if n == "" {
				continue
			}
			var buf [config.MaxFoldedHeaderName]byte
			f, ok := config.AppendFoldedHeaderName(buf[:0], n)
			if !ok || len(f) == 0 {
				return fmt.Errorf("header name %q: too long or empty", n)
			}
			hp.kinds[string(f)] = k
		}
		return nil
	}
	if err := add(proxyOnlyHeaders, hkProxyOnly); err != nil {
		return hp, err
	}
	if err := add(forwardingHeaders, hkForwarding); err != nil {
		return hp, err
	}
	if err := add(rerouteHeaders, hkReroute); err != nil {
		return hp, err
	}
	// Identity last: a configured identity name wins over any other kind.
	if err := add(identityHeaders, hkIdentity); err != nil {
		return hp, err
	}
	if err := add(extraIdentity, hkIdentity); err != nil {
		return hp, err
	}
	return hp, nil
}

// kind classifies a header name. The map lookup with string(bytes) does
// not allocate. An X-Forwarded-* name the lists do not know is
// hkProxyOnly: the gateway replaces every X-Forwarded-* header of an
// untrusted peer, and an upstream may trust one we have never heard of
// (X-Forwarded-Client-Cert carries an mTLS identity).
func (hp *headerPolicy) kind(name string) headerKind {
	var buf [config.MaxFoldedHeaderName]byte
	f, ok := config.AppendFoldedHeaderName(buf[:0], name)
	if !ok {
		if len(f) >= len(forwardedPrefix) && string(f[:len(forwardedPrefix)]) == forwardedPrefix {
			return hkProxyOnly // too long to be one of ours, still X-Forwarded-*
		}
		return hkNone
	}
	if k := hp.kinds[string(f)]; k != hkNone {
		return k
	}
	if len(f) >= len(forwardedPrefix) && string(f[:len(forwardedPrefix)]) == forwardedPrefix {
		return hkProxyOnly
	}
	return hkNone
}

// isWebSocketUpgrade reports whether h asks for a WebSocket upgrade, the
// only upgrade the gateway lets through (h2c would bypass it).
func isWebSocketUpgrade(h http.Header) bool {
	up := h["Upgrade"]
	return len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), "websocket") &&
		headerHasToken(h["Connection"], "upgrade")
}

// headerHasToken reports whether a comma-separated header holds token
// (case-insensitively).
func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// IsBrowserNavigation reports whether r looks like a browser loading a page
// (GET or HEAD whose Accept holds text/html): such a request without a
// session is redirected to the sign-in page rather than answered 401.
func IsBrowserNavigation(r *http.Request) bool {
	return isNavigation(r.Method, r.Header)
}

// isNavigation is IsBrowserNavigation for a method and headers that may
// come from different requests: forward-auth judges the original method
// with the Accept header the proxy in front passed along.
func isNavigation(method string, h http.Header) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	for _, a := range h["Accept"] {
		if strings.Contains(a, "text/html") {
			return true
		}
	}
	return false
}

// originHost returns the host[:port] of an Origin header value
// ("https://app.example.com:8443"), or "" when it is not one ("null").
func originHost(origin string) string {
	_, rest, ok := strings.Cut(origin, "://")
	if !ok || rest == "" || strings.ContainsAny(rest, "/?#@") {
		return ""
	}
	return rest
}

package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
	"github.com/gatehouse-dev/gatehouse/proxy/assertion"
)

// authTimeout bounds one Authenticate call. A session lookup is one Redis
// round trip; a store that has not answered in a second is treated as
// unreachable (503), so that a dead Redis cannot pile up requests.
const authTimeout = time.Second

// Options are New's dependencies.
type Options struct {
	// Config is the configuration, validated by config.Load; New checks
	// nothing again.
	Config *config.Config
	// Auth resolves session tokens. Required.
	Auth Authenticator
	// Endpoints maps an exact clean path (the auth.* paths: login,
	// register, logout, me, account) to the gateway's own handler for it; a
	// key ending in "/" serves every path below it. They are called with a
	// credential.Info in the request's context (the client address).
	Endpoints map[string]http.Handler
	// Logger gets one line per request; nil discards.
	Logger *slog.Logger
	// Metrics is fed by every request; nil records nothing.
	Metrics *Metrics
	// EphemeralKeys signs the identity assertion when
	// identity.assertion.header is set and no key_files are; required
	// then. The command creates it once per process and hands the same set
	// to every reload, so that the published key does not change under
	// upstreams that cached it.
	EphemeralKeys *assertion.KeySet

	// now is the clock of the store-error log limit; nil means time.Now.
	// Tests set it.
	now func() time.Time
}

// Gateway is the public listener's http.Handler: path check, route match,
// policy, CSRF, authentication and forwarding. A Gateway is immutable; a
// reload builds a new one and Closes the old.
type Gateway struct {
	routes  *Routes
	auth    Authenticator
	log     *slog.Logger
	metrics *Metrics

	// rts[0] is default_policy; rts[i+1] is rule i.
	rts       []routeRT
	upstreams map[string]*upstream
	endpoints []ownEndpoint
	verify    routeRT // the forward-auth endpoint's label
	refused   routeRT // requests refused before a route was chosen

	headers      headerPolicy
	trusted      trustedNets
	userIDHeader string // canonical
	emailHeader  string // canonical; "" = not sent
	groupsHeader string // canonical; "" = not sent
	assertHeader string // canonical; "" = no assertion
	// signer signs the identity assertion; nil when assertHeader is "".
	signer *assertion.Signer

	cookie      credential.Cookie
	loginPath   string
	accountPath string
	verifyPath  string
	publicURL   string

	protectUpstream bool
	csrf            *http.CrossOriginProtection
	trustedOrigins  map[string]bool

	now func() time.Time
	// One log line per second at most for each kind of request error.
	storeErrLog  logLimit
	assertErrLog logLimit
}

// routeRT is a route's runtime: its label, policy, what it asks of an
// identity beyond a valid session, upstream and metrics.
type routeRT struct {
	index   int
	name    string
	policy  config.Policy
	groups  []string // the user must be in one of them; nil = any
	mfa     bool     // the session must have passed a second factor
	up      *upstream
	aud     string // the assertion's aud claim: the upstream's audience
	metrics *routeMetrics
}

type ownEndpoint struct {
	path   string
	prefix bool // path ends in "/" and serves everything below it
	h      http.Handler
	rt     routeRT
}

// New builds a Gateway from opts: the route table, one ReverseProxy (with
// its own transport) per upstream, and the header policy. The
// configuration was validated by config.Load, so the only failures left are
// those of building transports (an unreadable ca_file since).
func New(opts Options) (*Gateway, error) {
	cfg := opts.Config
	if cfg == nil || opts.Auth == nil {
		return nil, errors.New("proxy: New needs a config and an authenticator")
	}
	routes := NewRoutes(cfg)
	g := &Gateway{
		routes:          routes,
		auth:            opts.Auth,
		log:             opts.Logger,
		metrics:         opts.Metrics,
		upstreams:       make(map[string]*upstream, len(cfg.Upstreams)),
		userIDHeader:    http.CanonicalHeaderKey(cfg.Identity.UserIDHeader),
		cookie:          credential.NewCookie(cfg.Session),
		loginPath:       cfg.Auth.LoginPath,
		accountPath:     cfg.Auth.AccountPath,
		verifyPath:      cfg.Auth.VerifyPath,
		publicURL:       strings.TrimSuffix(cfg.Auth.PublicURL, "/"),
		protectUpstream: cfg.CSRF.ProtectUpstream,
		csrf:            credential.CrossOrigin(cfg.CSRF.TrustedOrigins, nil),
		trustedOrigins:  make(map[string]bool),
		now:             opts.now,
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Identity.EmailHeader != "" {
		g.emailHeader = http.CanonicalHeaderKey(cfg.Identity.EmailHeader)
	}
	if cfg.Identity.GroupsHeader != "" {
		g.groupsHeader = http.CanonicalHeaderKey(cfg.Identity.GroupsHeader)
	}
	if h := cfg.Identity.Assertion.Header; h != "" {
		g.assertHeader = http.CanonicalHeaderKey(h)
	}
	var err error
	if g.headers, err = newHeaderPolicy(g.userIDHeader, g.emailHeader, g.groupsHeader, cfg.Identity.Assertion.Header); err != nil {
		return nil, fmt.Errorf("proxy: identity: %w", err)
	}
	jwks, signer, err := assertionKeys(cfg, opts.EphemeralKeys, g.now)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	g.signer = signer
	if g.trusted, err = parseTrusted(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	for _, o := range cfg.CSRF.TrustedOrigins {
		g.trustedOrigins[o] = true
	}

	for name, u := range cfg.Upstreams {
		up, err := g.newUpstream(name, u)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("proxy: upstreams.%s: %w", name, err)
		}
		g.upstreams[name] = up
	}
	g.rts = make([]routeRT, routes.Len()+1)
	g.rts[0] = routeRT{index: -1, name: "default", policy: routes.defaultPolicy, up: g.upstreams[routes.defaultUpstream],
		aud: audienceOf(cfg, routes.defaultUpstream)}
	for i := range routes.rules {
		ru := &routes.rules[i]
		g.rts[i+1] = routeRT{index: i, name: ru.name, policy: ru.policy, up: g.upstreams[ru.upstream],
			aud: audienceOf(cfg, ru.upstream), groups: ru.route.Groups, mfa: ru.route.MFA == config.MFARequired}
	}
	for i := range g.rts {
		rt := &g.rts[i]
		rt.metrics = g.metrics.forRoute(rt.name, string(rt.policy))
	}
	g.verify = routeRT{index: -2, name: "verify", policy: "none", metrics: g.metrics.forRoute("verify", "none")}
	g.refused = routeRT{index: -2, name: "none", policy: "none", metrics: g.metrics.forRoute("none", "none")}
	// Before the auth endpoints, which never claim this path anyway.
	g.endpoints = append(g.endpoints, g.jwksEndpoint(jwks))
	for path, h := range opts.Endpoints {
		if h == nil {
			continue
		}
		name := endpointName(cfg, strings.TrimSuffix(path, "/"))
		if name == "" {
			name = "endpoint"
		}
		g.endpoints = append(g.endpoints, ownEndpoint{path: path, prefix: strings.HasSuffix(path, "/"), h: h,
			rt: routeRT{index: -2, name: name, policy: "none", metrics: g.metrics.forRoute(name, "none")}})
	}
	// Exact paths first, then the longest prefix: /account/gatehouse.js
	// before /account/, whatever the map's order.
	slices.SortFunc(g.endpoints, func(a, b ownEndpoint) int {
		if a.prefix != b.prefix {
			if a.prefix {
				return 1
			}
			return -1
		}
		return len(b.path) - len(a.path)
	})
	return g, nil
}

// Close closes the idle upstream connections of this Gateway's transports.
// The command calls it after a reload has swapped in a new Gateway;
// requests still in flight finish normally.
func (g *Gateway) Close() {
	for _, up := range g.upstreams {
		up.close()
	}
}

// ServeHTTP runs the request pipeline: path check, the gateway's own
// endpoints, then the access decision (decide) and, when it allows,
// forwarding. This is the hot path: one state allocation, one Request copy
// for the context, at most one Authenticate call, no lock, no regexp and no
// JSON outside error answers.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &reqState{Context: r.Context(), start: time.Now(), rule: -2}
	st.w.ResponseWriter, st.w.cookieName = w, g.cookie.Name
	r = r.WithContext(st)
	if g.metrics != nil {
		g.metrics.inFlight.Inc()
	}
	// Deferred so that the line is logged and the gauge restored even when
	// ReverseProxy aborts a broken response with panic(http.ErrAbortHandler).
	defer g.finish(st, r)
	g.serve(&st.w, r, st)
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, st *reqState) {
	// Go accepts "get"; the upstream must see the method that was matched.
	st.method = upperMethod(r.Method)
	r.Method = st.method
	st.route = &g.refused
	st.info.ClientIP, st.trustedPeer = g.trusted.clientAddr(r)

	clean, err := CheckPath(r.URL)
	if err != nil {
		g.metrics.decision(decBadPath)
		if g.verifyPath != "" && config.UnderPath(r.URL.Path, g.verifyPath) {
			// Forward-auth answers only 200/401/403/503.
			st.route = &g.verify
			apierror.Write(w, apierror.Forbidden)
			return
		}
		apierror.Write(w, apierror.BadPath)
		return
	}
	st.clean = clean
	if g.verifyPath != "" && config.UnderPath(clean, g.verifyPath) {
		st.route = &g.verify
		g.serveVerify(w, r, st)
		return
	}
	// Checked after the forward-auth dispatch, which answers only
	// 200/401/403/503 and refuses an original CONNECT or TRACE with 403.
	// A CONNECT in authority form ("CONNECT host:443") has an empty path,
	// which CheckPath turns into "/": it must never reach the routes.
	if st.method == http.MethodConnect || st.method == http.MethodTrace {
		w.Header()["Allow"] = allowProxied
		apierror.Write(w, apierror.MethodNotAllowed)
		return
	}
	if ep := g.endpoint(clean); ep != nil {
		st.route = &ep.rt
		// The handler reads the path it was matched on: with "//"
		// merged, "/me//tokens" is /me/tokens there too.
		if r.URL.Path != clean {
			r.URL.Path, r.URL.RawPath = clean, ""
		}
		ep.h.ServeHTTP(w, r)
		return
	}

	// Only a WebSocket upgrade goes through; dropping any other Upgrade
	// here (h2c in particular) makes ReverseProxy treat the request as a
	// plain one.
	ws := false
	if _, ok := r.Header["Upgrade"]; ok {
		if ws = isWebSocketUpgrade(r.Header); !ws {
			delete(r.Header, "Upgrade")
		}
	}
	v := view{method: st.method, path: clean, query: r.URL.RawQuery, r: r, ws: ws, navigation: IsBrowserNavigation(r)}
	out := g.decide(st, &v)
	st.route, st.rule = out.route, out.rule
	st.found, st.authed, st.id, st.assertion = out.found, out.authed, out.id, out.assertion
	if out.result != decAllowed {
		g.render(w, &v, &out)
		return
	}
	g.metrics.decision(decAllowed)
	out.route.up.proxy.ServeHTTP(w, r)
}

// endpoint returns the gateway's own endpoint for a clean path, or nil.
func (g *Gateway) endpoint(clean string) *ownEndpoint {
	for i := range g.endpoints {
		ep := &g.endpoints[i]
		if ep.path == clean || ep.prefix && len(clean) > len(ep.path) && clean[:len(ep.path)] == ep.path {
			return ep
		}
	}
	return nil
}

// logStoreError logs a failed store lookup, rate-limited (logLimited).
func (g *Gateway) logStoreError(ctx context.Context, err error) {
	g.logLimited(ctx, &g.storeErrLog, "session store error", err)
}

var (
	// allowProxied is the Allow header of a 405 for CONNECT or TRACE
	// (RFC 9110 requires one): the methods a route may pass on.
	allowProxied    = []string{"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"}
	noStore         = []string{"no-store"}
	wwwAuthenticate = []string{`Bearer realm="gatehouse"`}
)

// originAllowed reports whether a WebSocket upgrade's Origin is absent (not
// a browser), the request's own host, or trusted: a browser opening a
// WebSocket from a foreign page would otherwise carry the user's cookie
// (cross-site WebSocket hijacking).
func (g *Gateway) originAllowed(r *http.Request) bool {
	o := r.Header["Origin"]
	if len(o) == 0 {
		return true
	}
	if len(o) > 1 {
		return false
	}
	if h := originHost(o[0]); h != "" && strings.EqualFold(h, r.Host) {
		return true
	}
	return g.trustedOrigins[o[0]]
}

// upperMethod upper-cases m, without allocating when it already is.
func upperMethod(m string) string {
	for i := 0; i < len(m); i++ {
		if 'a' <= m[i] && m[i] <= 'z' {
			return strings.ToUpper(m)
		}
	}
	return m
}

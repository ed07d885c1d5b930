package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// authTimeout bounds one Authenticate call. A session lookup is one Redis
// round trip; a store that has not answered in a second is treated as
// unreachable (503), so that a dead Redis cannot pile up requests.
const authTimeout = time.Second

// Options are New's dependencies.
type Options struct {
	// Config is the validated configuration. The Gateway keeps it and
	// never changes it.
	Config *config.Config
	// Auth resolves session tokens. Required.
	Auth Authenticator
	// Endpoints maps an exact clean path (the auth.* paths: login,
	// register, logout, me) to the gateway's own handler for it. They are
	// called with the per-request state in the context (see ClientIP).
	Endpoints map[string]http.Handler
	// Logger gets one line per request; nil discards.
	Logger *slog.Logger
	// Metrics is fed by every request; nil records nothing.
	Metrics *Metrics

	// now is the clock of the store-error log limit; nil means time.Now.
	// Tests set it.
	now func() time.Time
}

// Gateway is the public listener's http.Handler: path check, route match,
// policy, CSRF, authentication and forwarding. A Gateway is immutable; a
// reload builds a new one and Closes the old.
type Gateway struct {
	cfg     *config.Config
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

	cookieName  string
	clearCookie string // Set-Cookie value that deletes a stale session cookie
	loginPath   string
	verifyPath  string
	publicURL   string

	protectUpstream bool
	csrf            *http.CrossOriginProtection
	trustedOrigins  map[string]bool

	now func() time.Time
	// storeErrLogged is when (unix nanoseconds, from now) the last "session
	// store error" line was logged; storeErrSuppressed counts the lines
	// left out since (see logStoreError).
	storeErrLogged     atomic.Int64
	storeErrSuppressed atomic.Int64
}

// routeRT is a route's runtime: its label, policy, upstream and metrics.
type routeRT struct {
	index   int
	name    string
	policy  config.Policy
	up      *upstream
	metrics *routeMetrics
}

type ownEndpoint struct {
	path string
	h    http.Handler
	rt   routeRT
}

// New builds a Gateway from opts. It compiles the route table, creates one
// ReverseProxy (with its own transport) per upstream, and fails on a
// configuration it cannot serve.
func New(opts Options) (*Gateway, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("proxy: no config")
	}
	if opts.Auth == nil {
		return nil, errors.New("proxy: no authenticator")
	}
	routes, err := NewRoutes(cfg)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	g := &Gateway{
		cfg:             cfg,
		routes:          routes,
		auth:            opts.Auth,
		log:             opts.Logger,
		metrics:         opts.Metrics,
		upstreams:       make(map[string]*upstream, len(cfg.Upstreams)),
		userIDHeader:    http.CanonicalHeaderKey(cfg.Identity.UserIDHeader),
		cookieName:      cfg.Session.CookieName,
		loginPath:       cfg.Auth.LoginPath,
		verifyPath:      cfg.Auth.VerifyPath,
		publicURL:       strings.TrimSuffix(cfg.Auth.PublicURL, "/"),
		protectUpstream: cfg.CSRF.ProtectUpstream,
		csrf:            http.NewCrossOriginProtection(),
		trustedOrigins:  make(map[string]bool),
		now:             opts.now,
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.userIDHeader == "" {
		return nil, errors.New("proxy: identity.user_id_header: required")
	}
	if cfg.Identity.EmailHeader != "" {
		g.emailHeader = http.CanonicalHeaderKey(cfg.Identity.EmailHeader)
	}
	if g.cookieName == "" {
		return nil, errors.New("proxy: session.cookie_name: required")
	}
	if g.verifyPath != "" && !strings.HasPrefix(g.verifyPath, "/") {
		return nil, errors.New("proxy: auth.verify_path: must start with \"/\"")
	}
	if g.headers, err = newHeaderPolicy(g.userIDHeader, g.emailHeader); err != nil {
		return nil, fmt.Errorf("proxy: identity: %w", err)
	}
	if g.trusted, err = parseTrusted(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	for i, o := range cfg.CSRF.TrustedOrigins {
		if err := g.csrf.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("proxy: csrf.trusted_origins[%d]: %w", i, err)
		}
		g.trustedOrigins[o] = true
	}
	g.clearCookie = clearCookieValue(&cfg.Session)

	for name, u := range cfg.Upstreams {
		up, err := g.newUpstream(name, u)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("proxy: upstreams.%s: %w", name, err)
		}
		g.upstreams[name] = up
	}
	g.rts = make([]routeRT, routes.Len()+1)
	for i := -1; i < routes.Len(); i++ {
		var d Decision
		if i < 0 {
			d = Decision{Index: -1, Name: "default", Policy: routes.defaultPolicy, Upstream: routes.defaultUpstream}
		} else {
			ru := &routes.rules[i]
			d = Decision{Index: i, Name: ru.name, Policy: ru.policy, Upstream: ru.upstream}
		}
		rt := routeRT{index: i, name: d.Name, policy: d.Policy, up: g.upstreams[d.Upstream]}
		rt.metrics = g.metrics.forRoute(rt.name, string(rt.policy))
		g.rts[i+1] = rt
	}
	g.verify = routeRT{index: -2, name: "verify", policy: "none", metrics: g.metrics.forRoute("verify", "none")}
	g.refused = routeRT{index: -2, name: "none", policy: "none", metrics: g.metrics.forRoute("none", "none")}
	names := map[string]string{
		cfg.Auth.LoginPath: "login", cfg.Auth.RegisterPath: "register",
		cfg.Auth.LogoutPath: "logout", cfg.Auth.MePath: "me",
	}
	for path, h := range opts.Endpoints {
		if h == nil {
			continue
		}
		name := names[path]
		if name == "" {
			name = "endpoint"
		}
		g.endpoints = append(g.endpoints, ownEndpoint{path: path, h: h,
			rt: routeRT{index: -2, name: name, policy: "none", metrics: g.metrics.forRoute(name, "none")}})
	}
	return g, nil
}

// clearCookieValue is the Set-Cookie that ends a stale session cookie on
// the client: same name, path and domain as auth sets, Max-Age=0.
func clearCookieValue(s *config.Session) string {
	c := &http.Cookie{Name: s.CookieName, Value: "", Path: "/", Domain: s.CookieDomain,
		MaxAge: -1, HttpOnly: true, Secure: s.CookieSecure, SameSite: http.SameSiteLaxMode}
	if strings.EqualFold(s.CookieSameSite, "strict") {
		c.SameSite = http.SameSiteStrictMode
	}
	return c.String()
}

// Close closes the idle upstream connections of this Gateway's transports.
// The command calls it after a reload has swapped in a new Gateway;
// requests still in flight finish normally.
func (g *Gateway) Close() {
	for _, up := range g.upstreams {
		up.close()
	}
}

// ServeHTTP runs the request pipeline (design notes, "The request
// pipeline"). This is the hot path: one state allocation, one Request copy
// for the context, at most one Authenticate call, no lock, no regexp and no
// JSON outside error answers.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &reqState{Context: r.Context(), start: time.Now(), rule: -2}
	st.w.ResponseWriter = w
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
	st.clientIP, st.trustedPeer = g.trusted.clientAddr(r)

	clean, err := CheckPath(r.URL)
	if err != nil {
		if g.verifyPath != "" && underPrefix(r.URL.Path, g.verifyPath) {
			// Forward-auth answers only 200/401/403/503.
			st.route = &g.verify
			g.metrics.decision(decBadPath)
			apierror.Write(w, apierror.Forbidden)
			return
		}
		g.metrics.decision(decBadPath)
		apierror.Write(w, apierror.BadPath)
		return
	}
	st.clean = clean
	if g.verifyPath != "" && underPrefix(clean, g.verifyPath) {
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
	for i := range g.endpoints {
		if ep := &g.endpoints[i]; ep.path == clean {
			st.route = &ep.rt
			ep.h.ServeHTTP(w, r)
			return
		}
	}

	d := g.routes.Match(st.method, clean)
	rt := &g.rts[d.Index+1]
	st.route, st.rule = rt, d.Index
	if rt.policy == config.Deny || rt.up == nil {
		g.metrics.decision(decForbidden)
		apierror.Write(w, apierror.Forbidden)
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

	token, fromCookie, gatewayBearer := g.credential(r.Header)
	st.sessionCookie, st.bearerToken = fromCookie, gatewayBearer

	if g.protectUpstream && st.sessionCookie && g.csrf.Check(r) != nil {
		g.metrics.decision(decCrossOrigin)
		apierror.Write(w, apierror.CrossOrigin)
		return
	}
	// WebSocket upgrades are GETs, which CrossOriginProtection always
	// passes, and browsers send cookies on them from any page: the Origin
	// check is what stops cross-site WebSocket hijacking, so it holds
	// whatever csrf.protect_upstream says.
	if ws && !g.originAllowed(r) {
		g.metrics.decision(decCrossOrigin)
		apierror.Write(w, apierror.CrossOrigin)
		return
	}

	if token != "" {
		err := g.authenticate(st, token)
		switch {
		case err == nil:
			st.authed = true
		case rt.policy == config.Public:
			// Public routes work without identity, store outage included.
		case errors.Is(err, ErrNoSession):
			if st.sessionCookie {
				w.Header()["Set-Cookie"] = append(w.Header()["Set-Cookie"], g.clearCookie)
			}
			g.unauthenticated(w, r, st)
			return
		default:
			g.metrics.decision(decStoreUnavailable)
			apierror.Write(w, apierror.StoreUnavailable)
			return
		}
	} else if rt.policy == config.Authenticated {
		g.unauthenticated(w, r, st)
		return
	}
	g.metrics.decision(decAllowed)
	rt.up.proxy.ServeHTTP(w, r)
}

// credential returns the session token a request carries, read by the one
// rule of Credential (package auth's endpoints use the same). fromCookie
// and gatewayBearer say which were present, since both are stripped before
// the request goes upstream. The stack buffer keeps the hot path free of
// allocation: the gateway does not need the list of every token.
func (g *Gateway) credential(h http.Header) (token string, fromCookie, gatewayBearer bool) {
	var buf [2]string
	token, fromCookie, gatewayBearer, _ = credential(h, g.cookieName, g.auth.IsToken, buf[:0])
	return token, fromCookie, gatewayBearer
}

// authenticate asks the Authenticator once, bounded by authTimeout. A
// token that does not have the gateway's shape costs no store access.
// Anything but success or ErrNoSession counts as the store being
// unreachable: fail closed, keep the cookie.
func (g *Gateway) authenticate(st *reqState, token string) error {
	if !g.auth.IsToken(token) {
		return ErrNoSession
	}
	ctx, cancel := context.WithTimeout(st, authTimeout)
	id, err := g.auth.Authenticate(ctx, token)
	cancel()
	if err != nil {
		if errors.Is(err, ErrNoSession) {
			return ErrNoSession
		}
		g.logStoreError(st, err)
		return ErrStoreUnavailable
	}
	if id.UserID == "" {
		return ErrNoSession
	}
	st.id = id
	return nil
}

// storeErrorLogEvery is the least time between two "session store error"
// lines. During a store outage every request that carries a token fails
// its lookup: one line per failure would be thousands of lines a second,
// burying every other line and costing the log pipeline more than the
// outage itself.
const storeErrorLogEvery = time.Second

// logStoreError logs a failed store lookup, at most once per
// storeErrorLogEvery; the lines left out in between are counted and the
// count goes with the next line. Lock-free: it runs on the hot path of
// every failing request.
func (g *Gateway) logStoreError(ctx context.Context, err error) {
	now := g.now().UnixNano()
	last := g.storeErrLogged.Load()
	if now-last < int64(storeErrorLogEvery) || !g.storeErrLogged.CompareAndSwap(last, now) {
		g.storeErrSuppressed.Add(1)
		return
	}
	g.log.LogAttrs(ctx, slog.LevelWarn, "session store error",
		slog.String("error", err.Error()), slog.Int64("suppressed", g.storeErrSuppressed.Swap(0)))
}

// unauthenticated answers a request that needs a session and has none: a
// browser navigation goes to the sign-in page, anything else gets 401.
func (g *Gateway) unauthenticated(w http.ResponseWriter, r *http.Request, st *reqState) {
	g.metrics.decision(decUnauthenticated)
	h := w.Header()
	h["Cache-Control"] = noStore
	if IsBrowserNavigation(r) {
		target := (&url.URL{Path: st.clean}).EscapedPath()
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		h["Location"] = []string{g.loginPath + "?rd=" + url.QueryEscape(target)}
		w.WriteHeader(http.StatusFound)
		return
	}
	h["Www-Authenticate"] = wwwAuthenticate
	apierror.Write(w, apierror.Unauthenticated)
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

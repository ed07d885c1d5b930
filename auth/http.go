package auth

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// HandlerOptions are the dependencies of NewHandlers. Credential is
// required; the others are optional.
type HandlerOptions struct {
	// Credential reads the session a request carries: the token (the
	// cookie's when there is one), whether it came from the cookie (a
	// stale cookie is cleared), and every distinct gateway token the
	// request carries (a login or registration ends them all). Required:
	// it must be package proxy's Credential, so that these endpoints see
	// exactly the session the proxy sees (a logout must end the session
	// that proxied requests would have used).
	Credential func(*http.Request) (token string, fromCookie bool, all []string)
	// ClientIP returns the client address that login throttling counts
	// (package proxy's ClientIP, which honours trusted_proxies). Nil means
	// the host of RemoteAddr.
	ClientIP func(*http.Request) string
	// Logger receives unexpected errors (never a password, token or
	// cookie). Nil discards them.
	Logger *slog.Logger
	// SetUserID is told the user id of a request that proved it (a
	// successful login or registration, /me with a valid session), so that
	// the request's log line carries it (package proxy's SetUserID). It is
	// never told an id merely claimed by a token. Nil means nobody listens.
	SetUserID func(r *http.Request, userID string)

	// bodyReadTimeout overrides bodyReadTimeout; tests shorten it.
	bodyReadTimeout time.Duration
}

// bodyReadTimeout bounds the time a client takes to send the body of a
// request to these endpoints. The public server has no ReadTimeout on
// purpose (proxied uploads may take long), so without it a client that
// announces a body and trickles it (or never sends it) holds a connection
// and a goroutine forever. Ten seconds is ample for 64 KiB.
const bodyReadTimeout = 10 * time.Second

// handlers serves the gateway's own endpoints. Everything it reads from the
// configuration is copied at construction.
type handlers struct {
	svc        *Service
	credential func(*http.Request) (token string, fromCookie bool, all []string)
	clientIP   func(*http.Request) string
	setUserID  func(*http.Request, string)
	logger     *slog.Logger
	pages      *pageSet
	csrf       *http.CrossOriginProtection

	loginPath, registerPath string
	allowedHosts            []string
	registrationOpen        bool
	minLength               int

	cookieName, cookieDomain string
	cookieSecure             bool
	cookieSameSite           http.SameSite
	cookieMaxAge             int

	bodyReadTimeout time.Duration
}

// NewHandlers returns the gateway's own endpoints keyed by their configured
// path (cfg.Auth.LoginPath, RegisterPath, LogoutPath and MePath), for the
// proxy to dispatch on the exact clean path. Every answer carries
// Cache-Control: no-store; POSTs are refused with 403 cross_origin when
// http.CrossOriginProtection (with cfg.CSRF.TrustedOrigins) judges them
// cross-origin; another method gets 405 method_not_allowed with Allow. It
// panics without opts.Credential: that is a wiring defect, and a default
// of its own would read sessions differently from the proxy.
func NewHandlers(cfg *config.Config, svc *Service, opts HandlerOptions) map[string]http.Handler {
	if opts.Credential == nil {
		panic("auth: NewHandlers: HandlerOptions.Credential is required")
	}
	h := &handlers{
		svc:              svc,
		credential:       opts.Credential,
		bodyReadTimeout:  opts.bodyReadTimeout,
		clientIP:         opts.ClientIP,
		setUserID:        opts.SetUserID,
		logger:           opts.Logger,
		loginPath:        cfg.Auth.LoginPath,
		registerPath:     cfg.Auth.RegisterPath,
		allowedHosts:     append([]string(nil), cfg.Auth.AllowedRedirectHosts...),
		registrationOpen: cfg.Auth.Registration == config.RegistrationOpen,
		minLength:        cfg.Auth.PasswordMinLength,
		cookieName:       cfg.Session.CookieName,
		cookieDomain:     cfg.Session.CookieDomain,
		cookieSecure:     cfg.Session.CookieSecure,
		cookieSameSite:   http.SameSiteLaxMode,
		cookieMaxAge:     int(time.Duration(cfg.Session.TTL) / time.Second),
	}
	if strings.EqualFold(cfg.Session.CookieSameSite, "strict") {
		h.cookieSameSite = http.SameSiteStrictMode
	}
	if h.bodyReadTimeout <= 0 {
		h.bodyReadTimeout = bodyReadTimeout
	}
	if h.clientIP == nil {
		h.clientIP = remoteHost
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.setUserID == nil {
		h.setUserID = func(*http.Request, string) {}
	}
	ps, err := loadPages()
	if err != nil {
		// The pages are embedded and covered by tests: failing here is a
		// build defect, not a runtime condition.
		panic("auth: " + err.Error())
	}
	h.pages = ps

	h.csrf = http.NewCrossOriginProtection()
	h.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierror.Write(w, apierror.CrossOrigin)
	}))
	for _, o := range cfg.CSRF.TrustedOrigins {
		if err := h.csrf.AddTrustedOrigin(o); err != nil {
			// config validation refuses such origins; one that slips
			// through only makes the protection stricter.
			h.logger.Warn("csrf: ignoring trusted origin", "origin", o, "err", err)
		}
	}

	return map[string]http.Handler{
		cfg.Auth.LoginPath:    h.endpoint("GET, HEAD, POST", h.loginPage, h.login),
		cfg.Auth.RegisterPath: h.endpoint("GET, HEAD, POST", h.registerPage, h.register),
		cfg.Auth.LogoutPath:   h.endpoint("POST", nil, h.logout),
		cfg.Auth.MePath:       h.endpoint("GET, HEAD", h.me, nil),
	}
}

// endpoint dispatches on the method: get serves GET and HEAD, post serves
// POST behind the cross-origin check, anything else is 405. The method is
// compared exactly: the proxy upper-cases it before dispatching here.
func (h *handlers) endpoint(allow string, get, post http.HandlerFunc) http.Handler {
	var protected http.Handler
	if post != nil {
		protected = h.csrf.Handler(post)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Answers here hold sessions, identities and forms: never cache
		// them, whatever the status.
		w.Header().Set("Cache-Control", "no-store")
		h.limitBodyRead(w, r)
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			if get != nil {
				get(w, r)
				return
			}
		case http.MethodPost:
			if protected != nil {
				protected.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Allow", allow)
		apierror.Write(w, apierror.MethodNotAllowed)
	})
}

// limitBodyRead gives the client bodyReadTimeout to send the request body,
// whatever the method: even a body that is never read (a 405, a CSRF
// refusal, a wrong Content-Type) is read by the server after the handler,
// to keep the connection, before the answer goes out. readBody lifts the
// deadline once the body is in, so that a slow login (bcrypt, the store)
// is not cut off. A request without a body gets no deadline: the server
// is already reading ahead on its connection to notice a client leaving,
// and a deadline would end that read with an error that cancels the
// request's context.
func (h *handlers) limitBodyRead(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	// An error means the ResponseWriter cannot set one (a test recorder);
	// the request is served all the same.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.bodyReadTimeout))
}

// sessionCookie is the cookie that carries a new session.
func (h *handlers) sessionCookie(token string) *http.Cookie {
	return &http.Cookie{
		Name:     h.cookieName,
		Value:    token,
		Path:     "/",
		Domain:   h.cookieDomain,
		MaxAge:   h.cookieMaxAge,
		Secure:   h.cookieSecure,
		HttpOnly: true,
		SameSite: h.cookieSameSite,
	}
}

// clearCookie removes the session cookie: the same name, Path, Domain and
// attributes, so that the browser replaces the one it holds, and Max-Age=0.
func (h *handlers) clearCookie() *http.Cookie {
	c := h.sessionCookie("")
	c.MaxAge = -1 // written as Max-Age=0
	return c
}

// writeUser answers {"user":{"id":...,"email":...}}.
func (h *handlers) writeUser(w http.ResponseWriter, status int, u User) {
	body, err := json.Marshal(struct {
		User User `json:"user"`
	}{u})
	if err != nil {
		// A struct of two strings always marshals.
		apierror.Write(w, apierror.InternalError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// seeOther answers a form post with 303, which makes the browser follow
// with a GET.
func seeOther(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
}

// remoteHost is the default ClientIP: the peer's address.
func remoteHost(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

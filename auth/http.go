package auth

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// HandlerOptions are the optional dependencies of NewHandlers.
type HandlerOptions struct {
	// Logger receives unexpected errors (never a password, token or
	// cookie). Nil discards them.
	Logger *slog.Logger
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
	svc    *Service
	logger *slog.Logger
	pages  *pageSet
	csrf   *http.CrossOriginProtection
	cookie credential.Cookie
	// cookieSecure is session.cookie_secure, for the device cookie.
	cookieSecure bool

	loginPath, registerPath string
	logoutPath, accountPath string
	maxTokenTTL             time.Duration
	allowedHosts            []string
	registrationOpen        bool
	minLength               int

	bodyReadTimeout time.Duration

	// fc is the second factor's cookies and paths.
	fc factorCookies
}

// NewHandlers returns the gateway's own endpoints keyed by their configured
// path (cfg.Auth.LoginPath, RegisterPath, LogoutPath, MePath, AccountPath),
// for the proxy to dispatch on the exact clean path; a key ending in "/"
// (MePath + "/", AccountPath + "/") serves everything below it. Every answer
// carries Cache-Control: no-store; unsafe methods are refused with 403
// cross_origin when http.CrossOriginProtection (with
// cfg.CSRF.TrustedOrigins) judges them cross-origin; another method gets
// 405 method_not_allowed with Allow. The handlers read the request's
// credential with package credential's rule, the one the proxy uses, and
// the client address from the credential.Info the proxy put in the
// request's context.
func NewHandlers(cfg *config.Config, svc *Service, opts HandlerOptions) map[string]http.Handler {
	h := &handlers{
		svc:              svc,
		bodyReadTimeout:  opts.bodyReadTimeout,
		logger:           opts.Logger,
		loginPath:        cfg.Auth.LoginPath,
		registerPath:     cfg.Auth.RegisterPath,
		logoutPath:       cfg.Auth.LogoutPath,
		accountPath:      cfg.Auth.AccountPath,
		maxTokenTTL:      time.Duration(cfg.Auth.Tokens.MaxTTL),
		allowedHosts:     append([]string(nil), cfg.Auth.AllowedRedirectHosts...),
		registrationOpen: cfg.Auth.Registration == config.RegistrationOpen,
		minLength:        cfg.Auth.PasswordMinLength,
		cookie:           credential.NewCookie(cfg.Session),
		cookieSecure:     cfg.Session.CookieSecure,
	}
	if h.bodyReadTimeout <= 0 {
		h.bodyReadTimeout = bodyReadTimeout
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	ps, err := loadPages()
	if err != nil {
		// The pages are embedded and covered by tests: failing here is a
		// build defect, not a runtime condition.
		panic("auth: " + err.Error())
	}
	h.pages = ps
	h.fc = newFactorCookies(cfg)

	h.csrf = credential.CrossOrigin(cfg.CSRF.TrustedOrigins, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierror.Write(w, apierror.CrossOrigin)
	}))
	return map[string]http.Handler{
		cfg.Auth.LoginPath:    h.endpoint("GET, HEAD, POST", h.loginPage, h.login),
		cfg.Auth.RegisterPath: h.endpoint("GET, HEAD, POST", h.registerPage, h.register),
		cfg.Auth.LogoutPath:   h.endpoint("POST", nil, h.logout),
		cfg.Auth.MePath:       h.endpoint("GET, HEAD", h.me, nil),
		cfg.Auth.MePath + "/": h.protect(h.meAPI(cfg.Auth.MePath)),
		cfg.Auth.AccountPath:  h.endpoint("GET, HEAD", h.accountPage, nil),
		// The form actions of the account page.
		cfg.Auth.AccountPath + "/": h.protect(h.accountActions(cfg.Auth.AccountPath)),
		// The passkey sign-in (the HTML second step posts to LoginPath),
		// and the pages' one script, public: the sign-in page needs it
		// before there is a session.
		cfg.Auth.LoginPath + "/":               h.protect(h.loginAPI()),
		cfg.Auth.AccountPath + "/gatehouse.js": h.fc.script,
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

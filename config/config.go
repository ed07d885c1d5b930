// Package config owns Gatehouse's configuration file: its types, its
// defaults, strict decoding with line numbers, environment expansion and
// validation. It must never start anything, touch the network or import the
// gateway's other packages; a Config is plain data that constructors elsewhere
// read.
package config

import (
	"crypto/ecdsa"
	"time"
)

// Policy is what a route does with a request: public, authenticated or deny.
type Policy string

// The policies a route or default_policy may name.
const (
	Public        Policy = "public"
	Authenticated Policy = "authenticated"
	Deny          Policy = "deny"
)

// Match is how a route's path is compared: prefix (the default) or exact.
type Match string

// The match modes of a route.
const (
	MatchPrefix Match = "prefix"
	MatchExact  Match = "exact"
)

// Duration is a time.Duration that decodes from Go syntax ("90s", "24h")
// and from a bare 0.
type Duration time.Duration

// Config is the whole configuration file. Zero values are never read by the
// gateway: Load starts from Default() and decodes the file over it.
type Config struct {
	// Listen is the public listener's address. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// AdminListen serves /livez, /readyz and /metrics; "" turns it off.
	// Default 127.0.0.1:9090.
	AdminListen string `yaml:"admin_listen"`
	// ShutdownTimeout bounds the drain of in-flight requests. Default 15s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// TrustedProxies are CIDRs (or single addresses) whose X-Forwarded-*
	// headers are believed. Default none: every client's are replaced.
	TrustedProxies []string `yaml:"trusted_proxies"`

	Redis Redis `yaml:"redis"`

	// Upstreams maps a name to a backend. Required, at least one.
	Upstreams map[string]Upstream `yaml:"upstreams"`
	// Routes are matched top to bottom; the first match wins.
	Routes []Route `yaml:"routes"`
	// DefaultPolicy applies to a request no route matches. Default deny.
	DefaultPolicy Policy `yaml:"default_policy"`

	Auth     Auth     `yaml:"auth"`
	Session  Session  `yaml:"session"`
	Identity Identity `yaml:"identity"`
	CSRF     CSRF     `yaml:"csrf"`

	// File is the path the configuration was loaded from ("" when built in
	// code). It is not a key of the file.
	File string `yaml:"-"`
	// lines maps a field path such as "routes[2].path" to its line in File,
	// for error messages.
	lines map[string]int
}

// Redis selects the session store. With URL, Sentinel and Cluster all
// unset, the gateway runs an embedded in-memory store (development only).
type Redis struct {
	// URL is a redis:// or rediss:// URL. "" with no Sentinel or Cluster
	// means the embedded store.
	URL string `yaml:"url"`
	// URLFile reads URL from a file (it may hold a password).
	URLFile string `yaml:"url_file"`
	// Password overrides the URL's password; PasswordFile reads it from a file.
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// KeyPrefix is put in front of every key. Default "gatehouse:".
	KeyPrefix string `yaml:"key_prefix"`
	// Sentinel selects Redis Sentinel for high availability.
	Sentinel *Sentinel `yaml:"sentinel"`
	// Cluster selects Redis Cluster.
	Cluster *Cluster `yaml:"cluster"`
}

// Sentinel names the master set and the sentinels to ask for it.
type Sentinel struct {
	Master string   `yaml:"master"`
	Addrs  []string `yaml:"addrs"`
	// Password authenticates to the sentinels themselves, if they need it.
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// Cluster lists seed nodes of a Redis Cluster.
type Cluster struct {
	Addrs []string `yaml:"addrs"`
}

// Upstream is a backend. In the file it is either a URL string or a mapping
// with url and the optional fields below.
type Upstream struct {
	// URL is http://, https:// or builtin:echo (an in-process backend that
	// answers with the request it received, as JSON).
	URL string `yaml:"url"`
	// DialTimeout bounds connecting. Default 5s.
	DialTimeout Duration `yaml:"dial_timeout"`
	// ResponseHeaderTimeout bounds the wait for response headers after the
	// request is sent; past it the client gets 504. Default 60s.
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"`
	// CAFile is a PEM bundle to trust for https upstreams instead of the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify turns off certificate checks (never in production).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// Audience is the aud claim of the identity assertion sent to this
	// upstream; "" means the upstream's name.
	Audience string `yaml:"audience"`
}

// BuiltinEcho is the URL of the in-process echo backend.
const BuiltinEcho = "builtin:echo"

// Route is one line of the route table.
type Route struct {
	// Path starts with "/". With MatchPrefix it matches itself and
	// everything below it on a segment boundary.
	Path string `yaml:"path"`
	// Match is prefix (default) or exact.
	Match Match `yaml:"match"`
	// Name labels the route in metrics and logs; default its index.
	Name string `yaml:"name"`
	// Methods limits the route to these methods (case-insensitive; GET
	// covers HEAD). Empty means every method.
	Methods []string `yaml:"methods"`
	// Policy is required.
	Policy Policy `yaml:"policy"`
	// Upstream names an entry of Upstreams; optional where exactly one
	// upstream exists.
	Upstream string `yaml:"upstream"`
	// Groups, only on an authenticated rule: the user must be in at least
	// one of them. Empty means any signed-in user.
	Groups []string `yaml:"groups"`
	// MFA, only on an authenticated rule: "required" means the session
	// must have passed a second factor. "" means a password is enough.
	MFA string `yaml:"mfa"`
}

// MFARequired is the one value of a route's mfa key.
const MFARequired = "required"

// Auth configures the gateway's own endpoints and account rules.
type Auth struct {
	LoginPath    string `yaml:"login_path"`    // default /login
	RegisterPath string `yaml:"register_path"` // default /register
	LogoutPath   string `yaml:"logout_path"`   // default /logout
	MePath       string `yaml:"me_path"`       // default /me
	// VerifyPath is the forward-auth endpoint, matched as a prefix on a
	// segment boundary. Default /_gatehouse/verify.
	VerifyPath string `yaml:"verify_path"`
	// PublicURL is the external base URL of the gateway's own pages, for
	// forward-auth redirects; "" = relative.
	PublicURL string `yaml:"public_url"`
	// AllowedRedirectHosts may be named by an absolute rd besides the
	// request's own host; ".example.com" means its subdomains only.
	AllowedRedirectHosts []string `yaml:"allowed_redirect_hosts"`
	// Registration is "closed" (default) or "open".
	Registration string `yaml:"registration"`
	// AllowedEmailDomains limits registration; empty = any domain.
	AllowedEmailDomains []string `yaml:"allowed_email_domains"`
	// BcryptCost is 4..31; default 12 (4 only for tests).
	BcryptCost int `yaml:"bcrypt_cost"`
	// PasswordMinLength in characters; default 8.
	PasswordMinLength int `yaml:"password_min_length"`
	// MaxLoginFailures per email and client address within
	// LoginFailureWindow; default 10 and 15m.
	MaxLoginFailures   int      `yaml:"max_login_failures"`
	LoginFailureWindow Duration `yaml:"login_failure_window"`
	// MaxRegistrations per client address within LoginFailureWindow;
	// default 100, 0 = no limit.
	MaxRegistrations int `yaml:"max_registrations"`
	// AccountPath is the HTML account page; default /account.
	AccountPath string `yaml:"account_path"`
	// Groups maps a group to its members: normalised emails, or
	// "*@domain" for every address of that domain (not its subdomains).
	// Merged with the groups the operator sets on accounts.
	Groups map[string][]string `yaml:"groups"`
	TOTP   TOTP                `yaml:"totp"`
	// WebAuthn configures passkeys.
	WebAuthn WebAuthn `yaml:"webauthn"`
	Tokens   Tokens   `yaml:"tokens"`
}

// TOTP configures the time-based one-time password second factor.
type TOTP struct {
	// Issuer is shown in the authenticator app. Default Gatehouse.
	Issuer string `yaml:"issuer"`
	// EncryptionKeyFile holds 32 random bytes (raw or base64) under which
	// TOTP secrets are stored AES-256-GCM encrypted. "" with a real Redis
	// turns TOTP off; the embedded store makes an ephemeral key.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	// EncryptionKey is the decoded key of EncryptionKeyFile, filled by
	// Load; nil when no file is set.
	EncryptionKey []byte `yaml:"-"`
}

// WebAuthn configures the relying party of passkeys.
type WebAuthn struct {
	// RPID is the relying party id; "" means the host of auth.public_url,
	// else "localhost".
	RPID string `yaml:"rp_id"`
	// Origins a passkey ceremony may come from; empty means public_url's
	// origin, else the request's own origin.
	Origins []string `yaml:"origins"`
}

// Tokens configures API tokens.
type Tokens struct {
	// MaxTTL is the longest lifetime a token may be given. Default 8760h.
	MaxTTL Duration `yaml:"max_ttl"`
}

// Registration modes.
const (
	RegistrationClosed = "closed"
	RegistrationOpen   = "open"
)

// Session configures the session cookie and lifetimes.
type Session struct {
	CookieName   string `yaml:"cookie_name"`   // default gatehouse_session
	CookieDomain string `yaml:"cookie_domain"` // "" = host-only
	CookieSecure bool   `yaml:"cookie_secure"` // default true
	// CookieSameSite is lax (default) or strict.
	CookieSameSite string `yaml:"cookie_same_site"`
	// TTL is the absolute lifetime of a session. Default 336h.
	TTL Duration `yaml:"ttl"`
	// IdleTimeout ends a session unused this long; 0 = no idle limit.
	// Default 24h.
	IdleTimeout Duration `yaml:"idle_timeout"`
}

// Identity names the headers that carry the user to the upstream.
type Identity struct {
	UserIDHeader string `yaml:"user_id_header"` // default X-User-Id
	EmailHeader  string `yaml:"email_header"`   // default X-User-Email; "" = not sent
	// GroupsHeader carries the user's groups, sorted and comma-separated;
	// default X-User-Groups, "" = not sent.
	GroupsHeader string    `yaml:"groups_header"`
	Assertion    Assertion `yaml:"assertion"`
}

// Assertion configures the signed identity assertion (an ES256 JWT) sent
// to upstreams beside the identity headers.
type Assertion struct {
	// Header carries the assertion; "" = no assertion.
	Header string `yaml:"header"`
	// KeyFiles are PEM EC P-256 private keys: the first signs, all are
	// published at /.well-known/jwks.json. Empty means an ephemeral key
	// per process.
	KeyFiles []string `yaml:"key_files"`
	// Issuer is the iss claim; "" means auth.public_url, else "gatehouse".
	Issuer string `yaml:"issuer"`
	// TTL is the assertion's lifetime, 10s..10m. Default 60s.
	TTL Duration `yaml:"ttl"`
	// Keys are the parsed KeyFiles, in order, filled by Load.
	Keys []*ecdsa.PrivateKey `yaml:"-"`
}

// CSRF configures cross-origin protection.
type CSRF struct {
	// ProtectUpstream refuses cross-origin unsafe requests that carry the
	// session cookie on proxied routes too. Default true.
	ProtectUpstream bool `yaml:"protect_upstream"`
	// TrustedOrigins are allowed besides the request's own
	// ("https://app.example.com").
	TrustedOrigins []string `yaml:"trusted_origins"`
}

// Default returns the configuration of the documented defaults, without
// upstreams (which a file must name).
func Default() *Config {
	return &Config{
		Listen:          "127.0.0.1:8080",
		AdminListen:     "127.0.0.1:9090",
		ShutdownTimeout: Duration(15 * time.Second),
		Redis:           Redis{KeyPrefix: "gatehouse:"},
		DefaultPolicy:   Deny,
		Auth: Auth{
			LoginPath:          "/login",
			RegisterPath:       "/register",
			LogoutPath:         "/logout",
			MePath:             "/me",
			VerifyPath:         "/_gatehouse/verify",
			Registration:       RegistrationClosed,
			BcryptCost:         12,
			PasswordMinLength:  8,
			MaxLoginFailures:   10,
			LoginFailureWindow: Duration(15 * time.Minute),
			MaxRegistrations:   100,
			AccountPath:        "/account",
			TOTP:               TOTP{Issuer: "Gatehouse"},
			Tokens:             Tokens{MaxTTL: Duration(8760 * time.Hour)},
		},
		Session: Session{
			CookieName:     "gatehouse_session",
			CookieSecure:   true,
			CookieSameSite: "lax",
			TTL:            Duration(336 * time.Hour),
			IdleTimeout:    Duration(24 * time.Hour),
		},
		Identity: Identity{UserIDHeader: "X-User-Id", EmailHeader: "X-User-Email", GroupsHeader: "X-User-Groups",
			Assertion: Assertion{TTL: Duration(60 * time.Second)}},
		CSRF: CSRF{ProtectUpstream: true},
	}
}

// Upstream defaults, applied by Load to every upstream that leaves them 0.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
)

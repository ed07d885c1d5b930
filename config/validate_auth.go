package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

func (c *Config) validateAuth(v *collector) {
	a := c.Auth
	paths := []struct{ key, path string }{
		{"auth.login_path", a.LoginPath},
		{"auth.register_path", a.RegisterPath},
		{"auth.logout_path", a.LogoutPath},
		{"auth.me_path", a.MePath},
		{"auth.account_path", a.AccountPath},
		{"auth.verify_path", a.VerifyPath},
	}
	verifyOK := checkPath(a.VerifyPath) == ""
	for i, p := range paths {
		if msg := checkPath(p.path); msg != "" {
			v.add(p.key, "%s", msg)
			continue
		}
		// The key set is answered before the gateway's other paths: a
		// page there would never be reached.
		if p.path == jwksPath {
			v.add(p.key, "%s is where the assertion's public keys are published", jwksPath)
			continue
		}
		dup := false
		for _, q := range paths[:i] {
			if q.path == p.path {
				v.at(c.lineOfEither(p.key, q.key), p.key, "same as %s", q.key)
				dup = true
				break
			}
		}
		// Equal to verify_path is reported above, as verify_path's problem.
		if !dup && i < len(paths)-1 && verifyOK && p.path != a.VerifyPath && UnderPath(p.path, a.VerifyPath) {
			v.at(c.lineOfEither(p.key, "auth.verify_path"), p.key, "must not be under auth.verify_path")
		}
	}
	if a.PublicURL != "" {
		u, err := url.Parse(a.PublicURL)
		switch {
		case err != nil:
			v.add("auth.public_url", "is not a valid URL")
		case u.Scheme != "http" && u.Scheme != "https":
			v.add("auth.public_url", "must be an absolute http:// or https:// URL")
		case u.Host == "" || u.Hostname() == "":
			v.add("auth.public_url", "needs a host")
		case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
			v.add("auth.public_url", "must not have a query or fragment")
		case u.User != nil:
			v.add("auth.public_url", "must not hold credentials")
		}
	}
	for i, h := range a.AllowedRedirectHosts {
		bare := strings.TrimPrefix(h, ".")
		_, ipErr := netip.ParseAddr(bare)
		if !(isDomain(bare) || ipErr == nil && bare == h) {
			v.add(fmt.Sprintf("auth.allowed_redirect_hosts[%d]", i), "%q is not a host name (app.example.com, or .example.com for its subdomains)", h)
		}
	}
	switch a.Registration {
	case RegistrationClosed, RegistrationOpen:
	default:
		v.add("auth.registration", "must be closed or open, not %q", a.Registration)
	}
	for i, d := range a.AllowedEmailDomains {
		if !isDomain(d) {
			v.add(fmt.Sprintf("auth.allowed_email_domains[%d]", i), "%q is not a domain such as example.com", d)
		}
	}
	if a.BcryptCost < 4 || a.BcryptCost > 31 {
		v.add("auth.bcrypt_cost", "must be between 4 and 31, not %d", a.BcryptCost)
	}
	if a.PasswordMinLength < 1 || a.PasswordMinLength > 72 {
		v.add("auth.password_min_length", "must be between 1 and 72 (bcrypt's limit), not %d", a.PasswordMinLength)
	}
	if a.MaxLoginFailures < 1 {
		v.add("auth.max_login_failures", "must be at least 1, not %d", a.MaxLoginFailures)
	}
	// The throttle's window is a Redis PEXPIRE; below a second it would
	// throttle nothing an attacker cannot outwait between two requests.
	if a.LoginFailureWindow < Duration(time.Second) {
		v.add("auth.login_failure_window", "must be at least 1s")
	}
	if a.MaxRegistrations < 0 {
		v.add("auth.max_registrations", "must not be negative (0 = no limit), not %d", a.MaxRegistrations)
	}
}

func (c *Config) validateSession(v *collector) {
	s := c.Session
	switch {
	case !IsToken(s.CookieName):
		v.add("session.cookie_name", "%q is not a valid cookie name", s.CookieName)
	case strings.HasPrefix(s.CookieName, "__Host-") && (!s.CookieSecure || s.CookieDomain != ""):
		// Browsers drop a __Host- cookie that lacks Secure or has a Domain.
		v.add("session.cookie_name", "a __Host- cookie needs cookie_secure: true and no cookie_domain")
	case strings.HasPrefix(s.CookieName, "__Secure-") && !s.CookieSecure:
		v.add("session.cookie_name", "a __Secure- cookie needs cookie_secure: true")
	}
	if s.CookieDomain != "" && !isDomain(strings.TrimPrefix(s.CookieDomain, ".")) {
		v.add("session.cookie_domain", "%q is not a domain such as example.com", s.CookieDomain)
	}
	switch s.CookieSameSite {
	case "lax", "strict":
	default:
		v.add("session.cookie_same_site", "must be lax or strict, not %q", s.CookieSameSite)
	}
	// A token carries its absolute end in whole seconds, rounded down: a
	// ttl of at least 2s leaves every new session at least 1s.
	if s.TTL < Duration(minSessionTTL) {
		v.add("session.ttl", "must be at least %s (a session token carries its end in whole seconds)", minSessionTTL)
	}
	switch {
	case s.IdleTimeout < 0:
		v.add("session.idle_timeout", "must not be negative")
	case s.IdleTimeout > 0 && s.IdleTimeout < Duration(time.Second):
		// The store counts the idle timer in whole milliseconds; below one
		// every login would fail, and below a second a page would outlive
		// its session before its assets load.
		v.add("session.idle_timeout", "must be 0 (no idle limit) or at least 1s")
	}
	// An idle timeout at or above the ttl is never an error: the ttl then
	// alone decides ("ttl: 8h" with the default 24h idle timeout).
}

func (c *Config) validateIdentity(v *collector) {
	id := c.Identity
	if id.UserIDHeader == "" {
		v.add("identity.user_id_header", "required")
	}
	// Every identity header must be a valid name, and no two may fold
	// alike: PHP, CGI and WSGI backends read X_User_Id as X-User-Id, so two
	// names that fold alike are one variable upstream.
	headers := []struct{ key, name string }{
		{"identity.user_id_header", id.UserIDHeader},
		{"identity.email_header", id.EmailHeader},
		{"identity.groups_header", id.GroupsHeader},
		{"identity.assertion.header", id.Assertion.Header},
	}
	for i, h := range headers {
		if h.name == "" {
			continue
		}
		if msg := checkIdentityHeader(h.name); msg != "" {
			v.add(h.key, "%s", msg)
			continue
		}
		collides := false
		for _, o := range headers[:i] {
			if o.name != "" && checkIdentityHeader(o.name) == "" && foldHeaderName(o.name) == foldHeaderName(h.name) {
				v.add(h.key, "must differ from %s", o.key)
				collides = true
				break
			}
		}
		// The groups and the assertion are not who the user is: under a
		// name that upstreams read as the user or email (a default, or
		// what oauth2-proxy, Authelia or Grafana send), an app would take
		// "admins" or a JWT for the user.
		if !collides && i >= 2 && userHeaders[foldHeaderName(h.name)] {
			v.add(h.key, "%q is an identity header that upstreams read as the user or email; choose another name", h.name)
		}
	}
}

// userHeaders are the folded names of the user and email identity headers
// the proxy always strips from clients besides the configured ones.
var userHeaders = map[string]bool{
	"xuserid": true, "xuseremail": true, "remoteuser": true, "xremoteuser": true,
	"xforwardeduser": true, "xforwardedemail": true, "xforwardedpreferredusername": true,
	"xauthrequestuser": true, "xauthrequestemail": true, "xauthrequestpreferredusername": true,
	"remoteemail": true, "remotename": true, "xwebauthuser": true, "xwebauthemail": true,
}

// jwksPath is the path of the published key set (assertion.JWKSPath in
// package proxy/assertion, which config may not import).
const jwksPath = "/.well-known/jwks.json"

// MaxFoldedHeaderName is the longest identity header name, counted
// without '-', '_' and '.': the proxy compares every client header with
// the identity names in that folded form, in a fixed buffer of this size,
// and check refuses a longer configured name.
const MaxFoldedHeaderName = 96

// minSessionTTL is the shortest session.ttl (see validateSession).
const minSessionTTL = 2 * time.Second

// checkIdentityHeader returns what is wrong with an identity header name,
// or "".
func checkIdentityHeader(name string) string {
	var buf [MaxFoldedHeaderName]byte
	switch f, ok := AppendFoldedHeaderName(buf[:0], name); {
	case !IsToken(name):
		return fmt.Sprintf("%q is not a valid header name", name)
	case !ok:
		return fmt.Sprintf(`must not be longer than %d characters, not counting "-", "_" and "."`, MaxFoldedHeaderName)
	case len(f) == 0:
		// It would fold to nothing, so no client copy could be recognised.
		return fmt.Sprintf(`%q needs a character other than "-", "_" and "."`, name)
	case reservedHeaders[string(f)]:
		// The proxy strips a client's copies of an identity header and
		// sets its own: as Cookie it would drop the app's cookies, as Host
		// or Content-Length it would break the request itself.
		return fmt.Sprintf("%q is a header that HTTP or the gateway itself needs; choose another name", name)
	}
	return ""
}

// reservedHeaders are the folded names no identity header may take: the
// request's framing, routing and credentials, and the forwarding headers
// the gateway writes.
var reservedHeaders = map[string]bool{
	"host": true, "cookie": true, "authorization": true, "proxyauthorization": true,
	"contentlength": true, "contenttype": true, "transferencoding": true, "connection": true,
	"keepalive": true, "te": true, "trailer": true, "upgrade": true, "proxyconnection": true,
	"forwarded": true, "xforwardedfor": true, "xforwardedhost": true, "xforwardedproto": true,
	"xrealip": true,
}

// AppendFoldedHeaderName appends name lower-cased and without '-', '_'
// and '.' to dst, the form in which header names are compared with the
// identity headers (PHP, CGI and WSGI backends read X_User_Id as
// X-User-Id). ok is false when the result would exceed
// MaxFoldedHeaderName. It does not allocate when dst has that capacity.
func AppendFoldedHeaderName(dst []byte, name string) (_ []byte, ok bool) {
	n := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-' || c == '_' || c == '.':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if n == MaxFoldedHeaderName {
			return dst, false
		}
		dst = append(dst, c)
		n++
	}
	return dst, true
}

// foldHeaderName is AppendFoldedHeaderName as a string ("" when too long).
func foldHeaderName(name string) string {
	var buf [MaxFoldedHeaderName]byte
	f, ok := AppendFoldedHeaderName(buf[:0], name)
	if !ok {
		return ""
	}
	return string(f)
}

func (c *Config) validateCSRF(v *collector) {
	for i, o := range c.CSRF.TrustedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" ||
			u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" ||
			(u.Port() != "" && checkPort(u.Port()) != "") {
			v.add(fmt.Sprintf("csrf.trusted_origins[%d]", i), "%q is not an origin such as https://app.example.com", o)
		}
	}
}

package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Validate checks every field and returns a Problems listing all that is
// wrong, each at its line when the configuration came from a file, or nil.
// It has no side effects: it reads no file, resolves no name and changes
// nothing in c.
func (c *Config) Validate() error {
	v := &collector{file: c.File, lines: c.lines}
	c.validateServer(v)
	c.validateRedis(v)
	c.validateUpstreams(v)
	c.validateRoutes(v)
	c.validateAuth(v)
	c.validateSession(v)
	c.validateIdentity(v)
	c.validateCSRF(v)
	return v.err()
}

func (c *Config) validateServer(v *collector) {
	if msg := checkHostPort(c.Listen); msg != "" {
		v.add("listen", "%s", msg)
	}
	if c.AdminListen != "" {
		if msg := checkHostPort(c.AdminListen); msg != "" {
			v.add("admin_listen", "%s", msg)
		} else if c.AdminListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			// Port 0 asks the kernel for a free port, so two ":0" differ.
			v.add("admin_listen", "must differ from listen")
		}
	}
	if c.ShutdownTimeout < 0 {
		v.add("shutdown_timeout", "must not be negative")
	}
	for i, p := range c.TrustedProxies {
		if _, ok := parsePrefix(p); !ok {
			v.add(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not a CIDR (10.0.0.0/8) or an IP address", p)
		}
	}
}

func (c *Config) validateRedis(v *collector) {
	r := c.Redis
	n := 0
	for _, set := range []bool{r.URL != "", r.Sentinel != nil, r.Cluster != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		v.add("redis", "set at most one of url, sentinel and cluster")
	}
	if r.URL != "" {
		// The URL may hold a password: no message repeats it.
		u, err := url.Parse(r.URL)
		switch {
		case err != nil:
			v.add("redis.url", "is not a valid URL")
		case u.Scheme != "redis" && u.Scheme != "rediss":
			v.add("redis.url", "scheme must be redis or rediss")
		case u.Host == "" || u.Hostname() == "":
			v.add("redis.url", "needs a host")
		case u.Port() != "" && checkPort(u.Port()) != "":
			v.add("redis.url", "invalid port")
		case !validRedisDB(u.Path):
			v.add("redis.url", "path must be empty or a database number such as /0")
		}
	}
	if s := r.Sentinel; s != nil {
		if s.Master == "" {
			v.add("redis.sentinel.master", "required")
		}
		addrs(v, "redis.sentinel.addrs", s.Addrs)
	}
	if cl := r.Cluster; cl != nil {
		addrs(v, "redis.cluster.addrs", cl.Addrs)
	}
	if r.Password != "" && n == 0 {
		v.add("redis.password", "set, but no redis url, sentinel or cluster is configured (the embedded store has no password)")
	}
	if r.KeyPrefix == "" {
		v.add("redis.key_prefix", "must not be empty")
	} else if strings.ContainsAny(r.KeyPrefix, "{}") {
		// The store puts one user's keys in one Cluster slot with a {hash
		// tag}; braces in the prefix would become the tag instead.
		v.add("redis.key_prefix", "must not contain { or }")
	}
}

func validRedisDB(p string) bool {
	if p == "" || p == "/" {
		return true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(p, "/"))
	return err == nil && n >= 0 && strings.HasPrefix(p, "/")
}

func addrs(v *collector, path string, list []string) {
	if len(list) == 0 {
		v.add(path, "needs at least one host:port")
	}
	for i, a := range list {
		if msg := checkHostPort(a); msg != "" {
			v.add(fmt.Sprintf("%s[%d]", path, i), "%s", msg)
		} else if h, _, _ := net.SplitHostPort(a); h == "" {
			v.add(fmt.Sprintf("%s[%d]", path, i), "needs a host")
		}
	}
}

func (c *Config) validateUpstreams(v *collector) {
	if len(c.Upstreams) == 0 {
		v.add("upstreams", "required: at least one upstream")
		return
	}
	for _, name := range c.upstreamNames() {
		u := c.Upstreams[name]
		p := "upstreams." + name
		if u.DialTimeout < 0 {
			v.add(p+".dial_timeout", "must not be negative")
		}
		if u.ResponseHeaderTimeout < 0 {
			v.add(p+".response_header_timeout", "must not be negative")
		}
		if u.URL == BuiltinEcho {
			if u.CAFile != "" {
				v.add(p+".ca_file", "only for https upstreams")
			}
			continue
		}
		if u.URL == "" {
			v.add(p+".url", "required")
			continue
		}
		pu, err := url.Parse(u.URL)
		switch {
		case err != nil:
			v.add(p+".url", "is not a valid URL")
			continue
		case pu.Scheme != "http" && pu.Scheme != "https":
			v.add(p+".url", "must be an http:// or https:// URL, or %s", BuiltinEcho)
			continue
		case pu.Host == "" || pu.Hostname() == "":
			v.add(p+".url", "needs a host")
		case pu.Port() != "" && checkPort(pu.Port()) != "":
			v.add(p+".url", "invalid port")
		case pu.User != nil:
			v.add(p+".url", "must not hold credentials (they would not be sent)")
		case pu.Fragment != "":
			v.add(p+".url", "must not have a fragment")
		}
		if u.CAFile != "" && pu.Scheme != "https" {
			v.add(p+".ca_file", "only for https upstreams")
		} else if u.CAFile != "" && u.InsecureSkipVerify {
			v.add(p+".ca_file", "has no effect with insecure_skip_verify: true")
		}
	}
}

func (c *Config) validateRoutes(v *collector) {
	names := map[string]int{}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if r.Path == "" {
			v.add(p+".path", "required")
		} else if msg := checkPath(r.Path); msg != "" {
			v.add(p+".path", "%s", msg)
		}
		switch r.Match {
		case "", MatchPrefix, MatchExact:
		default:
			v.add(p+".match", "must be prefix or exact, not %q", r.Match)
		}
		switch r.Policy {
		case Public, Authenticated, Deny:
		case "":
			v.add(p+".policy", "required: public, authenticated or deny")
		default:
			v.add(p+".policy", "must be public, authenticated or deny, not %q", r.Policy)
		}
		for j, m := range r.Methods {
			if !IsToken(m) {
				v.add(fmt.Sprintf("%s.methods[%d]", p, j), "%q is not a valid HTTP method", m)
			}
		}
		switch {
		case r.Upstream != "":
			if _, ok := c.Upstreams[r.Upstream]; !ok {
				v.add(p+".upstream", "unknown upstream %q", r.Upstream)
			}
		case r.Policy != Deny && len(c.Upstreams) > 1:
			v.add(p+".upstream", "required when several upstreams exist")
		}
		if r.Name != "" {
			if first, dup := names[r.Name]; dup {
				v.add(p+".name", "duplicate name %q (also routes[%d])", r.Name, first)
			} else {
				names[r.Name] = i
			}
		}
	}
	switch c.DefaultPolicy {
	case Public, Authenticated, Deny:
	default:
		v.add("default_policy", "must be public, authenticated or deny, not %q", c.DefaultPolicy)
	}
}

func (c *Config) validateAuth(v *collector) {
	a := c.Auth
	paths := []struct{ key, path string }{
		{"auth.login_path", a.LoginPath},
		{"auth.register_path", a.RegisterPath},
		{"auth.logout_path", a.LogoutPath},
		{"auth.me_path", a.MePath},
		{"auth.verify_path", a.VerifyPath},
	}
	verifyOK := checkPath(a.VerifyPath) == ""
	for i, p := range paths {
		if msg := checkPath(p.path); msg != "" {
			v.add(p.key, "%s", msg)
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
		if !dup && i < len(paths)-1 && verifyOK && p.path != a.VerifyPath && underPath(p.path, a.VerifyPath) {
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
	if a.LoginFailureWindow <= 0 {
		v.add("auth.login_failure_window", "must be greater than 0")
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
	if s.TTL <= 0 {
		v.add("session.ttl", "must be greater than 0")
	}
	switch {
	case s.IdleTimeout < 0:
		v.add("session.idle_timeout", "must not be negative")
	case s.TTL > 0 && s.IdleTimeout > s.TTL && c.idleTimeoutChosen():
		v.add("session.idle_timeout", "must not exceed session.ttl (%s)", s.TTL)
	}
}

// idleTimeoutChosen reports whether session.idle_timeout was set rather
// than left at its default. A ttl below the default idle timeout ("ttl: 1h")
// is a natural setting in which the absolute end simply comes first; only an
// idle timeout someone wrote above the ttl is a mistake worth refusing.
func (c *Config) idleTimeoutChosen() bool {
	if _, ok := c.lines["session.idle_timeout"]; ok {
		return true
	}
	return c.Session.IdleTimeout != Default().Session.IdleTimeout
}

func (c *Config) validateIdentity(v *collector) {
	id := c.Identity
	if id.UserIDHeader == "" {
		v.add("identity.user_id_header", "required")
	} else if !IsToken(id.UserIDHeader) {
		v.add("identity.user_id_header", "%q is not a valid header name", id.UserIDHeader)
	}
	if id.EmailHeader != "" {
		if !IsToken(id.EmailHeader) {
			v.add("identity.email_header", "%q is not a valid header name", id.EmailHeader)
		} else if strings.EqualFold(id.EmailHeader, id.UserIDHeader) {
			v.add("identity.email_header", "must differ from identity.user_id_header")
		}
	}
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

// lineOfEither returns the line of key a if the file sets it, else of key b
// if the file sets that, else a's parent's: a clash between a default and
// a key in the file is shown at the key in the file.
func (c *Config) lineOfEither(a, b string) int {
	if l, ok := c.lines[a]; ok {
		return l
	}
	if l, ok := c.lines[b]; ok {
		return l
	}
	return lineOf(c.lines, a)
}

// checkHostPort returns what is wrong with a host:port listen or dial
// address, or "".
func checkHostPort(s string) string {
	if s == "" {
		return "required: host:port"
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", s)
	}
	return checkPort(port)
}

func checkPort(p string) string {
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 || p == "" || p[0] == '+' || p[0] == '-' {
		return fmt.Sprintf("port %q must be a number between 0 and 65535", p)
	}
	return ""
}

// checkPath returns what is wrong with a configured path (a route or one of
// the gateway's own), or "". Configured paths must already be in the clean
// form the path check produces, or they could never match.
func checkPath(p string) string {
	switch {
	case p == "":
		return "required"
	case p[0] != '/':
		return `must start with "/"`
	case !utf8.ValidString(p):
		return "must be valid UTF-8"
	case strings.Contains(p, "//"):
		return `must not contain "//"`
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "must not contain control characters"
		}
	}
	for _, bad := range []string{"%", `\`, ";", "#"} {
		if strings.Contains(p, bad) {
			return fmt.Sprintf("must not contain %q", bad)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return `must not contain "." or ".." segments`
		}
	}
	return ""
}

// underPath reports whether p is base or below it on a segment boundary.
func underPath(p, base string) bool {
	if p == base {
		return true
	}
	if strings.HasSuffix(base, "/") {
		return strings.HasPrefix(p, base)
	}
	return strings.HasPrefix(p, base+"/")
}

// IsToken reports whether s is a non-empty RFC 9110 token (the syntax of
// methods, header names and cookie names).
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isDomain reports whether s is a DNS name of letters, digits and hyphens
// (any case), without a trailing dot, and not an IP address.
func isDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	// An all-digit last label would make 10.0.0.1 a "domain".
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}

// parsePrefix parses a CIDR or a single address (as a full-length prefix).
func parsePrefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// String formats d in Go syntax ("15m0s").
func (d Duration) String() string { return time.Duration(d).String() }

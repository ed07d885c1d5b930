package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// groupName is what a group may be called: short, lower-case, and safe in
// the comma-separated groups header and in a JWT claim.
var groupName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidGroupName reports whether g may name a group.
func ValidGroupName(g string) bool { return groupName.MatchString(g) }

// Limits of the assertion's lifetime: long enough to survive clock skew
// and a slow upstream, short enough that a leaked one soon expires.
const (
	minAssertionTTL = 10 * time.Second
	maxAssertionTTL = 10 * time.Minute
)

// validateAccess checks what decides who may pass beyond "signed in": the
// routes' groups and mfa, and auth.groups.
func (c *Config) validateAccess(v *collector) {
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if len(r.Groups) > 0 && r.Policy != Authenticated {
			v.add(p+".groups", "only for policy: authenticated")
		}
		for j, g := range r.Groups {
			if !ValidGroupName(g) {
				v.add(fmt.Sprintf("%s.groups[%d]", p, j), "%q is not a group name (lower-case letters, digits, '.', '_', '-'; at most 64)", g)
			}
		}
		switch {
		case r.MFA == "":
		case r.MFA != MFARequired:
			v.add(p+".mfa", "must be required, not %q", r.MFA)
		case r.Policy != Authenticated:
			v.add(p+".mfa", "only for policy: authenticated")
		}
	}
	for _, g := range sortedKeys(c.Auth.Groups) {
		p := "auth.groups." + g
		if !ValidGroupName(g) {
			v.add(p, "%q is not a group name (lower-case letters, digits, '.', '_', '-'; at most 64)", g)
		}
		for j, m := range c.Auth.Groups[g] {
			if msg := checkGroupMember(m); msg != "" {
				v.add(fmt.Sprintf("%s[%d]", p, j), "%s", msg)
			}
		}
	}
}

// checkGroupMember returns what is wrong with an auth.groups entry: an
// email address, or "*@domain".
func checkGroupMember(m string) string {
	local, domain, ok := strings.Cut(m, "@")
	switch {
	case !ok || local == "" || strings.Contains(domain, "@"):
		return fmt.Sprintf("%q is not an email address or *@domain", m)
	case strings.Contains(local, "*") && local != "*":
		return fmt.Sprintf("%q: only a whole local part may be *, as in *@example.com", m)
	case domain != "localhost" && !isDomain(asciiDomain(domain)):
		return fmt.Sprintf("%q: %q is not a domain", m, domain)
	}
	return ""
}

// asciiDomain returns domain lower-cased and, when it is not ASCII, in
// its IDNA A-label form, as account emails store it ("bücher.example"
// is "xn--bcher-kva.example"), or "" when it has none.
func asciiDomain(domain string) string {
	for i := 0; i < len(domain); i++ {
		if domain[i] >= utf8.RuneSelf {
			a, err := idna.Lookup.ToASCII(domain)
			if err != nil {
				return ""
			}
			return a
		}
	}
	return strings.ToLower(domain)
}

// sortedKeys returns m's keys in order, for a stable order of problems.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// validateAccount checks the keys of the account page, the second factor
// and API tokens.
func (c *Config) validateAccount(v *collector) {
	a := c.Auth
	if a.TOTP.Issuer == "" {
		v.add("auth.totp.issuer", "required")
	} else if strings.ContainsAny(a.TOTP.Issuer, ":\x00\r\n") {
		// The otpauth label is ISSUER:EMAIL.
		v.add("auth.totp.issuer", "must not contain ':' or control characters")
	}
	if a.WebAuthn.RPID != "" {
		if _, err := netip.ParseAddr(a.WebAuthn.RPID); err == nil {
			v.add("auth.webauthn.rp_id", "must be a host name: browsers refuse WebAuthn on an IP address")
		} else if a.WebAuthn.RPID != "localhost" && !isDomain(a.WebAuthn.RPID) {
			v.add("auth.webauthn.rp_id", "%q is not a host name", a.WebAuthn.RPID)
		}
	}
	rpID := c.RPID()
	for i, o := range a.WebAuthn.Origins {
		p := fmt.Sprintf("auth.webauthn.origins[%d]", i)
		u, ok := parseOrigin(o)
		switch {
		case !ok:
			v.add(p, "%q is not an origin such as https://app.example.com", o)
		case !hostUnder(u.Hostname(), rpID):
			v.add(p, "host %q is not auth.webauthn.rp_id %q or under it", u.Hostname(), rpID)
		}
	}
	if a.Tokens.MaxTTL < Duration(time.Second) {
		v.add("auth.tokens.max_ttl", "must be at least 1s")
	}
}

// RPID is the WebAuthn relying party id in force: auth.webauthn.rp_id,
// else the host of auth.public_url (lower-cased) unless that is an IP
// address (browsers refuse WebAuthn there), else "localhost". It is the one
// place this default is computed; serve builds its relying party from it.
func (c *Config) RPID() string {
	if c.Auth.WebAuthn.RPID != "" {
		return strings.ToLower(c.Auth.WebAuthn.RPID)
	}
	if h := publicHost(c.Auth.PublicURL); h != "" {
		if _, err := netip.ParseAddr(h); err != nil {
			return h
		}
	}
	return "localhost"
}

// WebAuthnOrigins are the origins passkey answers are accepted from:
// auth.webauthn.origins, else auth.public_url's origin when its host is
// RPID or under it, else none, which means each ceremony's own request
// origin (then checked to be under RPID when the ceremony begins).
func (c *Config) WebAuthnOrigins() []string {
	if len(c.Auth.WebAuthn.Origins) > 0 {
		out := make([]string, len(c.Auth.WebAuthn.Origins))
		for i, o := range c.Auth.WebAuthn.Origins {
			out[i] = strings.ToLower(strings.TrimSuffix(o, "/"))
		}
		return out
	}
	u, err := url.Parse(c.Auth.PublicURL)
	if err != nil || c.Auth.PublicURL == "" || u.Hostname() == "" || !hostUnder(u.Hostname(), c.RPID()) {
		return nil
	}
	return []string{strings.ToLower(u.Scheme + "://" + u.Host)}
}

// publicHost is the lower-cased host of public_url, or "".
func publicHost(publicURL string) string {
	if publicURL == "" {
		return ""
	}
	u, err := url.Parse(publicURL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// parseOrigin parses scheme://host[:port] with nothing after it.
func parseOrigin(o string) (*url.URL, bool) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" ||
		u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" ||
		(u.Port() != "" && checkPort(u.Port()) != "") {
		return nil, false
	}
	return u, true
}

// hostUnder reports whether host is domain or one of its subdomains.
func hostUnder(host, domain string) bool {
	host, domain = strings.ToLower(host), strings.ToLower(domain)
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// validateAssertion checks identity.assertion (its key files were read and
// checked while loading). key_files without a header is allowed: the keys
// are then published before anything is signed with them, so upstreams can
// be set up ahead of turning the assertion on.
func (c *Config) validateAssertion(v *collector) {
	a := c.Identity.Assertion
	if a.TTL < Duration(minAssertionTTL) || a.TTL > Duration(maxAssertionTTL) {
		v.add("identity.assertion.ttl", "must be between %s and %s", minAssertionTTL, maxAssertionTTL)
	}
}

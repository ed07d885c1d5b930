package config

import (
	"fmt"
	"net/url"
	"strings"
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
	c.validateAccess(v)
	c.validateAccount(v)
	c.validateSession(v)
	c.validateIdentity(v)
	c.validateAssertion(v)
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
		case pu.Path != "" && pu.Path != "/":
			// A base path would make the upstream see another path than
			// the one the route table matched (and the path check cleaned).
			v.add(p+".url", "must not have a path: the upstream receives exactly the path that was matched")
		case pu.RawQuery != "" || pu.ForceQuery:
			v.add(p+".url", "must not have a query")
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
	case Deny:
	case Public, Authenticated:
		// A request no route matches names no upstream: it can only go to
		// the single one. (With none, upstreams says so already.)
		if len(c.Upstreams) > 1 {
			v.add("default_policy", "%s needs exactly one upstream (an unmatched request names none); use deny, or a last route for \"/\" with its upstream", c.DefaultPolicy)
		}
	default:
		v.add("default_policy", "must be public, authenticated or deny, not %q", c.DefaultPolicy)
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

package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// upstreamNames returns the upstream names sorted, for stable output.
func (c *Config) upstreamNames() []string {
	names := make([]string, 0, len(c.Upstreams))
	for n := range c.Upstreams {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// UpstreamFor returns the upstream name route i uses: its own upstream, or
// the only upstream when it names none. It returns "" for a deny route
// without an upstream, for an index out of range, and for a route that
// Validate would refuse.
func (c *Config) UpstreamFor(i int) string {
	if i < 0 || i >= len(c.Routes) {
		return ""
	}
	r := c.Routes[i]
	if r.Upstream != "" {
		return r.Upstream
	}
	if r.Policy == Deny || len(c.Upstreams) != 1 {
		return ""
	}
	for name := range c.Upstreams {
		return name
	}
	return ""
}

// MatchMode returns r.Match, with "" meaning MatchPrefix (Load fills it in,
// but a Route built in code may leave it empty).
func (r Route) MatchMode() Match {
	if r.Match == "" {
		return MatchPrefix
	}
	return r.Match
}

// UpperMethods returns r.Methods upper-cased, without duplicates, in their
// order; nil means every method. It allocates: call it once when building a
// route table, not per request.
func (r Route) UpperMethods() []string {
	if len(r.Methods) == 0 {
		return nil
	}
	out := make([]string, 0, len(r.Methods))
	for _, m := range r.Methods {
		m = strings.ToUpper(m)
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// Embedded reports whether the in-process development store is used: no url,
// sentinel or cluster.
func (r Redis) Embedded() bool {
	return r.URL == "" && r.Sentinel == nil && r.Cluster == nil
}

// RedisDescription describes the session store for logs and `gatehouse
// check`, never showing a password: the URL's password is replaced with
// "xxxxx" and configured passwords are only said to be set.
func (c *Config) RedisDescription() string {
	r := c.Redis
	var b strings.Builder
	switch {
	case r.URL != "":
		b.WriteString("redis " + redactURL(r.URL))
	case r.Sentinel != nil:
		fmt.Fprintf(&b, "redis sentinel master %q via %s", r.Sentinel.Master, strings.Join(r.Sentinel.Addrs, ","))
		if r.Sentinel.Password != "" {
			b.WriteString(" (sentinel password set)")
		}
	case r.Cluster != nil:
		fmt.Fprintf(&b, "redis cluster via %s", strings.Join(r.Cluster.Addrs, ","))
	default:
		return fmt.Sprintf("embedded in-memory store (development only: data is lost at exit), key prefix %q", r.KeyPrefix)
	}
	if r.Password != "" {
		b.WriteString(" (password set)")
	}
	fmt.Fprintf(&b, ", key prefix %q", r.KeyPrefix)
	return b.String()
}

// redactURL hides a URL's password (and an unparsable URL entirely, since
// it may hold one).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}

// Summary describes the configuration for `gatehouse check`: listeners,
// store, upstreams with their URLs (passwords redacted) and one line per
// route (index, name, match, path, methods, policy, upstream), ending with
// a newline.
func (c *Config) Summary() string {
	var b strings.Builder
	admin := c.AdminListen
	if admin == "" {
		admin = "off"
	}
	fmt.Fprintf(&b, "listen %s, admin %s\n", c.Listen, admin)
	fmt.Fprintf(&b, "store: %s\n", c.RedisDescription())
	fmt.Fprintf(&b, "upstreams:\n")
	for _, name := range c.upstreamNames() {
		u := c.Upstreams[name]
		fmt.Fprintf(&b, "  %s: %s", name, redactURL(u.URL))
		if u.URL != BuiltinEcho {
			fmt.Fprintf(&b, " (dial %s, response headers %s", u.DialTimeout, u.ResponseHeaderTimeout)
			if u.CAFile != "" {
				fmt.Fprintf(&b, ", ca %s", u.CAFile)
			}
			if u.InsecureSkipVerify {
				b.WriteString(", INSECURE: certificates not verified")
			}
			b.WriteString(")")
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "routes (first match wins):\n")
	for i, r := range c.Routes {
		name := r.Name
		if name == "" {
			name = "-"
		}
		methods := "*"
		if m := r.UpperMethods(); m != nil {
			methods = strings.Join(m, ",")
		}
		up := c.UpstreamFor(i)
		if up == "" {
			up = "-"
		}
		fmt.Fprintf(&b, "  %d %s %s %s methods=%s policy=%s upstream=%s", i, name, r.MatchMode(), r.Path, methods, r.Policy, up)
		if len(r.Groups) > 0 {
			fmt.Fprintf(&b, " groups=%s", strings.Join(r.Groups, ","))
		}
		if r.MFA != "" {
			fmt.Fprintf(&b, " mfa=%s", r.MFA)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "default_policy: %s\n", c.DefaultPolicy)
	return b.String()
}

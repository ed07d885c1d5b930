package config

import (
	"fmt"
	"slices"
	"strings"
)

// otherMethods stands for every method no route names: only routes without
// a methods list match it.
const otherMethods = ""

// Warnings returns what `gatehouse check` warns about in a configuration
// that is valid but probably not what was meant, one message per problem
// ("FILE:LINE: routes[2].path: ..." when the file is known). Today that is
// a deny or authenticated rule whose path ends in "/" while the same path
// without it is decided by a weaker rule or default_policy: "/admin/" deny
// does not cover "/admin", which many frameworks serve as the same page, so
// a "/" public rule would serve it to anyone. Deny is stronger than
// authenticated, which is stronger than public; an authenticated rule with
// groups or mfa is stronger than one without (see weaker). It also warns
// about an identity assertion signed with an ephemeral key where several
// replicas are likely (assertionWarnings), and about second factors
// (secondFactorWarnings). It only reads c.
func (c *Config) Warnings() []string {
	methods := c.namedMethods()
	var out []string
	for i, r := range c.Routes {
		if strength(r.Policy) <= strength(Public) || len(r.Path) < 2 || !strings.HasSuffix(r.Path, "/") {
			continue
		}
		bare := strings.TrimSuffix(r.Path, "/")
		var weakerFor []string
		applies := 0
		by := -2 // the rule (or -1, default_policy) that decides bare most weakly
		for _, m := range methods {
			if !routeHasMethod(r, m) || c.decide(m, r.Path) != i {
				// Not this rule's own path for m: a rule above decides it,
				// which is another matter.
				continue
			}
			applies++
			j := c.decide(m, bare)
			if !c.weaker(j, i) {
				continue
			}
			weakerFor = append(weakerFor, m)
			if by == -2 || strength(c.policyOf(j)) < strength(c.policyOf(by)) {
				by = j
			}
		}
		if len(weakerFor) == 0 {
			continue
		}
		who := "default_policy"
		if by >= 0 {
			who = fmt.Sprintf("routes[%d]", by)
		}
		forMethods := ""
		if len(weakerFor) < applies {
			forMethods = " for " + methodList(weakerFor)
		}
		hint := fmt.Sprintf("path %q (prefix) covers both", bare)
		if r.MatchMode() == MatchExact {
			hint = fmt.Sprintf("add an exact rule for %q if it is the same page", bare)
		}
		field := fmt.Sprintf("routes[%d].path", i)
		msg := fmt.Sprintf("%s: %q (%s) does not cover %q, which %s decides%s (%s); %s",
			field, r.Path, c.describe(i), bare, who, forMethods, c.describe(by), hint)
		if c.File != "" {
			if l := lineOf(c.lines, field); l > 0 {
				msg = fmt.Sprintf("%s:%d: %s", c.File, l, msg)
			}
		}
		out = append(out, msg)
	}
	out = append(out, c.assertionWarnings()...)
	return append(out, c.secondFactorWarnings()...)
}

// assertionWarnings warns when the assertion is on without key_files while
// a real Redis is configured: a real Redis is what lets several replicas
// run, and each would sign with its own ephemeral key and publish a
// different JWKS, so an upstream's cached set would verify only some of
// the requests.
func (c *Config) assertionWarnings() []string {
	a := &c.Identity.Assertion
	if a.Header == "" || len(a.KeyFiles) > 0 || c.Redis.Embedded() {
		return nil
	}
	return []string{c.located("identity.assertion.key_files",
		"none given, so each process signs with an ephemeral key of its own: several replicas would publish different keys, and every restart changes the key; give each replica the same key files")}
}

// located prefixes "field: msg" with the file and the field's line (or its
// closest parent's) when the file is known.
func (c *Config) located(field, msg string) string {
	msg = field + ": " + msg
	if c.File != "" {
		if l := lineOf(c.lines, field); l > 0 {
			return fmt.Sprintf("%s:%d: %s", c.File, l, msg)
		}
	}
	return msg
}

// weaker reports whether rule j (-1: default_policy) lets through a
// request that rule i refuses: a weaker policy, or, both authenticated,
// j lacks i's mfa or admits a user outside i's groups.
func (c *Config) weaker(j, i int) bool {
	ri := c.Routes[i]
	if sj, si := strength(c.policyOf(j)), strength(ri.Policy); sj != si {
		return sj < si
	}
	if ri.Policy != Authenticated {
		return false
	}
	var rj Route // default_policy: no groups, no mfa
	if j >= 0 {
		rj = c.Routes[j]
	}
	if ri.MFA == MFARequired && rj.MFA != MFARequired {
		return true
	}
	if len(ri.Groups) == 0 {
		return false
	}
	if len(rj.Groups) == 0 {
		return true
	}
	for _, g := range rj.Groups {
		if !slices.Contains(ri.Groups, g) {
			return true
		}
	}
	return false
}

// describe names rule i's (-1: default_policy's) decision for a warning:
// its policy, and an authenticated rule's groups and mfa.
func (c *Config) describe(i int) string {
	if i < 0 {
		return string(c.DefaultPolicy)
	}
	r := c.Routes[i]
	d := string(r.Policy)
	if r.Policy != Authenticated {
		return d
	}
	if len(r.Groups) > 0 {
		d += ", groups " + strings.Join(r.Groups, ",")
	}
	if r.MFA == MFARequired {
		d += ", mfa required"
	}
	return d
}

// strength orders policies: public 0, authenticated 1, deny 2.
func strength(p Policy) int {
	switch p {
	case Deny:
		return 2
	case Authenticated:
		return 1
	}
	return 0
}

// namedMethods is every method some route names (HEAD with GET, which
// covers it), then otherMethods.
func (c *Config) namedMethods() []string {
	var ms []string
	for _, r := range c.Routes {
		for _, m := range r.UpperMethods() {
			if !slices.Contains(ms, m) {
				ms = append(ms, m)
			}
			if m == "GET" && !slices.Contains(ms, "HEAD") {
				ms = append(ms, "HEAD")
			}
		}
	}
	slices.Sort(ms)
	return append(ms, otherMethods)
}

// routeHasMethod reports whether r matches method m (GET covers HEAD).
func routeHasMethod(r Route, m string) bool {
	ms := r.UpperMethods()
	if ms == nil {
		return true
	}
	return m != otherMethods && (slices.Contains(ms, m) || (m == "HEAD" && slices.Contains(ms, "GET")))
}

// decide returns the index of the first route matching method m and the
// clean path p, or -1 when default_policy decides, as the gateway matches.
func (c *Config) decide(m, p string) int {
	for i, r := range c.Routes {
		if !routeHasMethod(r, m) {
			continue
		}
		if r.MatchMode() == MatchExact {
			if p == r.Path {
				return i
			}
		} else if UnderPath(p, r.Path) {
			return i
		}
	}
	return -1
}

// policyOf is route i's policy, or default_policy for -1.
func (c *Config) policyOf(i int) Policy {
	if i < 0 {
		return c.DefaultPolicy
	}
	return c.Routes[i].Policy
}

func methodList(ms []string) string {
	out := make([]string, len(ms))
	for i, m := range ms {
		if m == otherMethods {
			m = "other methods"
		}
		out[i] = m
	}
	return strings.Join(out, ", ")
}

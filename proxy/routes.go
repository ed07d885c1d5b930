package proxy

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/assertion"
)

// Routes is the compiled route table: the configuration's rules in order,
// with methods upper-cased and upstreams resolved. It is read-only after
// NewRoutes, so any number of requests may Match at once without a lock.
type Routes struct {
	rules         []rule
	defaultPolicy config.Policy
	// defaultUpstream is where a request that no rule matches goes when
	// default_policy is not deny ("" when there is no single upstream).
	defaultUpstream string
}

type rule struct {
	route config.Route // as configured, for Explain
	path  string
	exact bool
	// methods is nil for "every method"; otherwise upper-case names, with
	// HEAD added where GET is listed.
	methods  []string
	name     string
	policy   config.Policy
	upstream string
}

// Decision is the outcome of matching a request against the route table.
type Decision struct {
	// Index is the rule's position, counted from 0; -1 for default_policy.
	Index int
	// Name is the metrics and log label: the rule's name, else its index
	// as a string, "default" for default_policy.
	Name string
	// Policy is what to do with the request.
	Policy config.Policy
	// Upstream names the upstream to forward to ("" for a deny without
	// one).
	Upstream string
	// Route is the matched rule as configured (the zero Route for the
	// default).
	Route config.Route
}

// NewRoutes compiles cfg's route table. cfg was validated by config.Load
// (config.Validate), which is the one place that refuses a bad route.
func NewRoutes(cfg *config.Config) *Routes {
	single := ""
	if len(cfg.Upstreams) == 1 {
		for name := range cfg.Upstreams {
			single = name
		}
	}
	rs := &Routes{defaultPolicy: cfg.DefaultPolicy}
	if cfg.DefaultPolicy != config.Deny {
		rs.defaultUpstream = single
	}
	for i, r := range cfg.Routes {
		ru := rule{route: r, path: r.Path, policy: r.Policy, name: r.Name, upstream: r.Upstream,
			exact: r.Match == config.MatchExact}
		if ru.name == "" {
			ru.name = strconv.Itoa(i)
		}
		if ru.upstream == "" {
			ru.upstream = single
		}
		if len(r.Methods) > 0 {
			seen := map[string]bool{}
			for _, m := range r.Methods {
				m = strings.ToUpper(strings.TrimSpace(m))
				seen[m] = true
				if m == "GET" {
					seen["HEAD"] = true
				}
			}
			for m := range seen {
				ru.methods = append(ru.methods, m)
			}
			sort.Strings(ru.methods)
		}
		rs.rules = append(rs.rules, ru)
	}
	return rs
}

// Match returns the first rule whose path and methods match, else the
// default. method must already be upper-case and cleanPath the result of
// CheckPath. It allocates nothing.
func (rs *Routes) Match(method, cleanPath string) Decision {
	for i := range rs.rules {
		ru := &rs.rules[i]
		if !ru.matchPath(cleanPath) || !ru.matchMethod(method) {
			continue
		}
		return Decision{Index: i, Name: ru.name, Policy: ru.policy, Upstream: ru.upstream, Route: ru.route}
	}
	d := Decision{Index: -1, Name: "default", Policy: rs.defaultPolicy}
	if d.Policy != config.Deny {
		d.Upstream = rs.defaultUpstream
	}
	return d
}

// Len is the number of rules.
func (rs *Routes) Len() int { return len(rs.rules) }

func (ru *rule) matchPath(p string) bool {
	if ru.exact {
		return p == ru.path
	}
	return config.UnderPath(p, ru.path)
}

func (ru *rule) matchMethod(m string) bool {
	if ru.methods == nil {
		return true
	}
	for _, x := range ru.methods {
		if x == m {
			return true
		}
	}
	return false
}

// Explain returns the line `gatehouse explain` prints for a request of
// method to rawURL (a path such as "/admin?x=1" or an absolute URL):
//
//	rule N name=NAME path=PATH match=MATCH methods=M1,M2|* policy=P upstream=U
//	no rule: default_policy deny
//	bad path: REASON
//	endpoint login (answered by the gateway itself)
//
// A refused path is an answer, not an error: the error is for a
// configuration the gateway could not run.
func Explain(cfg *config.Config, method, rawURL string) (string, error) {
	rs := NewRoutes(cfg)
	method = strings.ToUpper(method)
	u, err := url.Parse(rawURL)
	if err != nil {
		return "bad path: the URL does not parse", nil
	}
	clean, err := CheckPath(u)
	if err != nil {
		var pe *pathError
		if errors.As(err, &pe) {
			return "bad path: " + pe.reason, nil
		}
		return "bad path", nil
	}
	// In the gateway's order: the forward-auth endpoint takes every
	// method, the other endpoints and the routes no CONNECT or TRACE.
	name := endpointName(cfg, clean)
	if name != "verify" && (method == "CONNECT" || method == "TRACE") {
		return "method not allowed: " + method, nil
	}
	if name != "" {
		return "endpoint " + name + " (answered by the gateway itself)", nil
	}
	d := rs.Match(method, clean)
	if d.Index < 0 {
		return "no rule: default_policy " + string(d.Policy), nil
	}
	ru := &rs.rules[d.Index]
	match := string(ru.route.Match)
	if match == "" {
		match = string(config.MatchPrefix)
	}
	methods := "*"
	if len(ru.route.Methods) > 0 {
		ms := make([]string, len(ru.route.Methods))
		for i, m := range ru.route.Methods {
			ms[i] = strings.ToUpper(m)
		}
		methods = strings.Join(ms, ",")
	}
	up := ru.upstream
	if up == "" || ru.policy == config.Deny {
		// A denied request goes nowhere, as `check` prints it too.
		up = "-"
	}
	line := fmt.Sprintf("rule %d name=%s path=%s match=%s methods=%s policy=%s upstream=%s",
		d.Index, ru.name, ru.path, match, methods, ru.policy, up)
	if len(ru.route.Groups) > 0 {
		line += " groups=" + strings.Join(ru.route.Groups, ",")
	}
	if ru.route.MFA != "" {
		line += " mfa=" + ru.route.MFA
	}
	return line, nil
}

// endpointName names the gateway's own endpoint at clean, or "".
func endpointName(cfg *config.Config, clean string) string {
	a := &cfg.Auth
	switch {
	case a.VerifyPath != "" && config.UnderPath(clean, a.VerifyPath):
		return "verify"
	case clean == assertion.JWKSPath:
		return "jwks"
	case clean == a.LoginPath:
		return "login"
	case clean == a.RegisterPath:
		return "register"
	case clean == a.LogoutPath:
		return "logout"
	case clean == a.MePath || config.UnderPath(clean, a.MePath+"/"):
		return "me"
	case clean == a.AccountPath || config.UnderPath(clean, a.AccountPath+"/"):
		return "account"
	}
	return ""
}

package deploy

import (
	"regexp"
	"strings"
	"testing"
)

// gatewayPage is a path the gateway itself serves on the app's host. A
// prefix page covers itself and everything below it on a segment boundary
// (/login, /login/passkey; never /loginx).
type gatewayPage struct {
	path   string
	prefix bool
}

// gatewayPages are every path of the gateway that a forward-auth set-up must
// route to it: the sign-in page and its passkey endpoints, registration,
// logout, the account API, the account page (its form actions and script),
// and the public keys of the identity assertion.
var gatewayPages = []gatewayPage{
	{"/login", true},
	{"/register", false},
	{"/logout", false},
	{"/me", true},
	{"/account", true},
	{"/.well-known/jwks.json", false},
}

// answerHeaders are the headers of the verify endpoint's 200 that a proxy
// must copy onto the request it forwards. Cookie is the client's cookies
// without the gateway's tokens.
var answerHeaders = []string{"X-User-Id", "X-User-Email", "X-User-Groups", "X-Gatehouse-Assertion", "Cookie"}

// identityHeaders are the answer headers a client must never set itself.
var identityHeaders = answerHeaders[:4]

// pageProbes are request paths and whether each must go to the gateway
// (true) or to the app through the check (false).
var pageProbes = map[string]bool{
	"/login":                      true,
	"/login/passkey":              true,
	"/login/passkey/options":      true,
	"/register":                   true,
	"/logout":                     true,
	"/me":                         true,
	"/me/sessions":                true,
	"/me/sessions/abc":            true,
	"/me/tokens/x":                true,
	"/account":                    true,
	"/account/gatehouse.js":       true,
	"/account/totp":               true,
	"/.well-known/jwks.json":      true,
	"/":                           false,
	"/app":                        false,
	"/loginx":                     false,
	"/logins/x":                   false,
	"/register/x":                 false,
	"/registerx":                  false,
	"/logout/x":                   false,
	"/mex":                        false,
	"/media/me":                   false,
	"/accounts":                   false,
	"/.well-known/jwks.jsonx":     false,
	"/.well-known/openid":         false,
	"/_gatehouse/verify":          false,
	"/_gatehouse/verify/login":    false,
	"/public/login":               false,
	"/.well-known/jwks.json/x":    false,
	"/account-settings/gatehouse": false,
}

// probes is pageProbes plus, for every gateway page, the page itself, a
// path below it (the gateway's only for a prefix page) and the page with a
// suffix on its last segment (never the gateway's).
func probes() map[string]bool {
	m := map[string]bool{}
	for p, want := range pageProbes {
		m[p] = want
	}
	for _, p := range gatewayPages {
		m[p.path] = true
		m[p.path+"/x/y"] = p.prefix
		m[p.path+"x"] = false
	}
	return m
}

// checkRouting runs every probe through a proxy's path matching.
func checkRouting(t *testing.T, who string, toGateway func(path string) bool) {
	t.Helper()
	for p, want := range probes() {
		if got := toGateway(p); got != want {
			if want {
				t.Errorf("%s: %s does not go to the gateway", who, p)
			} else {
				t.Errorf("%s: %s goes to the gateway, want the app", who, p)
			}
		}
	}
}

// segmentPrefix is the Kubernetes Ingress "Prefix" and Gateway API
// "PathPrefix" match: element by element.
func segmentPrefix(prefix, path string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return path == prefix || strings.HasPrefix(path, prefix+"/") || prefix == ""
}

// missing returns the names of want that list lacks (case-insensitive).
func missing(list, want []string) []string {
	var out []string
	for _, w := range want {
		if !hasHeader(list, w) {
			out = append(out, w)
		}
	}
	return out
}

// TestNginxConfRoutes: the pages location of examples/nginx.conf sends
// exactly the gateway's pages to it. nginx's PCRE and Go's RE2 agree on
// this regexp's syntax.
func TestNginxConfRoutes(t *testing.T) {
	text := readFile(t, "examples/nginx.conf")
	m := regexp.MustCompile(`(?m)^\s*location ~ (\S+) \{$`).FindAllStringSubmatch(text, -1)
	if len(m) != 1 {
		t.Fatalf("nginx.conf: want one regexp location for the gateway's pages, found %d", len(m))
	}
	re, err := regexp.Compile(m[0][1])
	if err != nil {
		t.Fatalf("nginx.conf location regexp %s: %v", m[0][1], err)
	}
	checkRouting(t, "nginx.conf", re.MatchString)
}

// TestCaddyfileRoutes: the @gatehouse matcher of examples/Caddyfile sends
// exactly the gateway's pages to it ("/x/*" is a prefix, the rest exact).
func TestCaddyfileRoutes(t *testing.T) {
	text := readFile(t, "examples/Caddyfile")
	m := regexp.MustCompile(`(?m)^\s*@gatehouse path (.+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("Caddyfile: no @gatehouse path matcher")
	}
	paths := strings.Fields(m[1])
	checkRouting(t, "Caddyfile", func(p string) bool {
		for _, pat := range paths {
			if pre, ok := strings.CutSuffix(pat, "*"); ok {
				if strings.HasPrefix(p, pre) {
					return true
				}
			} else if p == pat {
				return true
			}
		}
		return false
	})
}

// traefikPaths turns the Path and PathPrefix terms of a Traefik rule into a
// matcher. The terms are taken as alternatives (the rule ORs them behind
// its Host); PathPrefix compares strings, as Traefik does.
func traefikPaths(t *testing.T, rule string) func(string) bool {
	t.Helper()
	terms := regexp.MustCompile("(PathPrefix|Path)\\(`([^`]*)`\\)").FindAllStringSubmatch(rule, -1)
	if len(terms) == 0 {
		t.Errorf("rule %q has no Path or PathPrefix", rule)
	}
	return func(p string) bool {
		for _, m := range terms {
			if (m[1] == "Path" && p == m[2]) || (m[1] == "PathPrefix" && strings.HasPrefix(p, m[2])) {
				return true
			}
		}
		return false
	}
}

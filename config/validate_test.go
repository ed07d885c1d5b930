package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestValidateProblems covers every validation rule, each problem at its
// exact line.
func TestValidateProblems(t *testing.T) {
	const two = "upstreams:\n  app: http://127.0.0.1:3000\n  api: http://127.0.0.1:4000\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"listen not host:port", up + "listen: nope\n", []string{`2: listen: "nope" is not host:port`}},
		{"listen empty", up + "listen: \"\"\n", []string{`2: listen: required: host:port`}},
		{"listen bad port", up + "listen: 127.0.0.1:99999\n", []string{`2: listen: port "99999" must be a number between 0 and 65535`}},
		{"listen named port", up + "listen: localhost:http\n", []string{`2: listen: port "http" must be a number between 0 and 65535`}},
		{"admin_listen bad", up + "admin_listen: x\n", []string{`2: admin_listen: "x" is not host:port`}},
		{"admin_listen same as listen", up + "listen: 127.0.0.1:80\nadmin_listen: 127.0.0.1:80\n", []string{`3: admin_listen: must differ from listen`}},
		{"trusted_proxies", up + "trusted_proxies:\n  - 10.0.0.0/8\n  - 1.2.3.4\n  - ::1\n  - nope\n  - 10.0.0.0/33\n", []string{
			`6: trusted_proxies[3]: "nope" is not a CIDR (10.0.0.0/8) or an IP address`,
			`7: trusted_proxies[4]: "10.0.0.0/33" is not a CIDR (10.0.0.0/8) or an IP address`}},
		{"redis url scheme", up + "redis:\n  url: http://localhost:6379\n", []string{`3: redis.url: scheme must be redis or rediss`}},
		{"redis url without host", up + "redis:\n  url: \"redis://:pw@\"\n", []string{`3: redis.url: needs a host`}},
		{"redis url bad database", up + "redis:\n  url: redis://localhost:6379/x\n", []string{`3: redis.url: path must be empty or a database number such as /0`}},
		{"redis url never echoed", up + "redis:\n  url: \"redis://:hunter2@local host\"\n", []string{`3: redis.url: is not a valid URL`}},
		{"redis url and cluster", up + "redis:\n  url: redis://a:6379\n  cluster: {addrs: [b:6379]}\n", []string{`2: redis: set at most one of url, sentinel and cluster`}},
		{"sentinel without master or addrs", up + "redis:\n  sentinel: {}\n", []string{
			`3: redis.sentinel.master: required`, `3: redis.sentinel.addrs: needs at least one host:port`}},
		{"sentinel bad addr", up + "redis:\n  sentinel:\n    master: m\n    addrs:\n      - s1:26379\n      - s2\n      - :26379\n", []string{
			`7: redis.sentinel.addrs[1]: "s2" is not host:port`, `8: redis.sentinel.addrs[2]: needs a host`}},
		{"cluster without addrs", up + "redis:\n  cluster:\n    addrs: []\n", []string{`4: redis.cluster.addrs: needs at least one host:port`}},
		{"password without a server", up + "redis:\n  password: x\n", []string{`3: redis.password: set, but no redis url, sentinel or cluster is configured (the embedded store has no password)`}},
		{"key_prefix empty", up + "redis:\n  key_prefix: \"\"\n", []string{`3: redis.key_prefix: must not be empty`}},
		{"key_prefix with a hash tag", up + "redis:\n  key_prefix: \"app{x}:\"\n", []string{`3: redis.key_prefix: must not contain { or }`}},
		{"no upstreams key", "listen: 127.0.0.1:1\n", []string{`upstreams: required: at least one upstream`}},
		{"empty upstreams", "upstreams: {}\n", []string{`1: upstreams: required: at least one upstream`}},
		{"upstream scheme", "upstreams:\n  app: ftp://x\n", []string{`2: upstreams.app.url: must be an http:// or https:// URL, or builtin:echo`}},
		{"upstream relative", "upstreams:\n  app: localhost:3000\n", []string{`2: upstreams.app.url: must be an http:// or https:// URL, or builtin:echo`}},
		{"upstream without host", "upstreams:\n  app: http://\n", []string{`2: upstreams.app.url: needs a host`}},
		{"upstream credentials", "upstreams:\n  app: http://u:p@x\n", []string{`2: upstreams.app.url: must not hold credentials (they would not be sent)`}},
		{"upstream empty url", "upstreams:\n  app:\n    url: \"\"\n", []string{`3: upstreams.app.url: required`}},
		{"other builtin", "upstreams:\n  app: builtin:nope\n", []string{`2: upstreams.app.url: must be an http:// or https:// URL, or builtin:echo`}},
		{"ca_file on http", "upstreams:\n  app:\n    url: http://x\n    ca_file: ca.pem\n", []string{`4: upstreams.app.ca_file: only for https upstreams`}},
		{"ca_file on builtin", "upstreams:\n  app:\n    url: builtin:echo\n    ca_file: ca.pem\n", []string{`4: upstreams.app.ca_file: only for https upstreams`}},
		{"ca_file with insecure", "upstreams:\n  app:\n    url: https://x\n    ca_file: ca.pem\n    insecure_skip_verify: true\n", []string{`4: upstreams.app.ca_file: has no effect with insecure_skip_verify: true`}},
		{"route path relative", up + "routes:\n  - path: admin\n    policy: deny\n", []string{`3: routes[0].path: must start with "/"`}},
		{"route path missing", up + "routes:\n  - policy: deny\n", []string{`3: routes[0].path: required`}},
		{"route path double slash", up + "routes:\n  - {path: /a//b, policy: deny}\n", []string{`3: routes[0].path: must not contain "//"`}},
		{"route path dot-dot", up + "routes:\n  - {path: /a/../b, policy: deny}\n", []string{`3: routes[0].path: must not contain "." or ".." segments`}},
		{"route path trailing dot", up + "routes:\n  - {path: /a/., policy: deny}\n", []string{`3: routes[0].path: must not contain "." or ".." segments`}},
		{"route path percent", up + "routes:\n  - {path: /a%2Fb, policy: deny}\n", []string{`3: routes[0].path: must not contain "%"`}},
		{"route path backslash", up + "routes:\n  - {path: '/a\\b', policy: deny}\n", []string{`3: routes[0].path: must not contain "\\"`}},
		{"route path semicolon", up + "routes:\n  - {path: /a;b, policy: deny}\n", []string{`3: routes[0].path: must not contain ";"`}},
		{"route path hash", up + "routes:\n  - {path: \"/a#b\", policy: deny}\n", []string{`3: routes[0].path: must not contain "#"`}},
		{"route path control", up + "routes:\n  - {path: \"/a\\tb\", policy: deny}\n", []string{`3: routes[0].path: must not contain control characters`}},
		{"route match", up + "routes:\n  - path: /\n    match: regex\n    policy: deny\n", []string{`4: routes[0].match: must be prefix or exact, not "regex"`}},
		{"route policy missing", up + "routes:\n  - path: /\n", []string{`3: routes[0].policy: required: public, authenticated or deny`}},
		{"route policy unknown", up + "routes:\n  - path: /\n    policy: allow\n", []string{`4: routes[0].policy: must be public, authenticated or deny, not "allow"`}},
		{"route method", up + "routes:\n  - path: /\n    policy: deny\n    methods: [get, \"GE T\", \"\"]\n", []string{
			`5: routes[0].methods[1]: "GE T" is not a valid HTTP method`, `5: routes[0].methods[2]: "" is not a valid HTTP method`}},
		{"route upstream unknown", up + "routes:\n  - path: /\n    policy: public\n    upstream: nope\n", []string{`5: routes[0].upstream: unknown upstream "nope"`}},
		{"route upstream needed", two + "routes:\n  - path: /\n    policy: public\n  - path: /x\n    policy: deny\n", []string{`5: routes[0].upstream: required when several upstreams exist`}},
		{"route names unique", up + "routes:\n  - {path: /a, policy: deny, name: x}\n  - {path: /b, policy: deny, name: x}\n", []string{`4: routes[1].name: duplicate name "x" (also routes[0])`}},
		{"default_policy", up + "default_policy: allow\n", []string{`2: default_policy: must be public, authenticated or deny, not "allow"`}},
		{"auth path relative", up + "auth:\n  login_path: login\n", []string{`3: auth.login_path: must start with "/"`}},
		{"auth path unclean", up + "auth:\n  me_path: /me/../x\n", []string{`3: auth.me_path: must not contain "." or ".." segments`}},
		{"auth paths distinct", up + "auth:\n  login_path: /x\n  me_path: /x\n", []string{`4: auth.me_path: same as auth.login_path`}},
		{"auth path under verify", up + "auth:\n  logout_path: /_gatehouse/verify/out\n", []string{`3: auth.logout_path: must not be under auth.verify_path`}},
		{"auth path equal to verify", up + "auth:\n  verify_path: /login\n", []string{`3: auth.verify_path: same as auth.login_path`}},
		{"verify path is root", up + "auth:\n  verify_path: /\n", []string{
			`3: auth.login_path: must not be under auth.verify_path`, `3: auth.register_path: must not be under auth.verify_path`,
			`3: auth.logout_path: must not be under auth.verify_path`, `3: auth.me_path: must not be under auth.verify_path`,
			`3: auth.account_path: must not be under auth.verify_path`}},
		{"public_url relative", up + "auth:\n  public_url: auth.example.com\n", []string{`3: auth.public_url: must be an absolute http:// or https:// URL`}},
		{"public_url query", up + "auth:\n  public_url: https://auth.example.com/?x=1\n", []string{`3: auth.public_url: must not have a query or fragment`}},
		{"redirect hosts", up + "auth:\n  allowed_redirect_hosts:\n    - app.example.com\n    - .example.com\n    - 10.0.0.1\n    - \"*.example.com\"\n    - https://x\n", []string{
			`7: auth.allowed_redirect_hosts[3]: "*.example.com" is not a host name (app.example.com, or .example.com for its subdomains)`,
			`8: auth.allowed_redirect_hosts[4]: "https://x" is not a host name (app.example.com, or .example.com for its subdomains)`}},
		{"registration", up + "auth:\n  registration: invite\n", []string{`3: auth.registration: must be closed or open, not "invite"`}},
		{"email domains", up + "auth:\n  allowed_email_domains: [example.com, \"@example.com\", \"-x.com\"]\n", []string{
			`3: auth.allowed_email_domains[1]: "@example.com" is not a domain such as example.com`,
			`3: auth.allowed_email_domains[2]: "-x.com" is not a domain such as example.com`}},
		{"bcrypt_cost low", up + "auth:\n  bcrypt_cost: 3\n", []string{`3: auth.bcrypt_cost: must be between 4 and 31, not 3`}},
		{"bcrypt_cost high", up + "auth:\n  bcrypt_cost: 32\n", []string{`3: auth.bcrypt_cost: must be between 4 and 31, not 32`}},
		{"password_min_length 0", up + "auth:\n  password_min_length: 0\n", []string{`3: auth.password_min_length: must be between 1 and 72 (bcrypt's limit), not 0`}},
		{"password_min_length 73", up + "auth:\n  password_min_length: 73\n", []string{`3: auth.password_min_length: must be between 1 and 72 (bcrypt's limit), not 73`}},
		{"max_login_failures", up + "auth:\n  max_login_failures: 0\n", []string{`3: auth.max_login_failures: must be at least 1, not 0`}},
		{"login_failure_window", up + "auth:\n  login_failure_window: 0\n", []string{`3: auth.login_failure_window: must be at least 1s`}},
		{"max_registrations", up + "auth:\n  max_registrations: -1\n", []string{`3: auth.max_registrations: must not be negative (0 = no limit), not -1`}},
		{"cookie_name", up + "session:\n  cookie_name: \"a b\"\n", []string{`3: session.cookie_name: "a b" is not a valid cookie name`}},
		{"__Host- cookie with a domain", up + "session:\n  cookie_name: __Host-s\n  cookie_domain: example.com\n", []string{`3: session.cookie_name: a __Host- cookie needs cookie_secure: true and no cookie_domain`}},
		{"__Secure- cookie without secure", up + "session:\n  cookie_name: __Secure-s\n  cookie_secure: false\n", []string{`3: session.cookie_name: a __Secure- cookie needs cookie_secure: true`}},
		{"cookie_domain", up + "session:\n  cookie_domain: \"exa mple.com\"\n", []string{`3: session.cookie_domain: "exa mple.com" is not a domain such as example.com`}},
		{"cookie_same_site", up + "session:\n  cookie_same_site: none\n", []string{`3: session.cookie_same_site: must be lax or strict, not "none"`}},
		{"ttl", up + "session:\n  ttl: 0\n", []string{`3: session.ttl: must be at least 2s (a session token carries its end in whole seconds)`}},
		{"user_id_header empty", up + "identity:\n  user_id_header: \"\"\n", []string{`3: identity.user_id_header: required`}},
		{"user_id_header bad", up + "identity:\n  user_id_header: \"X User\"\n", []string{`3: identity.user_id_header: "X User" is not a valid header name`}},
		{"email_header bad", up + "identity:\n  email_header: \"X:Mail\"\n", []string{`3: identity.email_header: "X:Mail" is not a valid header name`}},
		{"groups_header Cookie", up + "identity:\n  groups_header: Cookie\n", []string{`3: identity.groups_header: "Cookie" is a header that HTTP or the gateway itself needs; choose another name`}},
		{"email_header Host", up + "identity:\n  email_header: host\n", []string{`3: identity.email_header: "host" is a header that HTTP or the gateway itself needs; choose another name`}},
		{"assertion header Authorization", up + "identity:\n  assertion:\n    header: Authorization\n", []string{`4: identity.assertion.header: "Authorization" is a header that HTTP or the gateway itself needs; choose another name`}},
		{"user_id_header X_Forwarded_For", up + "identity:\n  user_id_header: X_Forwarded_For\n", []string{`3: identity.user_id_header: "X_Forwarded_For" is a header that HTTP or the gateway itself needs; choose another name`}},
		{"email_header same", up + "identity:\n  email_header: x-user-id\n", []string{`3: identity.email_header: must differ from identity.user_id_header`}},
		{"trusted_origins", up + "csrf:\n  trusted_origins:\n    - https://app.example.com:8443\n    - https://a.example.com/\n    - a.example.com\n    - https://a.example.com?x\n", []string{
			`5: csrf.trusted_origins[1]: "https://a.example.com/" is not an origin such as https://app.example.com`,
			`6: csrf.trusted_origins[2]: "a.example.com" is not an origin such as https://app.example.com`,
			`7: csrf.trusted_origins[3]: "https://a.example.com?x" is not an origin such as https://app.example.com`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := problemLines(t, tc.src, nil)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestValidateValid(t *testing.T) {
	tests := []struct{ name, src string }{
		{"deny routes need no upstream", "upstreams:\n  a: http://a\n  b: http://b\nroutes:\n  - {path: /x, policy: deny}\n  - {path: /, policy: public, upstream: a}\n"},
		{"one upstream need not be named", up + "routes:\n  - {path: /, policy: authenticated}\n"},
		{"admin off", up + "admin_listen: \"\"\n"},
		{"ipv6 listen", up + "listen: \"[::1]:8080\"\nadmin_listen: :9090\n"},
		{"sentinel", up + "redis:\n  sentinel: {master: m, addrs: [\"s1:26379\", \"[::1]:26379\"]}\n"},
		{"cluster", up + "redis:\n  cluster: {addrs: [\"n1:6379\"]}\n  password: x\n"},
		{"rediss url", up + "redis:\n  url: rediss://user:pw@redis.example.com:6380/2\n"},
		{"idle 0", up + "session:\n  idle_timeout: 0\n"},
		{"verify with trailing slash", up + "auth:\n  verify_path: /_auth/\n"},
		{"unicode route path", up + "routes:\n  - {path: /café/, policy: public}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := problemLines(t, tc.src, nil); got != nil {
				t.Errorf("problems = %q, want none", got)
			}
		})
	}
}

// newCodeConfig builds a configuration in code, as a test elsewhere would.
func newCodeConfig() *Config {
	c := Default()
	c.Upstreams = map[string]Upstream{"app": {URL: "http://a"}}
	c.Routes = []Route{{Path: "/x", Methods: []string{"get", "Post"}, Policy: Public}, {Path: "y"}}
	return c
}

func TestValidateCodeBuilt(t *testing.T) {
	c := newCodeConfig()
	err := c.Validate()
	if !reflect.DeepEqual(c, newCodeConfig()) {
		t.Errorf("Validate changed the configuration: %+v", c)
	}
	got := linesOf(t, err)
	want := []string{`routes[1].path: must start with "/"`, `routes[1].policy: required: public, authenticated or deny`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
	c.Routes = c.Routes[:1]
	if err := c.Validate(); err != nil {
		t.Errorf("Validate = %v, want nil (a zero timeout and match mean the default)", err)
	}
}

func TestValidateDoesNotRepeatDecodeProblems(t *testing.T) {
	// A file that failed to decode is also validated, so check lists both;
	// Validate on its own, with no file, formats without FILE:LINE.
	got := problemLines(t, "upstreams:\n  app: {url: http://a, dial_timeout: -1s}\nsession:\n  ttl: 0\n", nil)
	want := []string{`2: upstreams.app.dial_timeout: must not be negative`, `4: session.ttl: must be at least 2s (a session token carries its end in whole seconds)`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

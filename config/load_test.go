package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envOf returns a lookup over m, telling unset from empty like os.LookupEnv.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// problemLines parses src as testdata/t.yaml and returns its problems as
// "LINE: path: msg" (the file name is tested once, in TestProblemFormat).
// It fails the test if the error is not a Problems.
func problemLines(t *testing.T, src string, env map[string]string) []string {
	t.Helper()
	_, err := Parse("testdata/t.yaml", []byte(src), envOf(env))
	return linesOf(t, err)
}

func linesOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, want Problems: %v", err, err)
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(p.Error(), "testdata/t.yaml"), ":"))
	}
	return out
}

func mustParse(t *testing.T, src string, env map[string]string) *Config {
	t.Helper()
	c, err := Parse("testdata/t.yaml", []byte(src), envOf(env))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestProblemFormat(t *testing.T) {
	tests := []struct {
		name string
		p    Problem
		want string
	}{
		{"full", Problem{File: "gw.yaml", Line: 14, Path: "routes[2].path", Msg: `must start with "/"`}, `gw.yaml:14: routes[2].path: must start with "/"`},
		{"no line", Problem{File: "gw.yaml", Path: "upstreams", Msg: "required"}, "gw.yaml: upstreams: required"},
		{"no file", Problem{Line: 3, Path: "listen", Msg: "bad"}, "listen: bad"},
		{"no path", Problem{File: "gw.yaml", Line: 2, Msg: "invalid YAML: x"}, "gw.yaml:2: invalid YAML: x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
	ps := Problems{tests[0].p, tests[1].p}
	if got, want := ps.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Problems.Error() = %q, want %q", got, want)
	}
	var one Problem
	if !errors.As(error(ps), &one) || one != tests[0].p {
		t.Errorf("errors.As(Problems, *Problem) = %v, want the first problem", one)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load("testdata/minimal.yaml", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"admin_listen", c.AdminListen, "127.0.0.1:9090"},
		{"shutdown_timeout", c.ShutdownTimeout, Duration(15 * time.Second)},
		{"trusted_proxies", len(c.TrustedProxies), 0},
		{"redis.url", c.Redis.URL, ""},
		{"redis.password", c.Redis.Password, ""},
		{"redis.key_prefix", c.Redis.KeyPrefix, "gatehouse:"},
		{"redis.sentinel", c.Redis.Sentinel == nil, true},
		{"redis.cluster", c.Redis.Cluster == nil, true},
		{"redis embedded", c.Redis.Embedded(), true},
		{"upstreams.app.url", c.Upstreams["app"].URL, "http://127.0.0.1:3000"},
		{"upstreams.app.dial_timeout", c.Upstreams["app"].DialTimeout, Duration(DefaultDialTimeout)},
		{"upstreams.app.response_header_timeout", c.Upstreams["app"].ResponseHeaderTimeout, Duration(DefaultResponseHeaderTimeout)},
		{"routes", len(c.Routes), 0},
		{"default_policy", c.DefaultPolicy, Deny},
		{"auth.login_path", c.Auth.LoginPath, "/login"},
		{"auth.register_path", c.Auth.RegisterPath, "/register"},
		{"auth.logout_path", c.Auth.LogoutPath, "/logout"},
		{"auth.me_path", c.Auth.MePath, "/me"},
		{"auth.verify_path", c.Auth.VerifyPath, "/_gatehouse/verify"},
		{"auth.public_url", c.Auth.PublicURL, ""},
		{"auth.allowed_redirect_hosts", len(c.Auth.AllowedRedirectHosts), 0},
		{"auth.registration", c.Auth.Registration, RegistrationClosed},
		{"auth.allowed_email_domains", len(c.Auth.AllowedEmailDomains), 0},
		{"auth.bcrypt_cost", c.Auth.BcryptCost, 12},
		{"auth.password_min_length", c.Auth.PasswordMinLength, 8},
		{"auth.max_login_failures", c.Auth.MaxLoginFailures, 10},
		{"auth.login_failure_window", c.Auth.LoginFailureWindow, Duration(15 * time.Minute)},
		{"auth.max_registrations", c.Auth.MaxRegistrations, 100},
		{"session.cookie_name", c.Session.CookieName, "gatehouse_session"},
		{"session.cookie_domain", c.Session.CookieDomain, ""},
		{"session.cookie_secure", c.Session.CookieSecure, true},
		{"session.cookie_same_site", c.Session.CookieSameSite, "lax"},
		{"session.ttl", c.Session.TTL, Duration(336 * time.Hour)},
		{"session.idle_timeout", c.Session.IdleTimeout, Duration(24 * time.Hour)},
		{"identity.user_id_header", c.Identity.UserIDHeader, "X-User-Id"},
		{"identity.email_header", c.Identity.EmailHeader, "X-User-Email"},
		{"csrf.protect_upstream", c.CSRF.ProtectUpstream, true},
		{"csrf.trusted_origins", len(c.CSRF.TrustedOrigins), 0},
		{"File", c.File, "testdata/minimal.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
			}
		})
	}
}

func TestFullFile(t *testing.T) {
	c, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	legacy := c.Upstreams["legacy"]
	tests := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, "0.0.0.0:8443"},
		{"admin_listen", c.AdminListen, ""},
		{"shutdown_timeout", c.ShutdownTimeout, Duration(30 * time.Second)},
		{"redis.url from url_file", c.Redis.URL, "redis://:urlpw@localhost:6379/0"},
		{"redis.key_prefix", c.Redis.KeyPrefix, "gh:"},
		{"legacy.url (a bare \"/\" path is allowed)", legacy.URL, "https://10.0.0.5:8443/"},
		{"legacy.dial_timeout", legacy.DialTimeout, Duration(2 * time.Second)},
		{"legacy.response_header_timeout (0 = default)", legacy.ResponseHeaderTimeout, Duration(DefaultResponseHeaderTimeout)},
		{"legacy.ca_file relative to the file", legacy.CAFile, filepath.Join("testdata", "ca.pem")},
		{"demo.url", c.Upstreams["demo"].URL, BuiltinEcho},
		{"routes[0].match default", c.Routes[0].Match, MatchPrefix},
		{"routes[2].match", c.Routes[2].Match, MatchExact},
		{"routes[1].methods kept as written", strings.Join(c.Routes[1].Methods, ","), "post,Delete,POST"},
		{"default_policy", c.DefaultPolicy, Deny},
		{"auth.registration", c.Auth.Registration, RegistrationOpen},
		{"auth.bcrypt_cost", c.Auth.BcryptCost, 4},
		{"auth.login_failure_window", c.Auth.LoginFailureWindow, Duration(time.Hour)},
		{"session.idle_timeout", c.Session.IdleTimeout, Duration(0)},
		{"session.cookie_secure", c.Session.CookieSecure, true},
		{"identity.email_header", c.Identity.EmailHeader, ""},
		{"csrf.protect_upstream", c.CSRF.ProtectUpstream, false},
		{"line of routes[2].match", lineOf(c.lines, "routes[2].match"), 25},
		{"line of a missing key is its parent's", lineOf(c.lines, "routes[0].name"), 17},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
			}
		})
	}
}

func TestExampleConfig(t *testing.T) {
	c, err := Load(filepath.Join("..", "config.example.yaml"), envOf(nil))
	if err != nil {
		t.Fatalf("Load(config.example.yaml): %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got, want := c.Listen, "127.0.0.1:8080"; got != want {
		t.Errorf("listen = %q, want %q", got, want)
	}
	if got, want := c.AdminListen, "127.0.0.1:9090"; got != want {
		t.Errorf("admin_listen = %q, want %q", got, want)
	}
	if !c.Redis.Embedded() {
		t.Errorf("redis is not the embedded store: %s", c.RedisDescription())
	}
	if got, want := c.Upstreams["demo"].URL, BuiltinEcho; got != want || len(c.Upstreams) != 1 {
		t.Errorf("upstreams = %v, want only demo: %s", c.Upstreams, want)
	}
	wantRoutes := []string{
		"0 - prefix /assets/ methods=* policy=public upstream=demo",
		"1 - prefix /public/ methods=* policy=public upstream=demo",
		"2 admin-writes prefix /admin methods=POST,DELETE policy=deny upstream=-",
		"3 admin prefix /admin methods=* policy=authenticated upstream=demo groups=admins",
		"4 - prefix / methods=* policy=authenticated upstream=demo",
	}
	for _, r := range wantRoutes {
		if !strings.Contains(c.Summary(), "  "+r+"\n") {
			t.Errorf("summary lacks route line %q:\n%s", r, c.Summary())
		}
	}
	if c.Auth.Registration != RegistrationOpen || c.Session.CookieSecure || c.Auth.BcryptCost != 12 {
		t.Errorf("registration = %q, cookie_secure = %v, bcrypt_cost = %d; want open, false, 12",
			c.Auth.Registration, c.Session.CookieSecure, c.Auth.BcryptCost)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml", nil)
	got := linesOf(t, err)
	want := []string{"testdata/does-not-exist.yaml: cannot read: no such file or directory"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

// TestManyProblems checks that one load reports every problem of a file,
// decoding and validation together, in line order.
func TestManyProblems(t *testing.T) {
	_, err := Load("testdata/bad.yaml", nil)
	if err == nil {
		t.Fatal("Load(bad.yaml) succeeded")
	}
	want, rerr := os.ReadFile("testdata/bad.golden")
	if rerr != nil {
		t.Fatal(rerr)
	}
	if got := err.Error() + "\n"; got != string(want) {
		t.Errorf("problems:\n%s\nwant:\n%s", got, want)
	}
}

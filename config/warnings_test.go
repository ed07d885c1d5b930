package config

import (
	"crypto/elliptic"
	"strings"
	"testing"
)

// TestWarningsTrailingSlash: a deny or authenticated rule for "/x/" warns
// when "/x" itself falls to a weaker rule or default_policy, and only then.
func TestWarningsTrailingSlash(t *testing.T) {
	type rt = Route
	tests := []struct {
		name   string
		routes []Route
		def    Policy
		want   []string // substrings of the one warning; nil = none
	}{
		{"deny over public root", []rt{{Path: "/admin/", Policy: Deny}, {Path: "/", Policy: Public}}, Deny,
			[]string{`routes[0].path: "/admin/" (deny) does not cover "/admin", which routes[1] decides (public)`}},
		{"deny over authenticated root", []rt{{Path: "/admin/", Policy: Deny}, {Path: "/", Policy: Authenticated}}, Deny,
			[]string{`which routes[1] decides (authenticated)`}},
		{"authenticated over public default", []rt{{Path: "/app/", Policy: Authenticated}}, Public,
			[]string{`routes[0].path: "/app/" (authenticated) does not cover "/app", which default_policy decides (public)`}},
		{"deny over authenticated default", []rt{{Path: "/admin/", Policy: Deny}}, Authenticated,
			[]string{`default_policy decides (authenticated)`}},
		{"exact rule", []rt{{Path: "/admin/", Match: MatchExact, Policy: Deny}, {Path: "/", Policy: Public}}, Deny,
			[]string{`"/admin/" (deny) does not cover "/admin"`}},
		{"deep path", []rt{{Path: "/a/b/", Policy: Deny}, {Path: "/a", Policy: Public}}, Deny,
			[]string{`does not cover "/a/b", which routes[1] decides (public)`}},
		{"weaker for some methods", []rt{
			{Path: "/admin/", Policy: Deny}, {Path: "/admin", Match: MatchExact, Methods: []string{"get"}, Policy: Public}, {Path: "/", Policy: Deny},
		}, Deny, []string{`which routes[1] decides for GET, HEAD (public)`}},
		{"method-limited rule", []rt{{Path: "/admin/", Methods: []string{"POST"}, Policy: Deny}, {Path: "/", Policy: Public}}, Deny,
			[]string{`"/admin/" (deny) does not cover "/admin", which routes[1] decides (public)`}},
		// Groups and mfa make an authenticated rule stronger: "/admin/"
		// for admins leaves "/admin" to every signed-in user.
		{"groups over authenticated root", []rt{{Path: "/admin/", Policy: Authenticated, Groups: []string{"admins"}}, {Path: "/", Policy: Authenticated}}, Deny,
			[]string{`routes[0].path: "/admin/" (authenticated, groups admins) does not cover "/admin", which routes[1] decides (authenticated)`}},
		{"mfa over authenticated default", []rt{{Path: "/secure/", Policy: Authenticated, MFA: MFARequired}}, Authenticated,
			[]string{`"/secure/" (authenticated, mfa required) does not cover "/secure", which default_policy decides (authenticated)`}},
		{"groups over other groups", []rt{{Path: "/admin/", Policy: Authenticated, Groups: []string{"admins"}}, {Path: "/", Policy: Authenticated, Groups: []string{"admins", "staff"}}}, Deny,
			[]string{`which routes[1] decides (authenticated, groups admins,staff)`}},
		{"mfa over groups without mfa", []rt{{Path: "/a/", Policy: Authenticated, Groups: []string{"x"}, MFA: MFARequired}, {Path: "/", Policy: Authenticated, Groups: []string{"x"}}}, Deny,
			[]string{`which routes[1] decides (authenticated, groups x)`}},

		{"groups within the same groups", []rt{{Path: "/admin/", Policy: Authenticated, Groups: []string{"admins", "ops"}}, {Path: "/", Policy: Authenticated, Groups: []string{"ops"}}}, Deny, nil},
		{"groups and mfa both kept", []rt{{Path: "/a/", Policy: Authenticated, Groups: []string{"x"}, MFA: MFARequired}, {Path: "/", Policy: Authenticated, Groups: []string{"x"}, MFA: MFARequired}}, Deny, nil},
		{"plain authenticated over groups", []rt{{Path: "/app/", Policy: Authenticated}, {Path: "/", Policy: Authenticated, Groups: []string{"x"}}}, Deny, nil},
		{"bare path covered above", []rt{{Path: "/admin", Match: MatchExact, Policy: Deny}, {Path: "/admin/", Policy: Deny}, {Path: "/", Policy: Public}}, Deny, nil},
		{"bare path covered below", []rt{{Path: "/admin/", Policy: Deny}, {Path: "/admin", Policy: Deny}, {Path: "/", Policy: Public}}, Deny, nil},
		{"same strength", []rt{{Path: "/app/", Policy: Authenticated}, {Path: "/", Policy: Authenticated}}, Deny, nil},
		{"stronger default", []rt{{Path: "/app/", Policy: Authenticated}}, Deny, nil},
		{"authenticated bare under deny", []rt{{Path: "/app/", Policy: Authenticated}, {Path: "/", Policy: Deny}}, Public, nil},
		{"public rule", []rt{{Path: "/public/", Policy: Public}}, Deny, nil},
		{"no trailing slash", []rt{{Path: "/admin", Policy: Deny}, {Path: "/", Policy: Public}}, Public, nil},
		{"root", []rt{{Path: "/", Policy: Deny}}, Public, nil},
		{"shadowed rule", []rt{{Path: "/", Policy: Public}, {Path: "/admin/", Policy: Deny}}, Deny, nil},
		{"bare weaker only where the rule does not apply", []rt{
			{Path: "/admin/", Methods: []string{"GET"}, Policy: Deny}, {Path: "/admin", Methods: []string{"POST"}, Policy: Public}, {Path: "/", Policy: Deny},
		}, Deny, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Routes, c.DefaultPolicy = tc.routes, tc.def
			got := c.Warnings()
			if tc.want == nil {
				if len(got) != 0 {
					t.Fatalf("Warnings = %q, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("Warnings = %q, want one", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got[0], w) {
					t.Errorf("warning %q lacks %q", got[0], w)
				}
			}
		})
	}
}

// TestWarningsLine: a loaded file's warning names the file and the line of
// the rule's path, as problems do.
func TestWarningsLine(t *testing.T) {
	yml := "upstreams:\n  app: http://127.0.0.1:3000\nroutes:\n  - policy: public\n    path: /x\n  - policy: deny\n    path: /admin/\n  - path: /\n    policy: public\n"
	c, err := Parse("gh.yaml", []byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Warnings()
	if len(got) != 1 || !strings.HasPrefix(got[0], `gh.yaml:7: routes[1].path: "/admin/" (deny) does not cover "/admin", which routes[2] decides (public)`) {
		t.Errorf("Warnings = %q", got)
	}
}

// TestWarningsEphemeralAssertionKey: the assertion without key_files warns
// only where several replicas are likely (a real Redis), and names the
// assertion's line.
func TestWarningsEphemeralAssertionKey(t *testing.T) {
	key := writeFile(t, "k.pem", pemKey(t, elliptic.P256(), false))
	const want = `t.yaml:3: identity.assertion.key_files: none given, so each process signs with an ephemeral key of its own`
	tests := []struct {
		name string
		src  string
		want bool
	}{
		{"real redis, no key files", "identity:\n  assertion:\n    header: X-Assertion\nredis: {url: redis://127.0.0.1:6379}\n", true},
		{"sentinel, no key files", "identity:\n  assertion:\n    header: X-Assertion\nredis: {sentinel: {master: m, addrs: [127.0.0.1:26379]}}\n", true},
		{"embedded store", "identity:\n  assertion:\n    header: X-Assertion\n", false},
		{"key files", "identity:\n  assertion:\n    header: X-Assertion\n    key_files: [" + key + "]\nredis: {url: redis://127.0.0.1:6379}\n", false},
		{"no assertion", "identity:\n  assertion:\n    header: \"\"\nredis: {url: redis://127.0.0.1:6379}\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(up+tc.src), nil)
			if err != nil {
				t.Fatal(err)
			}
			// Only the assertion's warnings (a real Redis without a TOTP
			// key warns about that too).
			var got []string
			for _, w := range c.Warnings() {
				if strings.Contains(w, "identity.assertion") {
					got = append(got, w)
				}
			}
			if !tc.want {
				if len(got) != 0 {
					t.Errorf("Warnings = %q, want none", got)
				}
				return
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], want) {
				t.Errorf("Warnings = %q, want one starting %q", got, want)
			}
		})
	}
}

// TestWarningsSecondFactor: TOTP off on a real Redis without a key, and a
// public_url on an IP address (no passkeys there), warn; a key or the
// embedded store do not.
func TestWarningsSecondFactor(t *testing.T) {
	key := writeFile(t, "totp.key", []byte(strings.Repeat("k", 32)))
	tests := []struct {
		name, src string
		want      []string
	}{
		{"real redis, no key", "redis: {url: redis://127.0.0.1:6379}\n",
			[]string{"auth.totp.encryption_key_file: not set, so TOTP is off"}},
		{"real redis, key", "redis: {url: redis://127.0.0.1:6379}\nauth:\n  totp:\n    encryption_key_file: " + key + "\n", nil},
		{"embedded store", "auth:\n  public_url: https://auth.example.com\n", nil},
		{"public_url on an IP", "auth:\n  public_url: http://192.0.2.7:8080\n",
			[]string{"t.yaml:3: auth.public_url: its host is an IP address, where browsers refuse passkeys"}},
		{"public_url on an IP with rp_id", "auth:\n  public_url: http://192.0.2.7:8080\n  webauthn:\n    rp_id: example.com\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(up+tc.src), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := c.secondFactorWarnings()
			if len(got) != len(tc.want) {
				t.Fatalf("warnings = %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("warning %d = %q, want it to start %q", i, got[i], w)
				}
			}
		})
	}
}

package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// up is a valid upstreams line, so that each case below shows only what it
// is about.
const up = "upstreams: {app: http://127.0.0.1:3000}\n"

func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown top-level key", up + "lisen: 127.0.0.1:8080\n", []string{`2: lisen: unknown key; did you mean "listen"?`}},
		{"unknown key far from any", up + "colour: blue\n", []string{`2: colour: unknown key`}},
		{"unknown key depth 2", up + "redis:\n  urll: redis://x:6379\n", []string{`3: redis.urll: unknown key; did you mean "url"?`}},
		{"unknown key depth 3", up + "redis:\n  sentinel:\n    master: m\n    addrs: [a:1]\n    mastr: n\n", []string{`6: redis.sentinel.mastr: unknown key; did you mean "master"?`}},
		{"unknown key in a route", up + "routes:\n  - path: /\n    policy: deny\n    pathh: /x\n", []string{`5: routes[0].pathh: unknown key; did you mean "path"?`}},
		{"unknown key in an upstream mapping", "upstreams:\n  app:\n    url: http://a\n    timeout: 5s\n", []string{`4: upstreams.app.timeout: unknown key`}},
		{"the File field is not a key", up + "File: x.yaml\n", []string{`2: File: unknown key`}},
		{"duplicate key", up + "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n", []string{`3: listen: duplicate key (first on line 2)`}},
		{"duplicate upstream", "upstreams:\n  app: http://a\n  app: http://b\n", []string{`3: upstreams.app: duplicate upstream (first on line 2)`}},
		{"list for a string", up + "listen: [a, b]\n", []string{`2: listen: must be a string, not a list`}},
		{"mapping for a string", up + "listen: {a: b}\n", []string{`2: listen: must be a string, not a mapping`}},
		{"bool for a string", up + "redis: {key_prefix: true}\n", []string{`2: redis.key_prefix: must be a string, not bool "true"`}},
		{"null for a string", up + "admin_listen:\n", []string{`2: admin_listen: must be a string, not empty (null); write "" for an empty string`}},
		{"word for an integer", up + "auth: {bcrypt_cost: twelve}\n", []string{`2: auth.bcrypt_cost: must be an integer, not "twelve"`}},
		{"float for an integer", up + "auth: {bcrypt_cost: 12.5}\n", []string{`2: auth.bcrypt_cost: must be an integer, not float "12.5"`}},
		{"quoted number for an integer", up + "auth:\n  bcrypt_cost: \"12\"\n", []string{`3: auth.bcrypt_cost: must be an integer, not "12"`}},
		{"huge integer", up + "auth: {bcrypt_cost: 99999999999999999999}\n", []string{`2: auth.bcrypt_cost: must be an integer, not float "99999999999999999999"`}},
		{"quoted bool", up + "session: {cookie_secure: \"true\"}\n", []string{`2: session.cookie_secure: must be true or false, not "true"`}},
		{"yes for a bool", up + "session: {cookie_secure: yes}\n", []string{`2: session.cookie_secure: must be true or false, not "yes"`}},
		{"mapping for a list", up + "routes: {path: /}\n", []string{`2: routes: must be a list, not a mapping`}},
		{"list for a mapping", up + "auth: []\n", []string{`2: auth: must be a mapping, not a list`}},
		{"list for upstreams", "upstreams: [http://a]\n", []string{`1: upstreams: must be a mapping of name: URL, not a list`}},
		{"list for an upstream", "upstreams:\n  app: [http://a]\n", []string{`2: upstreams.app: must be a URL or a mapping with url, not a list`}},
		{"number for an upstream", "upstreams:\n  app: 3000\n", []string{`2: upstreams.app: must be a URL or a mapping with url, not int "3000"`}},
		{"null upstream", "upstreams:\n  app:\n", []string{`2: upstreams.app: must be a URL or a mapping with url, not empty (null); write "" for an empty string`}},
		{"upstream mapping without url", "upstreams:\n  app: {dial_timeout: 1s}\n", []string{`2: upstreams.app.url: required`}},
		{"list for a route", up + "routes: [/x]\n", []string{`2: routes[0]: must be a mapping, not "/x"`}},
		{"number key", up + "1: x\n", []string{`2: 1: unknown key`}},
		{"complex key", up + "? [a]\n: x\n", []string{`2: keys must be strings, not a list`}},
		{"merge key", up + "base: &b {listen: 127.0.0.1:1}\n", []string{`2: base: unknown key`}},
		{"merge key use", "upstreams: &u {app: http://a}\nauth:\n  <<: {bcrypt_cost: 10}\n", []string{`3: auth.<<: merge keys (<<) are not supported; repeat the keys`}},
		{"file is a list", "- a\n- b\n", []string{`1: the file must be a mapping of keys, not a list`, `upstreams: required: at least one upstream`}},
		{"second document", up + "---\nlisten: x\n", []string{`2: invalid YAML: only one YAML document is allowed`}},
		{"missing upstreams reported without a line", "listen: 127.0.0.1:1\n", []string{`upstreams: required: at least one upstream`}},
		{"empty file", "", []string{`upstreams: required: at least one upstream`}},
		{"wrong type does not also fail validation", "upstreams:\n  app: http://a\nroutes:\n  - path: /\n    policy: [deny]\n", []string{`5: routes[0].policy: must be a string, not a list`}},
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

func TestSyntaxError(t *testing.T) {
	_, err := Parse("gw.yaml", []byte(up+"listen: [a\nadmin_listen: b\n"), nil)
	got := linesOf(t, err)
	if len(got) != 1 || !strings.HasPrefix(got[0], "gw.yaml:") || !strings.Contains(got[0], "invalid YAML: ") {
		t.Fatalf("problems = %q, want one invalid YAML problem with FILE:LINE", got)
	}
	var ps Problems
	_, err = Parse("gw.yaml", []byte("a: b\n\tc: d\n"), nil)
	ps, _ = err.(Problems)
	if len(ps) != 1 || ps[0].Line != 2 || ps[0].File != "gw.yaml" {
		t.Errorf("problems = %#v, want one on gw.yaml line 2", ps)
	}
}

func TestAliases(t *testing.T) {
	// Anchors and aliases work wherever the value they stand for would.
	c := mustParse(t, "upstreams:\n  app: &u http://a\n  b: *u\nroutes:\n  - &r {path: /, policy: deny}\n  - *r\n", nil)
	if got, want := c.Upstreams["b"].URL, "http://a"; got != want {
		t.Errorf("upstreams.b.url = %q, want %q", got, want)
	}
	if got, want := len(c.Routes), 2; got != want {
		t.Errorf("len(routes) = %d, want %d", got, want)
	}
	// A self-referencing alias is refused, not followed forever.
	got := problemLines(t, up+"trusted_proxies: &a [*a]\n", nil)
	if want := `2: trusted_proxies[0]: must be a string, not a list`; len(got) != 1 || got[0] != want {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    time.Duration
		problem string
	}{
		{"quoted zero", `"0"`, 0, ""},
		{"bare zero", `0`, 0, ""},
		{"zero float", `0.0`, 0, ""},
		{"seconds", `90s`, 90 * time.Second, ""},
		{"hours", `24h`, 24 * time.Hour, ""},
		{"fraction", `1.5h`, 90 * time.Minute, ""},
		{"compound", `1h30m`, 90 * time.Minute, ""},
		{"negative", `-1s`, 0, `2: shutdown_timeout: must not be negative`},
		{"word", `abc`, 0, `2: shutdown_timeout: invalid duration "abc" (use Go syntax such as 90s, 15m or 24h)`},
		{"no unit", `90`, 0, `2: shutdown_timeout: 90 needs a unit, such as 90s`},
		{"bool", `true`, 0, `2: shutdown_timeout: must be a duration such as "90s", not bool "true"`},
		{"list", `[1s]`, 0, `2: shutdown_timeout: must be a duration such as "90s", not a list`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := up + "shutdown_timeout: " + tc.value + "\n"
			if tc.problem != "" {
				got := problemLines(t, src, nil)
				if len(got) != 1 || got[0] != tc.problem {
					t.Errorf("problems = %q, want %q", got, tc.problem)
				}
				return
			}
			c := mustParse(t, src, nil)
			if got := time.Duration(c.ShutdownTimeout); got != tc.want {
				t.Errorf("shutdown_timeout = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEnvExpansion(t *testing.T) {
	env := map[string]string{"LISTEN": "0.0.0.0:8000", "COST": "10", "EMPTY": "", "HOST": "redis.internal", "TRICKY": "a${B}", "TTL": "48h"}
	tests := []struct {
		name    string
		src     string
		check   func(*Config) (got, want any)
		problem string
	}{
		{"whole value", up + "listen: ${LISTEN}\n", func(c *Config) (any, any) { return c.Listen, "0.0.0.0:8000" }, ""},
		{"inside a string", up + "redis: {url: \"redis://${HOST}:6379/0\"}\n", func(c *Config) (any, any) { return c.Redis.URL, "redis://redis.internal:6379/0" }, ""},
		{"plain fills an integer", up + "auth:\n  bcrypt_cost: ${COST}\n", func(c *Config) (any, any) { return c.Auth.BcryptCost, 10 }, ""},
		{"plain fills a duration", up + "session:\n  ttl: ${TTL}\n", func(c *Config) (any, any) { return c.Session.TTL, Duration(48 * time.Hour) }, ""},
		{"quoted stays a string", up + "auth: {bcrypt_cost: \"${COST}\"}\n", nil, `2: auth.bcrypt_cost: must be an integer, not "10"`},
		{"empty is not unset", up + "identity:\n  email_header: ${EMPTY}\n", func(c *Config) (any, any) { return c.Identity.EmailHeader, "" }, ""},
		{"literal", up + "routes: [{path: /, policy: public, name: \"$${x}:\"}]\n", func(c *Config) (any, any) { return c.Routes[0].Name, "${x}:" }, ""},
		{"lone dollar kept", up + "redis: {key_prefix: \"$x$:\"}\n", func(c *Config) (any, any) { return c.Redis.KeyPrefix, "$x$:" }, ""},
		{"value not expanded twice", up + "routes: [{path: /, policy: public, name: \"${TRICKY}\"}]\n", func(c *Config) (any, any) { return c.Routes[0].Name, "a${B}" }, ""},
		{"unset", up + "listen: ${NOPE}\n", nil, `2: listen: environment variable NOPE is not set`},
		{"unset in a list", up + "trusted_proxies:\n  - ${NOPE}\n", nil, `3: trusted_proxies[0]: environment variable NOPE is not set`},
		{"unterminated", up + "listen: \"${LISTEN\"\n", nil, `2: listen: unterminated ${ (write $${ for a literal ${)`},
		{"bad name", up + "listen: \"${1X}\"\n", nil, `2: listen: invalid variable name "1X" in ${...} (write $${ for a literal ${)`},
		{"keys are not expanded", up + "${LISTEN}: x\n", nil, `2: ${LISTEN}: unknown key`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.problem != "" {
				got := problemLines(t, tc.src, env)
				if len(got) != 1 || got[0] != tc.problem {
					t.Errorf("problems = %q, want %q", got, tc.problem)
				}
				return
			}
			got, want := tc.check(mustParse(t, tc.src, env))
			if got != want {
				t.Errorf("value = %v, want %v", got, want)
			}
		})
	}
}

func TestSecretFiles(t *testing.T) {
	const remote = "upstreams: {app: http://a}\nredis:\n  url: redis://localhost:6379\n"
	tests := []struct {
		name    string
		src     string
		check   func(*Config) (got, want any)
		problem string
	}{
		{"password_file, newline trimmed", remote + "  password_file: secrets/redis-password\n",
			func(c *Config) (any, any) { return c.Redis.Password, "s3cret" }, ""},
		{"url_file", "upstreams: {app: http://a}\nredis:\n  url_file: secrets/redis-url\n",
			func(c *Config) (any, any) { return c.Redis.URL, "redis://:urlpw@localhost:6379/0" }, ""},
		{"sentinel password_file, CRLF trimmed", "upstreams: {app: http://a}\nredis:\n  sentinel:\n    master: m\n    addrs: [s1:26379]\n    password_file: secrets/sentinel-password\n",
			func(c *Config) (any, any) { return c.Redis.Sentinel.Password, "sentinelpw" }, ""},
		{"both set", remote + "  password: x\n  password_file: secrets/redis-password\n", nil,
			`5: redis.password_file: set either redis.password or redis.password_file, not both`},
		{"both set, even empty", "upstreams: {app: http://a}\nredis:\n  url: \"\"\n  url_file: secrets/redis-url\n", nil,
			`4: redis.url_file: set either redis.url or redis.url_file, not both`},
		{"missing file", remote + "  password_file: secrets/nope\n", nil,
			`4: redis.password_file: cannot read secrets/nope: no such file or directory`},
		{"empty file", remote + "  password_file: secrets/empty\n", nil,
			`4: redis.password_file: secrets/empty is empty`},
		{"a directory", remote + "  password_file: secrets\n", nil,
			`4: redis.password_file: cannot read secrets: not a regular file`},
		{"problems in a read URL point at url_file", "upstreams: {app: http://a}\nredis:\n  url_file: ca.pem\n", nil,
			`3: redis.url: is not a valid URL`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.problem != "" {
				got := problemLines(t, tc.src, nil)
				if len(got) != 1 || got[0] != tc.problem {
					t.Errorf("problems = %q, want %q", got, tc.problem)
				}
				return
			}
			got, want := tc.check(mustParse(t, tc.src, nil))
			if got != want {
				t.Errorf("value = %v, want %v", got, want)
			}
		})
	}
}

func TestUpstreamForms(t *testing.T) {
	c := mustParse(t, "upstreams:\n  a: http://a:1\n  b: {url: \"https://b\", dial_timeout: 1s, response_header_timeout: 2m, ca_file: ca.pem}\n  c:\n    url: https://c\n    insecure_skip_verify: true\nroutes:\n  - {path: /, policy: deny}\n", nil)
	want := map[string]Upstream{
		"a": {URL: "http://a:1", DialTimeout: Duration(DefaultDialTimeout), ResponseHeaderTimeout: Duration(DefaultResponseHeaderTimeout)},
		"b": {URL: "https://b", DialTimeout: Duration(time.Second), ResponseHeaderTimeout: Duration(2 * time.Minute), CAFile: "testdata/ca.pem"},
		"c": {URL: "https://c", DialTimeout: Duration(DefaultDialTimeout), ResponseHeaderTimeout: Duration(DefaultResponseHeaderTimeout), InsecureSkipVerify: true},
	}
	if !reflect.DeepEqual(c.Upstreams, want) {
		t.Errorf("upstreams = %+v\nwant %+v", c.Upstreams, want)
	}
	got := problemLines(t, "upstreams:\n  b: {url: \"https://b\", ca_file: nope.pem}\n", nil)
	if w := `2: upstreams.b.ca_file: cannot read testdata/nope.pem: no such file or directory`; len(got) != 1 || got[0] != w {
		t.Errorf("problems = %q, want %q", got, w)
	}
}

// TestAliasBomb checks that a small file standing for a huge one (aliases
// to lists of aliases) is cut short, with a bounded list of problems.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("upstreams: {a: http://a}\nx: &m [GET]\nr: &r {path: /, policy: deny, methods: [")
	b.WriteString(strings.Repeat("*m,", 1000))
	b.WriteString("GET]}\nroutes: [")
	b.WriteString(strings.Repeat("*r,", 1000))
	b.WriteString("*r]\n")
	_, err := Parse("bomb.yaml", []byte(b.String()), nil)
	ps, ok := err.(Problems)
	if !ok {
		t.Fatalf("error is %T, want Problems", err)
	}
	if len(ps) != maxProblems+2 {
		t.Errorf("len(problems) = %d, want %d", len(ps), maxProblems+2)
	}
	if !strings.Contains(ps.Error(), "the file expands to more than 100000 values") {
		t.Error("problems do not say the file expands too far")
	}
	if last := ps[len(ps)-1].Error(); !strings.HasPrefix(last, "bomb.yaml: and ") || !strings.HasSuffix(last, " more problems") {
		t.Errorf("last problem = %q, want the count of the rest", last)
	}
}

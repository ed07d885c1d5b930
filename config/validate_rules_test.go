package config

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestValidateServeRules covers the rules a running gateway depends on
// (upstream URLs the proxy can forward to exactly, lifetimes the token
// format can carry, header names the folding compares, Redis options):
// Validate is the only place that checks them, and the constructors trust
// its result, so each must be reported here at its line.
func TestValidateServeRules(t *testing.T) {
	const two = "upstreams:\n  app: http://127.0.0.1:3000\n  api: http://127.0.0.1:4000\n"
	const (
		pathMsg  = "upstreams.app.url: must not have a path: the upstream receives exactly the path that was matched"
		queryMsg = "upstreams.app.url: must not have a query"
		ttlMsg   = "session.ttl: must be at least 2s (a session token carries its end in whole seconds)"
		longMsg  = `must not be longer than 96 characters, not counting "-", "_" and "."`
	)
	long97 := "X-" + strings.Repeat("a", 97-1) // folds to 97 characters
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"upstream base path", "upstreams:\n  app: http://x/base\n", []string{"2: " + pathMsg}},
		{"upstream base path in a mapping", "upstreams:\n  app:\n    url: https://x:8443/api/\n", []string{"3: " + pathMsg}},
		{"upstream encoded path", "upstreams:\n  app: http://x/%2F\n", []string{"2: " + pathMsg}},
		{"upstream query", "upstreams:\n  app: http://x/?a=1\n", []string{"2: " + queryMsg}},
		{"upstream empty query", "upstreams:\n  app: http://x?\n", []string{"2: " + queryMsg}},
		{"upstream user without password", "upstreams:\n  app: http://u@x\n", []string{`2: upstreams.app.url: must not hold credentials (they would not be sent)`}},
		{"upstream ca_file without a certificate", "upstreams:\n  app:\n    url: https://x\n    ca_file: not-a-cert.pem\n", []string{`4: upstreams.app.ca_file: testdata/not-a-cert.pem holds no PEM certificate`}},
		{"upstream ca_file a directory", "upstreams:\n  app:\n    url: https://x\n    ca_file: secrets\n", []string{`4: upstreams.app.ca_file: cannot read testdata/secrets: not a regular file`}},
		{"default_policy public with two upstreams", two + "default_policy: public\n", []string{
			`4: default_policy: public needs exactly one upstream (an unmatched request names none); use deny, or a last route for "/" with its upstream`}},
		{"default_policy authenticated with two upstreams", two + "routes:\n  - {path: /, policy: deny}\ndefault_policy: authenticated\n", []string{
			`6: default_policy: authenticated needs exactly one upstream (an unmatched request names none); use deny, or a last route for "/" with its upstream`}},
		{"ttl 1s", up + "session:\n  ttl: 1s\n", []string{"3: " + ttlMsg}},
		{"ttl just under 2s", up + "session:\n  ttl: 1999ms\n", []string{"3: " + ttlMsg}},
		{"ttl negative (the decoder says it, once)", up + "session:\n  ttl: -1h\n", []string{`3: session.ttl: must not be negative`}},
		{"login_failure_window under 1s", up + "auth:\n  login_failure_window: 999ms\n", []string{`3: auth.login_failure_window: must be at least 1s`}},
		{"idle_timeout under 1s", up + "session:\n  ttl: 1h\n  idle_timeout: 500ms\n", []string{`4: session.idle_timeout: must be 0 (no idle limit) or at least 1s`}},
		{"idle_timeout under 1ms", up + "session:\n  idle_timeout: 1us\n", []string{`3: session.idle_timeout: must be 0 (no idle limit) or at least 1s`}},
		{"user_id_header too long", up + "identity:\n  user_id_header: " + long97 + "\n", []string{"3: identity.user_id_header: " + longMsg}},
		{"email_header too long", up + "identity:\n  email_header: " + long97 + "\n", []string{"3: identity.email_header: " + longMsg}},
		{"user_id_header folds to nothing", up + "identity:\n  user_id_header: -_.\n", []string{`3: identity.user_id_header: "-_." needs a character other than "-", "_" and "."`}},
		{"email_header folds like user_id_header", up + "identity:\n  email_header: X_User.ID\n", []string{`3: identity.email_header: must differ from identity.user_id_header`}},
		{"redis url unknown option", up + "redis:\n  url: redis://r:6379/0?foo=1\n", []string{`3: redis.url: unknown option "foo" in the query`}},
		{"redis url option never echoes the password", up + "redis:\n  url: redis://:hunter2@r?hunter2=hunter2\n", []string{`3: redis.url: unknown option "hunter2" in the query`}},
		{"redis url bad duration", up + "redis:\n  url: redis://r?dial_timeout=soon\n", []string{`3: redis.url: option "dial_timeout" must be a duration such as 5s`}},
		{"redis url bad integer", up + "redis:\n  url: redis://r?pool_size=big\n", []string{`3: redis.url: option "pool_size" must be an integer`}},
		{"redis url bad bool", up + "redis:\n  url: rediss://r?skip_verify=yes\n", []string{`3: redis.url: option "skip_verify" must be true or false`}},
		{"redis url skip_verify without TLS", up + "redis:\n  url: redis://r?skip_verify=true\n", []string{`3: redis.url: unknown option "skip_verify" in the query`}},
		{"redis url old and new alias", up + "redis:\n  url: redis://r?conn_max_idle_time=1m&idle_timeout=1m\n", []string{`3: redis.url: unknown option "idle_timeout" in the query`}},
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

// TestValidateServeLimitsValid checks the edges of those rules that are
// still allowed.
func TestValidateServeLimitsValid(t *testing.T) {
	const two = "upstreams:\n  app: http://127.0.0.1:3000\n  api: http://127.0.0.1:4000\n"
	tests := []struct{ name, src string }{
		{"upstream with a bare slash", "upstreams:\n  app: http://x:3000/\n"},
		{"upstream ca_file with a certificate", "upstreams:\n  app: {url: https://x, ca_file: ca.pem}\n"},
		{"default_policy public with one upstream", up + "default_policy: authenticated\n"},
		{"default_policy deny with two upstreams", two + "default_policy: deny\nroutes:\n  - {path: /, policy: public, upstream: api}\n"},
		{"ttl 2s", up + "session:\n  ttl: 2s\n  idle_timeout: 1s\n"},
		{"login_failure_window 1s", up + "auth:\n  login_failure_window: 1s\n"},
		{"identity header of 96 folded characters", up + "identity:\n  user_id_header: X-" + strings.Repeat("a", 95) + "\n"},
		{"identity header longer only by separators", up + "identity:\n  user_id_header: " + strings.Repeat("a-", 96) + "\n"},
		{"redis url options", up + "redis:\n  url: rediss://r:6380/1?protocol=3&client_name=gh&dial_timeout=5&read_timeout=2s&pool_fifo=&skip_verify=false&db=1\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := problemLines(t, tc.src, nil); got != nil {
				t.Errorf("problems = %q, want none", got)
			}
		})
	}
}

// TestRedisURLOptionsMatchGoRedis keeps the option table in step with the
// go-redis version in go.mod: whatever its ParseURL refuses in a query,
// Validate refuses, and the other way round.
func TestRedisURLOptionsMatchGoRedis(t *testing.T) {
	queries := []string{
		"", "db=2", "db=x", "protocol=3", "protocol=three", "client_name=a%20b",
		"max_retries=-1", "min_retry_backoff=8ms", "max_retry_backoff=1", "dial_timeout=0",
		"read_timeout=-1", "write_timeout=1h", "write_timeout=1y", "pool_fifo=1", "pool_fifo=true",
		"pool_fifo=no", "pool_size=10", "pool_timeout=4s", "min_idle_conns=1", "max_idle_conns=2",
		"max_active_conns=3", "max_concurrent_dials=4", "pipeline_pool_size=-1",
		"pipeline_read_buffer_size=1024", "pipeline_write_buffer_size=x", "conn_max_idle_time=1m",
		"idle_timeout=1m", "conn_max_idle_time=1m&idle_timeout=1m", "conn_max_lifetime=1h",
		"max_conn_age=1h", "conn_max_lifetime=1h&max_conn_age=1h", "conn_max_lifetime=1h&conn_max_lifetime_jitter=1m",
		"skip_verify=true", "skip_verify=maybe", "unknown=1", "pool_size=", "pool_size=1&pool_size=x",
		"pool_size=x&pool_size=1", "PoolSize=1",
	}
	for _, scheme := range []string{"redis", "rediss"} {
		for _, q := range queries {
			raw := scheme + "://r:6379/0?" + q
			_, perr := redis.ParseURL(raw)
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("url.Parse(%q): %v", raw, err)
			}
			msg := checkRedisURLOptions(u)
			if (perr == nil) != (msg == "") {
				t.Errorf("%s: go-redis says %v, Validate says %q", raw, perr, msg)
			}
		}
	}
}

// TestValidateServeRulesCodeBuilt: a Config built in code (as the other
// packages' tests build theirs) meets the same rules, without lines.
func TestValidateServeRulesCodeBuilt(t *testing.T) {
	c := Default()
	c.Upstreams = map[string]Upstream{"a": {URL: "http://a/x"}, "b": {URL: "http://b?q"}}
	c.DefaultPolicy = Public
	c.Session.TTL = Duration(1e9)
	c.Identity.EmailHeader = "x-user_id"
	got := linesOf(t, c.Validate())
	want := []string{
		"upstreams.a.url: must not have a path: the upstream receives exactly the path that was matched",
		"upstreams.b.url: must not have a query",
		`default_policy: public needs exactly one upstream (an unmatched request names none); use deny, or a last route for "/" with its upstream`,
		"session.ttl: must be at least 2s (a session token carries its end in whole seconds)",
		"identity.email_header: must differ from identity.user_id_header",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestUpstreamFor(t *testing.T) {
	one := mustParse(t, up+"routes:\n  - {path: /d, policy: deny}\n  - {path: /, policy: public}\n  - {path: /n, policy: deny, upstream: app}\n", nil)
	two := mustParse(t, "upstreams: {a: http://a, b: http://b}\nroutes:\n  - {path: /d, policy: deny}\n  - {path: /, policy: public, upstream: b}\n", nil)
	tests := []struct {
		name string
		c    *Config
		i    int
		want string
	}{
		{"deny without upstream", one, 0, ""},
		{"the only upstream", one, 1, "app"},
		{"deny naming one", one, 2, "app"},
		{"named among several", two, 1, "b"},
		{"deny among several", two, 0, ""},
		{"out of range", one, 3, ""},
		{"negative", one, -1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.UpstreamFor(tc.i); got != tc.want {
				t.Errorf("UpstreamFor(%d) = %q, want %q", tc.i, got, tc.want)
			}
		})
	}
}

func TestRouteMethods(t *testing.T) {
	r := Route{Methods: []string{"get", "Post", "GET"}}
	if got, want := r.UpperMethods(), []string{"GET", "POST"}; !reflect.DeepEqual(got, want) {
		t.Errorf("UpperMethods = %q, want %q", got, want)
	}
	if got := (Route{}).UpperMethods(); got != nil {
		t.Errorf("UpperMethods of no methods = %q, want nil", got)
	}
	if r.Methods[0] != "get" {
		t.Errorf("UpperMethods changed Methods: %q", r.Methods)
	}
	if got := (Route{}).MatchMode(); got != MatchPrefix {
		t.Errorf("MatchMode of empty = %q, want %q", got, MatchPrefix)
	}
}

func TestRedisDescriptionRedacts(t *testing.T) {
	tests := []struct {
		name  string
		redis Redis
		want  string
	}{
		{"embedded", Redis{KeyPrefix: "g:"}, `embedded in-memory store (development only: data is lost at exit), key prefix "g:"`},
		{"url password", Redis{URL: "redis://:hunter2@r:6379/0", KeyPrefix: "g:"}, `redis redis://:xxxxx@r:6379/0, key prefix "g:"`},
		{"password key", Redis{URL: "redis://r:6379", Password: "hunter2", KeyPrefix: "g:"}, `redis redis://r:6379 (password set), key prefix "g:"`},
		{"unparsable url", Redis{URL: "redis://:hunter2@r :6379", KeyPrefix: "g:"}, `redis (invalid URL), key prefix "g:"`},
		{"sentinel", Redis{Sentinel: &Sentinel{Master: "m", Addrs: []string{"a:1", "b:1"}, Password: "hunter2"}, KeyPrefix: "g:"}, `redis sentinel master "m" via a:1,b:1 (sentinel password set), key prefix "g:"`},
		{"cluster", Redis{Cluster: &Cluster{Addrs: []string{"a:1"}}, KeyPrefix: "g:"}, `redis cluster via a:1, key prefix "g:"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{Redis: tc.redis}
			got := c.RedisDescription()
			if got != tc.want {
				t.Errorf("RedisDescription = %q, want %q", got, tc.want)
			}
			if strings.Contains(got, "hunter2") {
				t.Errorf("RedisDescription shows the password: %q", got)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	c, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := `listen 0.0.0.0:8443, admin off
store: redis redis://:xxxxx@localhost:6379/0, key prefix "gh:"
upstreams:
  app: http://127.0.0.1:3000 (dial 5s, response headers 1m0s)
  demo: builtin:echo
  legacy: https://10.0.0.5:8443/ (dial 2s, response headers 1m0s, ca testdata/ca.pem)
routes (first match wins):
  0 - prefix /assets/ methods=* policy=public upstream=app
  1 admin-writes prefix /admin methods=POST,DELETE policy=deny upstream=-
  2 - exact /legacy methods=* policy=authenticated upstream=legacy
default_policy: deny
`
	if got := c.Summary(); got != want {
		t.Errorf("Summary:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(c.Summary(), "urlpw") {
		t.Error("Summary shows the Redis password")
	}
}

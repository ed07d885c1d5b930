package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/config"
)

func matchConfig() *config.Config {
	cfg := config.Default()
	cfg.Upstreams = map[string]config.Upstream{"app": {URL: "http://127.0.0.1:1"}, "api": {URL: "http://127.0.0.1:2"}}
	cfg.Routes = []config.Route{
		{Path: "/assets/", Policy: config.Public, Upstream: "app"},
		{Path: "/admin", Name: "admin-writes", Methods: []string{"post", "DELETE"}, Policy: config.Deny},
		{Path: "/admin", Methods: []string{"GET"}, Policy: config.Authenticated, Upstream: "app"},
		{Path: "/health", Match: config.MatchExact, Policy: config.Public, Upstream: "api"},
		{Path: "/api", Methods: []string{"OPTIONS"}, Policy: config.Public, Upstream: "api"},
		{Path: "/api", Policy: config.Authenticated, Upstream: "api"},
	}
	return cfg
}

func TestMatch(t *testing.T) {
	rs := NewRoutes(matchConfig())
	tests := []struct {
		method, path string
		index        int
		name         string
		policy       config.Policy
	}{
		{"GET", "/assets/x", 0, "0", config.Public},
		{"GET", "/assets/", 0, "0", config.Public},
		{"GET", "/assets", -1, "default", config.Deny},
		{"POST", "/admin", 1, "admin-writes", config.Deny},
		{"DELETE", "/admin/x", 1, "admin-writes", config.Deny},
		{"GET", "/admin", 2, "2", config.Authenticated},
		{"HEAD", "/admin/", 2, "2", config.Authenticated},
		{"PUT", "/admin", -1, "default", config.Deny},
		{"GET", "/administrator", -1, "default", config.Deny},
		{"GET", "/health", 3, "3", config.Public},
		{"GET", "/health/x", -1, "default", config.Deny},
		{"OPTIONS", "/api/x", 4, "4", config.Public},
		{"GET", "/api/x", 5, "5", config.Authenticated},
		{"GET", "/API/x", -1, "default", config.Deny},
	}
	for _, tc := range tests {
		d := rs.Match(tc.method, tc.path)
		if d.Index != tc.index || d.Name != tc.name || d.Policy != tc.policy {
			t.Errorf("Match(%s %s) = %d %q %s, want %d %q %s", tc.method, tc.path, d.Index, d.Name, d.Policy, tc.index, tc.name, tc.policy)
		}
	}
	if n := testing.AllocsPerRun(100, func() { rs.Match("GET", "/api/x") }); n != 0 {
		t.Errorf("Match allocates %v times, want 0", n)
	}
}

func TestExplain(t *testing.T) {
	cfg := matchConfig()
	tests := []struct{ method, url, want string }{
		{"get", "/assets/app.js", "rule 0 name=0 path=/assets/ match=prefix methods=* policy=public upstream=app"},
		{"POST", "http://gw.example/admin/x?y=1", "rule 1 name=admin-writes path=/admin match=prefix methods=POST,DELETE policy=deny upstream=-"},
		{"GET", "/health", "rule 3 name=3 path=/health match=exact methods=* policy=public upstream=api"},
		{"GET", "/nothing", "no rule: default_policy deny"},
		{"GET", "/assets/%2e%2e/admin", "bad path: dot segment"},
		{"GET", "/a%2fb", `bad path: encoded / or \`},
		{"GET", "/login", "endpoint login (answered by the gateway itself)"},
		{"GET", "/_gatehouse/verify/x", "endpoint verify (answered by the gateway itself)"},
		{"TRACE", "/assets/x", "method not allowed: TRACE"},
		{"CONNECT", "/login", "method not allowed: CONNECT"},
		// The gateway answers the forward-auth endpoint for every method.
		{"CONNECT", "/_gatehouse/verify/x", "endpoint verify (answered by the gateway itself)"},
	}
	for _, tc := range tests {
		got, err := Explain(cfg, tc.method, tc.url)
		if err != nil || got != tc.want {
			t.Errorf("Explain(%s %s) = %q, %v; want %q", tc.method, tc.url, got, err, tc.want)
		}
	}
}

// naiveMatch is the reference matcher: the documented words, written the
// slow obvious way.
func naiveMatch(cfg *config.Config, method, path string) int {
	for i, r := range cfg.Routes {
		okPath := false
		if r.Match == config.MatchExact {
			okPath = path == r.Path
		} else if strings.HasSuffix(r.Path, "/") {
			okPath = strings.HasPrefix(path, r.Path)
		} else {
			okPath = path == r.Path || strings.HasPrefix(path, r.Path+"/")
		}
		if !okPath {
			continue
		}
		if len(r.Methods) == 0 {
			return i
		}
		for _, m := range r.Methods {
			m = strings.ToUpper(m)
			if m == method || (m == "GET" && method == "HEAD") {
				return i
			}
		}
	}
	return -1
}

// FuzzMatch: the matcher picks the rule the reference picks, and through
// the whole gateway the upstream receives exactly the matched path.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"/", "/assets/x", "/assets", "/admin", "/admin/", "//admin", "/%61dmin", "/administrator", "/health", "/health/", "/api/x", "/caf%C3%A9", "/a%20b?x=1"} {
		f.Add("GET", s)
		f.Add("post", s)
	}
	cfg := matchConfig()
	cfg.Routes = append(cfg.Routes, config.Route{Path: "/", Policy: config.Public, Upstream: "app"})
	rs := NewRoutes(cfg)
	var mu sync.Mutex
	var received string
	gw, err := New(Options{Config: cfg, Auth: newFakeAuth()})
	if err != nil {
		f.Fatal(err)
	}
	capture := handlerTransport{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received = r.RequestURI
		mu.Unlock()
	})}
	for _, up := range gw.upstreams {
		up.proxy.Transport = capture
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		method = strings.ToUpper(method)
		if method == "" || strings.ContainsAny(method, " \t\r\n/") || method == "CONNECT" || method == "TRACE" {
			return
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		clean, err := CheckPath(u)
		if err != nil {
			return
		}
		want := naiveMatch(cfg, method, clean)
		d := rs.Match(method, clean)
		if d.Index != want {
			t.Fatalf("Match(%s %q) = %d, reference %d", method, clean, d.Index, want)
		}
		if want < 0 || cfg.Routes[want].Policy != config.Public || endpointName(cfg, clean) != "" {
			return
		}
		mu.Lock()
		received = ""
		mu.Unlock()
		r := &http.Request{Method: method, URL: u, RequestURI: target, Host: "gw.example", Header: http.Header{}, RemoteAddr: "192.0.2.1:1234", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s %q: status %d", method, target, rec.Code)
		}
		mu.Lock()
		got := received
		mu.Unlock()
		path, _, _ := strings.Cut(got, "?")
		gu, err := url.ParseRequestURI(path)
		if err != nil {
			t.Fatalf("%s %q: upstream target %q does not parse: %v", method, target, got, err)
		}
		if gu.Path != clean || gu.RawPath != "" {
			t.Fatalf("%s %q: upstream path %q (raw %q), matched %q", method, target, gu.Path, gu.RawPath, clean)
		}
		if strconv.Itoa(d.Index) != d.Name && d.Name != cfg.Routes[d.Index].Name {
			t.Fatalf("route label %q for rule %d", d.Name, d.Index)
		}
	})
}

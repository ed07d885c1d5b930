package proxy

import (
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// TestForwardAuth sends the request shapes of each forward-auth caller.
func TestForwardAuth(t *testing.T) {
	tg := newTestGateway(t, func(c *config.Config) {
		c.Auth.PublicURL = "https://auth.example.com/"
		c.Routes = append([]config.Route{{Path: "/writes", Methods: []string{"POST"}, Policy: config.Deny}}, c.Routes...)
	})
	type hdr = map[string]string
	tests := []struct {
		name    string
		method  string
		path    string // of the verify request
		headers hdr
		session bool
		status  int
		rd      string // Location for a 302
	}{
		// nginx auth_request (X-Original-URI), ingress-nginx (X-Original-URL + X-Original-Method).
		{"nginx authenticated ok", "GET", "/_gatehouse/verify", hdr{"X-Original-URI": "/app/x?y=1"}, true, 200, ""},
		{"nginx no session", "GET", "/_gatehouse/verify", hdr{"X-Original-URI": "/app/x"}, false, 401, ""},
		{"nginx public", "GET", "/_gatehouse/verify", hdr{"X-Original-URI": "/public/x"}, false, 200, ""},
		{"nginx deny", "GET", "/_gatehouse/verify", hdr{"X-Original-URI": "/admin"}, true, 403, ""},
		{"nginx bad path", "GET", "/_gatehouse/verify", hdr{"X-Original-URI": "/public/%2e%2e/admin"}, true, 403, ""},
		{"nginx broken escape", "GET", "/_gatehouse/verify", hdr{"X-Original-URI": "/public/%zz"}, true, 403, ""},
		{"nginx relative", "GET", "/_gatehouse/verify", hdr{"X-Original-URI": "admin"}, true, 403, ""},
		{"ingress-nginx ok", "GET", "/_gatehouse/verify", hdr{"X-Original-URL": "https://app.example.com/app?x=1", "X-Original-Method": "GET"}, true, 200, ""},
		{"ingress-nginx method deny", "GET", "/_gatehouse/verify", hdr{"X-Original-URL": "https://app.example.com/writes", "X-Original-Method": "post"}, true, 403, ""},
		{"ingress-nginx method other", "GET", "/_gatehouse/verify", hdr{"X-Original-URL": "https://app.example.com/writes", "X-Original-Method": "GET"}, true, 200, ""},
		{"ingress-nginx bad URL", "GET", "/_gatehouse/verify", hdr{"X-Original-URL": "https://app.example.com/a/../admin"}, true, 403, ""},
		{"ingress-nginx fragment", "GET", "/_gatehouse/verify", hdr{"X-Original-URL": "https://app.example.com/public/x#/../../admin"}, true, 403, ""},
		{"ingress-nginx empty fragment", "GET", "/_gatehouse/verify", hdr{"X-Original-URL": "https://app.example.com/public/x?#/../../admin"}, false, 403, ""},
		{"ingress-nginx not absolute", "GET", "/_gatehouse/verify", hdr{"X-Original-URL": "/admin"}, true, 403, ""},
		{"ingress-nginx no session never 3xx", "GET", "/_gatehouse/verify", hdr{"X-Original-URL": "https://app.example.com/app", "Accept": "text/html"}, false, 401, ""},
		// Traefik ForwardAuth and Caddy forward_auth.
		{"traefik ok", "GET", "/_gatehouse/verify", hdr{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/app", "X-Forwarded-Host": "app.example.com", "X-Forwarded-Proto": "https"}, true, 200, ""},
		{"traefik deny method", "GET", "/_gatehouse/verify", hdr{"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/writes/x"}, true, 403, ""},
		{"traefik no session", "GET", "/_gatehouse/verify", hdr{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/app"}, false, 401, ""},
		{"traefik method list", "GET", "/_gatehouse/verify", hdr{"X-Forwarded-Method": "GET, POST", "X-Forwarded-Uri": "/writes"}, true, 403, ""},
		{"traefik trace", "GET", "/_gatehouse/verify", hdr{"X-Forwarded-Method": "TRACE", "X-Forwarded-Uri": "/app"}, true, 403, ""},
		{"traefik redirect", "GET", "/_gatehouse/verify?redirect=1", hdr{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/app/p?q=1", "X-Forwarded-Host": "app.example.com", "X-Forwarded-Proto": "https", "Accept": "text/html"}, false, 302,
			"https://auth.example.com/login?rd=https%3A%2F%2Fapp.example.com%2Fapp%2Fp%3Fq%3D1"},
		{"caddy redirect own host", "GET", "/_gatehouse/verify?redirect=1", hdr{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/app", "Accept": "text/html"}, false, 302,
			"https://auth.example.com/login?rd=http%3A%2F%2Fgw.example%2Fapp"},
		{"redirect not for API", "GET", "/_gatehouse/verify?redirect=1", hdr{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/app", "Accept": "application/json"}, false, 401, ""},
		{"redirect not for POST", "GET", "/_gatehouse/verify?redirect=1", hdr{"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/app", "Accept": "text/html"}, false, 401, ""},
		{"caddy bad path", "GET", "/_gatehouse/verify", hdr{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/public/..;/admin"}, true, 403, ""},
		{"caddy uri without method is GET", "GET", "/_gatehouse/verify", hdr{"X-Forwarded-Uri": "/writes"}, true, 200, ""},
		// Envoy ext_authz with path_prefix: any method, path appended.
		{"envoy ok", "POST", "/_gatehouse/verify/app/x", nil, true, 200, ""},
		{"envoy bare is /", "GET", "/_gatehouse/verify", nil, true, 200, ""},
		{"envoy deny", "POST", "/_gatehouse/verify/writes", nil, true, 403, ""},
		{"envoy admin", "DELETE", "/_gatehouse/verify/admin/x", nil, true, 403, ""},
		{"envoy no session", "PUT", "/_gatehouse/verify/app", nil, false, 401, ""},
		{"envoy public", "PUT", "/_gatehouse/verify/public/x", nil, false, 200, ""},
		{"envoy bad path", "GET", "/_gatehouse/verify/public/%2e%2e/admin", nil, true, 403, ""},
		{"envoy encoded slash", "GET", "/_gatehouse/verify/public%2fx", nil, true, 403, ""},
		{"not the verify path", "GET", "/_gatehouse/verifyx", nil, true, 200, ""},
		// Any method on the verify path answers 200/401/403/503 only: an
		// original CONNECT is refused like TRACE, not with 405.
		{"envoy connect", "CONNECT", "/_gatehouse/verify/app", nil, true, 403, ""},
		{"envoy connect public", "CONNECT", "/_gatehouse/verify/public/x", nil, false, 403, ""},
		// The host goes into rd: one that is not a plain host[:port] would
		// change what the sign-in page sends the browser back to.
		{"traefik host with path", "GET", "/_gatehouse/verify?redirect=1", hdr{"X-Forwarded-Uri": "/app", "X-Forwarded-Host": "evil.example/x?", "Accept": "text/html"}, false, 403, ""},
		{"traefik host with userinfo", "GET", "/_gatehouse/verify?redirect=1", hdr{"X-Forwarded-Uri": "/app", "X-Forwarded-Host": "app.example.com@evil.example", "Accept": "text/html"}, false, 403, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg.up.reset()
			var b strings.Builder
			b.WriteString(tc.method + " " + tc.path + " HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n")
			for k, v := range tc.headers {
				b.WriteString(k + ": " + v + "\r\n")
			}
			if tc.session {
				// Same-origin: these rows are about matching; the CSRF
				// check of the original request has its own test
				// (TestForwardAuthCSRF).
				b.WriteString("Cookie: gatehouse_session=" + tokAlice + "\r\nSec-Fetch-Site: same-origin\r\n")
			}
			b.WriteString("\r\n")
			res, body := rawResponse(t, hostOf(tg.srv), tc.method, b.String())
			if res.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d (%s)", res.StatusCode, tc.status, body)
			}
			if tc.name == "not the verify path" {
				if _, ok := tg.up.last(); !ok {
					t.Errorf("/_gatehouse/verifyx was not proxied")
				}
				return
			}
			if _, ok := tg.up.last(); ok {
				t.Errorf("a verify request reached the upstream")
			}
			switch tc.status {
			case 200:
				wantID := ""
				if tc.session {
					wantID = aliceID
				}
				if res.Header.Get("X-User-Id") != wantID {
					t.Errorf("X-User-Id = %q, want %q", res.Header.Get("X-User-Id"), wantID)
				}
				if tc.session && res.Header.Get("X-User-Email") != aliceEmail {
					t.Errorf("X-User-Email = %q", res.Header.Get("X-User-Email"))
				}
			case 302:
				if loc := res.Header.Get("Location"); loc != tc.rd {
					t.Errorf("Location = %q, want %q", loc, tc.rd)
				}
			case 401:
				if res.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
				checkError(t, res, body, apierror.Unauthenticated)
			case 403:
				checkError(t, res, body, apierror.Forbidden)
			}
		})
	}
}

func TestForwardAuthStore(t *testing.T) {
	tg := newTestGateway(t, nil)
	tg.auth.down.Store(true)
	req := tg.newRequest(t, "GET", "/_gatehouse/verify")
	req.Header.Set("X-Forwarded-Uri", "/app")
	req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokAlice})
	res, body := tg.do(t, req)
	if res.StatusCode != 503 {
		t.Fatalf("status %d, want 503", res.StatusCode)
	}
	checkError(t, res, body, apierror.StoreUnavailable)
	if len(res.Header["Set-Cookie"]) != 0 {
		t.Errorf("cookie touched on 503: %q", res.Header["Set-Cookie"])
	}
	// Public routes still answer 200, without identity.
	req = tg.newRequest(t, "GET", "/_gatehouse/verify")
	req.Header.Set("X-Forwarded-Uri", "/public/x")
	req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokAlice})
	res, _ = tg.do(t, req)
	if res.StatusCode != 200 || res.Header.Get("X-User-Id") != "" {
		t.Errorf("public while store down: %d, X-User-Id %q", res.StatusCode, res.Header.Get("X-User-Id"))
	}
}

// TestForwardAuthCSRF: the original request of a forward-auth check gets
// the CSRF check of a proxied one (contract: "checked and matched exactly
// like a proxied one"), judged with the original method and host and the
// Origin / Sec-Fetch-Site headers that the proxy in front passed along.
// Before the fix a cross-site POST carrying the session cookie was allowed
// (200) through Traefik and nginx, while the same POST proxied got 403.
func TestForwardAuthCSRF(t *testing.T) {
	tg := newTestGateway(t, func(c *config.Config) {
		c.CSRF.TrustedOrigins = []string{"https://trusted.example.com"}
	})
	type hdr = map[string]string
	traefik := func(method string, extra hdr) hdr {
		h := hdr{"X-Forwarded-Method": method, "X-Forwarded-Uri": "/app/items",
			"X-Forwarded-Host": "app.example.com", "X-Forwarded-Proto": "https"}
		maps.Copy(h, extra)
		return h
	}
	ingress := func(method string, extra hdr) hdr {
		h := hdr{"X-Original-Method": method, "X-Original-URL": "https://app.example.com/app/items"}
		maps.Copy(h, extra)
		return h
	}
	nginx := func(method string, extra hdr) hdr {
		// auth_request: the subrequest carries the browser's Host.
		h := hdr{"X-Original-Method": method, "X-Original-URI": "/app/items", "Host": "app.example.com"}
		maps.Copy(h, extra)
		return h
	}
	evil := hdr{"Origin": "https://evil.example"}
	crossSite := hdr{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
	sameOrigin := hdr{"Sec-Fetch-Site": "same-origin", "Origin": "https://app.example.com"}
	tests := []struct {
		name    string
		headers hdr
		cookie  bool
		bearer  bool
		status  int
	}{
		{"traefik cross-site POST", traefik("POST", crossSite), true, false, 403},
		{"traefik old browser foreign Origin DELETE", traefik("DELETE", evil), true, false, 403},
		{"traefik same-origin POST", traefik("POST", sameOrigin), true, false, 200},
		// The verify request's own Host is the gateway's: the Origin is
		// compared with the original host, not with it.
		{"traefik Origin of the original host", traefik("PUT", hdr{"Origin": "https://app.example.com"}), true, false, 200},
		{"traefik trusted origin", traefik("POST", hdr{"Sec-Fetch-Site": "cross-site", "Origin": "https://trusted.example.com"}), true, false, 200},
		{"traefik cross-site GET", traefik("GET", crossSite), true, false, 200},
		{"traefik cross-site POST bearer only", traefik("POST", crossSite), false, true, 200},
		{"traefik cross-site POST no credential", traefik("POST", crossSite), false, false, 401},
		{"ingress-nginx cross-site PATCH", ingress("PATCH", crossSite), true, false, 403},
		{"ingress-nginx same-origin PATCH", ingress("PATCH", sameOrigin), true, false, 200},
		{"ingress-nginx foreign Origin POST bearer only", ingress("POST", evil), false, true, 200},
		{"nginx foreign Origin POST", nginx("POST", evil), true, false, 403},
		{"nginx same Origin POST", nginx("POST", hdr{"Origin": "https://app.example.com"}), true, false, 200},
		{"nginx cross-site HEAD", nginx("HEAD", crossSite), true, false, 200},
		{"nginx cross-site POST bearer only", nginx("POST", crossSite), false, true, 200},
		// Envoy: the original is the verify request itself.
		{"envoy cross-site POST", hdr{"Sec-Fetch-Site": "cross-site"}, true, false, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := "/_gatehouse/verify"
			if strings.HasPrefix(tc.name, "envoy") {
				path += "/app/items"
			}
			req := tg.newRequest(t, "GET", path)
			if strings.HasPrefix(tc.name, "envoy") {
				req.Method = "POST"
			}
			for k, v := range tc.headers {
				if k == "Host" {
					req.Host = v
					continue
				}
				req.Header.Set(k, v)
			}
			if tc.cookie {
				req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokAlice})
			}
			if tc.bearer {
				req.Header.Set("Authorization", "Bearer "+tokAlice)
			}
			res, body := tg.do(t, req)
			if res.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d (%s)", res.StatusCode, tc.status, body)
			}
			switch tc.status {
			case 200:
				if got := res.Header.Get("X-User-Id"); got != aliceID {
					t.Errorf("X-User-Id = %q, want %q", got, aliceID)
				}
			case 403:
				checkError(t, res, body, apierror.Forbidden)
			}
		})
	}

	// csrf.protect_upstream off: forward-auth does not check either.
	off := newTestGateway(t, func(c *config.Config) { c.CSRF.ProtectUpstream = false })
	req := off.newRequest(t, "GET", "/_gatehouse/verify")
	for k, v := range traefik("POST", crossSite) {
		req.Header.Set(k, v)
	}
	req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokAlice})
	if res, body := off.do(t, req); res.StatusCode != 200 {
		t.Errorf("protect_upstream off: status = %d, want 200 (%s)", res.StatusCode, body)
	}
}

// TestForwardAuthCSRFMetric: a refused cross-site original counts as a
// cross_origin decision, though it is answered 403 forbidden.
func TestForwardAuthCSRFMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	tg := newTestGateway(t, nil, func(o *Options) { o.Metrics = m })
	req := tg.newRequest(t, "GET", "/_gatehouse/verify")
	req.Header.Set("X-Forwarded-Method", "POST")
	req.Header.Set("X-Forwarded-Uri", "/app")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokAlice})
	if res, _ := tg.do(t, req); res.StatusCode != 403 {
		t.Fatalf("status = %d, want 403", res.StatusCode)
	}
	if got := metricValue(t, m.decisions[decCrossOrigin]); got != 1 {
		t.Errorf("cross_origin decisions = %v, want 1", got)
	}
	if got := metricValue(t, m.decisions[decForbidden]); got != 0 {
		t.Errorf("forbidden decisions = %v, want 0", got)
	}
}

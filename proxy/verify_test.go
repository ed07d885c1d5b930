package proxy

import (
	"net/http"
	"strings"
	"testing"

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
				// Sec-Fetch-Site cross-site: the verify endpoint does no CSRF check.
				b.WriteString("Cookie: gatehouse_session=" + tokAlice + "\r\nSec-Fetch-Site: cross-site\r\n")
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

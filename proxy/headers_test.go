package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/config"
)

// folded lower-cases name and drops '-', '_' and '.'.
func folded(name string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		if c != '-' && c != '_' && c != '.' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// TestIdentityHeaderSpoofing sends every spelling of the identity and
// re-routing headers on a raw connection (so their keys stay as written)
// and checks the upstream's raw header map.
func TestIdentityHeaderSpoofing(t *testing.T) {
	tg := newTestGateway(t, func(c *config.Config) {
		c.Identity = config.Identity{UserIDHeader: "X-Auth-Uid", EmailHeader: "X-Auth-Mail"}
	})
	spoofed := []string{
		"X-User-Id", "x-user-id", "X_User_Id", "X.User.Id", "x_user.id", "X-USER-ID", "X-User-Email", "X_User_Email",
		"X-User-Groups", "x.user.groups",
		"X-Auth-Uid", "x_auth_uid", "X-Auth-Mail", "X.Auth.Mail",
		"Remote-User", "Remote_User", "X-Remote-User", "X-Forwarded-User", "X_Forwarded_Email", "X-Auth-Request-User", "X-Auth-Request-Email",
		"X-Original-URL", "X_Original_URL", "X-Rewrite-URL", "X-Forwarded-Prefix", "X-HTTP-Method-Override", "X_HTTP_Method_Override",
		"X-HTTP-Method", "X-Method-Override", "X-Original-URI", "X-Forwarded-Uri", "X-Forwarded-Method",
		"X_Forwarded_For", "X.Real.IP", "X_Forwarded_Host", "True-Client-IP", "X-Client-IP", "Forwarded", "X-Real-IP",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port",
		"X-Host", "X_Host", "X-Original-Host", "X.Original.Host", "X-Envoy-Original-Path", "x_envoy_original_path",
		"X-Webauth-User", "X-WEBAUTH-USER", "X-Webauth-Email", "X_Webauth_Email",
	}
	for _, session := range []bool{false, true} {
		tg.up.reset()
		var b strings.Builder
		b.WriteString("GET /public/x HTTP/1.1\r\nHost: gw.example\r\n")
		for _, h := range spoofed {
			b.WriteString(h + ": evil\r\n")
		}
		// Duplicates and a Connection header naming the gateway's own.
		b.WriteString("X-Auth-Uid: evil2\r\nConnection: close, X-Auth-Uid, X-Auth-Mail, X-Real-IP, X-Forwarded-For\r\n")
		b.WriteString("Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n")
		b.WriteString("Cookie: a=1; gatehouse_session=" + tokAlice + "; b=2\r\n")
		if !session {
			b.WriteString("Authorization: Bearer foreign-api-token\r\n")
		}
		b.WriteString("\r\n")
		raw := b.String()
		if !session {
			raw = strings.Replace(raw, "gatehouse_session="+tokAlice+"; ", "", 1)
		}
		res, body := rawResponse(t, hostOf(tg.srv), "GET", raw)
		if res.StatusCode != 200 {
			t.Fatalf("session=%v: status %d, body %q", session, res.StatusCode, body)
		}
		got, ok := tg.up.last()
		if !ok {
			t.Fatal("nothing forwarded")
		}
		banned := map[string]bool{}
		for _, h := range spoofed {
			banned[folded(h)] = true
		}
		for k, vs := range got.Header {
			for _, v := range vs {
				if v == "evil" || v == "evil2" {
					t.Errorf("session=%v: upstream got %s: %s", session, k, v)
				}
			}
			f := folded(k)
			if banned[f] && !map[string]bool{"xauthuid": true, "xauthmail": true, "xforwardedfor": true, "xforwardedhost": true, "xforwardedproto": true, "xrealip": true}[f] {
				t.Errorf("session=%v: upstream got header %q", session, k)
			}
		}
		if session {
			if v := got.Header["X-Auth-Uid"]; len(v) != 1 || v[0] != aliceID {
				t.Errorf("X-Auth-Uid = %q, want [%s]", v, aliceID)
			}
			if v := got.Header["X-Auth-Mail"]; len(v) != 1 || v[0] != aliceEmail {
				t.Errorf("X-Auth-Mail = %q, want [%s]", v, aliceEmail)
			}
		} else if _, ok := got.Header["X-Auth-Uid"]; ok {
			t.Errorf("identity header set without a session")
		}
		if _, ok := got.Header["X-User-Id"]; ok {
			t.Errorf("default X-User-Id forwarded although another name is configured")
		}
		if v := got.Header.Get("Upgrade"); v != "" {
			t.Errorf("Upgrade: %q forwarded", v)
		}
		if v := got.Header["X-Real-Ip"]; len(v) != 1 || v[0] != "127.0.0.1" {
			t.Errorf("X-Real-Ip = %q, want [127.0.0.1]", v)
		}
		if v := got.Header["X-Forwarded-For"]; len(v) != 1 || v[0] != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want [127.0.0.1]", v)
		}
		if v := got.Header.Get("X-Forwarded-Host"); v != "gw.example" {
			t.Errorf("X-Forwarded-Host = %q", v)
		}
		if v := got.Header.Get("X-Forwarded-Proto"); v != "http" {
			t.Errorf("X-Forwarded-Proto = %q", v)
		}
		if got.Host != "gw.example" {
			t.Errorf("Host = %q, want the client's gw.example", got.Host)
		}
		if c := strings.Join(got.Header["Cookie"], "; "); c != "a=1; b=2" {
			t.Errorf("Cookie = %q, want a=1; b=2", c)
		}
		if !session {
			if a := got.Header.Get("Authorization"); a != "Bearer foreign-api-token" {
				t.Errorf("foreign Authorization = %q, want kept", a)
			}
		}
	}
}

func TestBearerToken(t *testing.T) {
	tg := newTestGateway(t, nil)
	req := tg.newRequest(t, "GET", "/app")
	req.Header.Set("Authorization", "bearer "+tokAlice)
	res, _ := tg.do(t, req)
	if res.StatusCode != 200 {
		t.Fatalf("status = %d, want 200", res.StatusCode)
	}
	got, _ := tg.up.last()
	if a := got.Header.Get("Authorization"); a != "" {
		t.Errorf("gateway token forwarded: Authorization %q", a)
	}
	if got.Header.Get("X-User-Id") != aliceID {
		t.Errorf("X-User-Id = %q", got.Header.Get("X-User-Id"))
	}

	// The cookie wins over a Bearer; a foreign Bearer stays.
	tg.up.reset()
	req = tg.newRequest(t, "GET", "/app")
	req.Header.Set("Authorization", "Bearer not-ours")
	req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokAlice})
	res, _ = tg.do(t, req)
	got, _ = tg.up.last()
	if res.StatusCode != 200 || got.Header.Get("Authorization") != "Bearer not-ours" || got.Header.Get("Cookie") != "" {
		t.Errorf("status %d, Authorization %q, Cookie %q", res.StatusCode, got.Header.Get("Authorization"), got.Header.Get("Cookie"))
	}

	// A stale cookie wins over a valid Bearer: cookie counts.
	req = tg.newRequest(t, "GET", "/app")
	req.Header.Set("Authorization", "Bearer "+tokAlice)
	req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokExpired})
	res, _ = tg.do(t, req)
	if res.StatusCode != 401 {
		t.Errorf("stale cookie + valid bearer: status %d, want 401", res.StatusCode)
	}
}

func TestForwardedTrustedProxies(t *testing.T) {
	tg := newTestGateway(t, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32", "10.0.0.0/8"}
	})
	var gotIP string
	tg.gw.endpoints = append(tg.gw.endpoints, ownEndpoint{path: "/ip", h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotIP = ClientIP(r)
	}), rt: tg.gw.refused})
	tests := []struct {
		xff, wantIP, wantXFF string
	}{
		{"", "127.0.0.1", "127.0.0.1"},
		{"203.0.113.9", "203.0.113.9", "203.0.113.9, 127.0.0.1"},
		{"1.1.1.1, 203.0.113.9, 10.1.2.3", "203.0.113.9", "1.1.1.1, 203.0.113.9, 10.1.2.3, 127.0.0.1"},
		{"10.0.0.1, 10.0.0.2", "10.0.0.1", "10.0.0.1, 10.0.0.2, 127.0.0.1"},
		// Not an address: the client as written, never the proxy.
		{"garbage, 10.0.0.2", "garbage", "garbage, 10.0.0.2, 127.0.0.1"},
		{"203.0.113.5:4711", "203.0.113.5", "203.0.113.5:4711, 127.0.0.1"},
		{"[2001:db8::1]:4711, 10.0.0.2:80", "2001:db8::1", "[2001:db8::1]:4711, 10.0.0.2:80, 127.0.0.1"},
	}
	for _, tc := range tests {
		tg.up.reset()
		req := tg.newRequest(t, "GET", "/public/x")
		if tc.xff != "" {
			req.Header.Set("X-Forwarded-For", tc.xff)
		}
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "app.example.com")
		tg.do(t, req)
		got, _ := tg.up.last()
		if v := got.Header.Get("X-Real-Ip"); v != tc.wantIP {
			t.Errorf("xff %q: X-Real-Ip = %q, want %q", tc.xff, v, tc.wantIP)
		}
		if v := strings.Join(got.Header["X-Forwarded-For"], ", "); v != tc.wantXFF {
			t.Errorf("xff %q: X-Forwarded-For = %q, want %q", tc.xff, v, tc.wantXFF)
		}
		if got.Header.Get("X-Forwarded-Proto") != "https" || got.Header.Get("X-Forwarded-Host") != "app.example.com" {
			t.Errorf("trusted -Proto/-Host not kept: %q %q", got.Header.Get("X-Forwarded-Proto"), got.Header.Get("X-Forwarded-Host"))
		}
		req = tg.newRequest(t, "GET", "/ip")
		if tc.xff != "" {
			req.Header.Set("X-Forwarded-For", tc.xff)
		}
		tg.do(t, req)
		if gotIP != tc.wantIP {
			t.Errorf("xff %q: ClientIP = %q, want %q", tc.xff, gotIP, tc.wantIP)
		}
	}
}

func TestHeaderHelpers(t *testing.T) {
	hp, _ := newHeaderPolicy("X-Custom-Id")
	for name, want := range map[string]headerKind{
		"X-User-Id": hkIdentity, "X_USER.ID": hkIdentity, "xcustomid": hkIdentity, "X-Custom_Id": hkIdentity,
		"X-Forwarded-For": hkForwarding, "x.http.method": hkReroute, "Accept": hkNone,
		strings.Repeat("a", 200): hkNone,
	} {
		if got := hp.kind(name); got != want {
			t.Errorf("kind(%q) = %d, want %d", name, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { hp.kind("X_User_Id") }); n != 0 {
		t.Errorf("kind allocates %v times", n)
	}
}

// TestProxyOnlyHeaders: the gateway replaces every X-Forwarded-* header of
// an untrusted peer, not only the ones the gateway sets, and group and
// token headers of other auth proxies are identity. Before the fix
// X-Forwarded-Groups, X-Forwarded-Client-Cert and Remote-Groups reached
// the upstream as the client wrote them; before the second round so did
// X-Webauth-Email, X-Host, X-Original-Host and X-Envoy-Original-Path.
func TestProxyOnlyHeaders(t *testing.T) {
	identity := []string{
		"X-Forwarded-Groups", "X_Forwarded_Groups", "X-Forwarded-Access-Token", "X-Auth-Request-Groups",
		"X-Auth-Request-Access-Token", "Remote-Groups", "Remote_Email", "Remote-Name", "X-Webauth-User",
		"X-Webauth-Email", "X_WEBAUTH_EMAIL",
		// Host and path overrides: removed even from a trusted proxy.
		"X-Host", "X-Original-Host", "X_Original_Host", "X-Envoy-Original-Path", "X.Envoy.Original.Path",
	}
	proxyOnly := []string{
		"X-Forwarded-Client-Cert", "X-Forwarded-Anything", "X_Forwarded_Path", "X-Forwarded",
		"X-Forwarded-" + strings.Repeat("x", 120), "CF-Connecting-IP", "X-Cluster-Client-IP",
		"Fastly-Client-IP", "X-Original-Forwarded-For", "Forwarded-For",
	}
	for _, trusted := range []bool{false, true} {
		tg := newTestGateway(t, func(c *config.Config) {
			if trusted {
				c.TrustedProxies = []string{"127.0.0.0/8"}
			}
		})
		var b strings.Builder
		b.WriteString("GET /public/x HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n")
		for _, h := range append(append([]string(nil), identity...), proxyOnly...) {
			b.WriteString(h + ": evil\r\n")
		}
		b.WriteString("\r\n")
		res, body := rawResponse(t, hostOf(tg.srv), "GET", b.String())
		if res.StatusCode != 200 {
			t.Fatalf("trusted=%v: status %d, body %q", trusted, res.StatusCode, body)
		}
		got, ok := tg.up.last()
		if !ok {
			t.Fatal("nothing forwarded")
		}
		for _, h := range identity {
			for k := range got.Header {
				if folded(k) == folded(h) {
					t.Errorf("trusted=%v: identity header %q reached the upstream", trusted, k)
				}
			}
		}
		for _, h := range proxyOnly {
			present := false
			for k := range got.Header {
				if folded(k) == folded(h) {
					present = true
				}
			}
			// From a trusted proxy these are its own and pass on.
			if present != trusted {
				t.Errorf("trusted=%v: %q forwarded = %v, want %v", trusted, h, present, trusted)
			}
		}
	}
}

// TestProxyOnlyKind: the prefix rule classifies without allocating, and
// only X-Forwarded-* names.
func TestProxyOnlyKind(t *testing.T) {
	hp, _ := newHeaderPolicy("X-User-Id")
	for name, want := range map[string]headerKind{
		"X-Forwarded-Client-Cert": hkProxyOnly, "x_forwarded.whatever": hkProxyOnly, "X-Forwarded": hkProxyOnly,
		"X-Forwarded-For": hkForwarding, "X-Forwarded-Prefix": hkReroute, "X-Forwarded-Groups": hkIdentity,
		"X-Forwarder": hkNone, "XForward": hkNone, "Forwarded": hkForwarding,
	} {
		if got := hp.kind(name); got != want {
			t.Errorf("kind(%q) = %d, want %d", name, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { hp.kind("X-Forwarded-Client-Cert") }); n != 0 {
		t.Errorf("kind allocates %v times", n)
	}
}

// TestEmptySessionCookieFirst: an empty session cookie ahead of the real
// one ("NAME=; NAME=TOKEN", as a cookie tossed from a sibling domain with
// a longer Path produces) used to hide the token: it skipped the CSRF
// check and went upstream in the Cookie header.
func TestEmptySessionCookieFirst(t *testing.T) {
	tg := newTestGateway(t, nil)
	cookie := "gatehouse_session=; a=1; gatehouse_session=" + tokAlice + "; b=2"

	req := tg.newRequest(t, "GET", "/public/x")
	req.Header.Set("Cookie", cookie)
	res, body := tg.do(t, req)
	if res.StatusCode != 200 {
		t.Fatalf("status = %d, want 200 (%s)", res.StatusCode, body)
	}
	got, _ := tg.up.last()
	if c := strings.Join(got.Header["Cookie"], "; "); strings.Contains(c, "gatehouse_session") || c != "a=1; b=2" {
		t.Errorf("Cookie upstream = %q, want a=1; b=2", c)
	}
	if v := got.Header.Get("X-User-Id"); v != aliceID {
		t.Errorf("X-User-Id = %q, want %q", v, aliceID)
	}

	tg.up.reset()
	req = tg.newRequest(t, "POST", "/public/x")
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Origin", "https://evil.example")
	res, body = tg.do(t, req)
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST: status = %d, want 403 (%s)", res.StatusCode, body)
	}
	if _, ok := tg.up.last(); ok {
		t.Errorf("cross-origin POST reached the upstream")
	}

	// Only empty session cookies: no session, and none goes upstream.
	tg.up.reset()
	req = tg.newRequest(t, "GET", "/public/x")
	req.Header.Set("Cookie", `gatehouse_session=; gatehouse_session=""; c=3`)
	tg.do(t, req)
	got, _ = tg.up.last()
	if c := strings.Join(got.Header["Cookie"], "; "); c != "c=3" {
		t.Errorf("Cookie upstream = %q, want c=3", c)
	}
}

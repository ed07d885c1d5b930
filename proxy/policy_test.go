package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

func TestPolicyTable(t *testing.T) {
	tg := newTestGateway(t, nil)
	tests := []struct {
		name      string
		path      string
		cookie    string
		storeDown bool
		status    int
		forwarded bool
		identity  bool
	}{
		{"public without session", "/public/x", "", false, 200, true, false},
		{"public with session", "/public/x", tokAlice, false, 200, true, true},
		{"public with stale session", "/public/x", tokExpired, false, 200, true, false},
		{"public store down", "/public/x", tokAlice, true, 200, true, false},
		{"authenticated with session", "/app", tokAlice, false, 200, true, true},
		{"authenticated without session", "/app", "", false, 401, false, false},
		{"authenticated stale", "/app", tokExpired, false, 401, false, false},
		{"authenticated garbage cookie", "/app", "not-a-token", false, 401, false, false},
		{"authenticated store down", "/app", tokAlice, true, 503, false, false},
		{"deny without session", "/admin", "", false, 403, false, false},
		{"deny with session", "/admin", tokAlice, false, 403, false, false},
		{"deny store down", "/admin", tokAlice, true, 403, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg.up.reset()
			tg.auth.down.Store(tc.storeDown)
			defer tg.auth.down.Store(false)
			req := tg.newRequest(t, "GET", tc.path)
			req.Header.Set("Accept", "application/json")
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tc.cookie})
			}
			res, body := tg.do(t, req)
			if res.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d (%s)", res.StatusCode, tc.status, body)
			}
			got, forwarded := tg.up.last()
			if forwarded != tc.forwarded {
				t.Fatalf("forwarded = %v, want %v", forwarded, tc.forwarded)
			}
			if forwarded && (got.Header.Get("X-User-Id") == aliceID) != tc.identity {
				t.Errorf("X-User-Id = %q, identity wanted: %v", got.Header.Get("X-User-Id"), tc.identity)
			}
			if forwarded && tc.identity && got.Header.Get("X-User-Email") != aliceEmail {
				t.Errorf("X-User-Email = %q", got.Header.Get("X-User-Email"))
			}
			cleared := false
			for _, c := range res.Cookies() {
				if c.Name == "gatehouse_session" && c.MaxAge < 0 && c.Path == "/" {
					cleared = true
				}
			}
			wantCleared := tc.status == 401 && tc.cookie != ""
			if cleared != wantCleared {
				t.Errorf("cookie cleared = %v, want %v (Set-Cookie %q)", cleared, wantCleared, res.Header["Set-Cookie"])
			}
			switch tc.status {
			case 401:
				if w := res.Header.Get("WWW-Authenticate"); w != `Bearer realm="gatehouse"` {
					t.Errorf("WWW-Authenticate = %q", w)
				}
				checkError(t, res, body, apierror.Unauthenticated)
			case 403:
				checkError(t, res, body, apierror.Forbidden)
			case 503:
				checkError(t, res, body, apierror.StoreUnavailable)
			}
		})
	}
}

func checkError(t *testing.T, res *http.Response, body string, code apierror.Code) {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if body != string(apierror.Body(code)) {
		t.Errorf("body = %s, want %s", body, apierror.Body(code))
	}
	var v struct {
		Errors []struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || len(v.Errors) != 1 || v.Errors[0].Code != string(code) || v.Errors[0].Status != res.StatusCode {
		t.Errorf("error body %s does not carry code %s, status %d", body, code, res.StatusCode)
	}
}

func TestBrowserRedirect(t *testing.T) {
	tg := newTestGateway(t, nil)
	for _, tc := range []struct{ method, target, accept, want string }{
		{"GET", "/app/page?x=1&y=%2F", "text/html,application/xhtml+xml", "/login?rd=%2Fapp%2Fpage%3Fx%3D1%26y%3D%252F"},
		{"HEAD", "/caf%C3%A9", "text/html", "/login?rd=%2Fcaf%25C3%25A9"},
		{"GET", "/app//x", "text/html", "/login?rd=%2Fapp%2Fx"},
		{"POST", "/app", "text/html", ""},
		{"GET", "/app", "application/json", ""},
	} {
		req := tg.newRequest(t, tc.method, "")
		req.URL.Opaque = tc.target
		req.Header.Set("Accept", tc.accept)
		req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokExpired})
		req.Header.Set("Origin", tg.srv.URL)
		res, _ := tg.do(t, req)
		if tc.want == "" {
			if res.StatusCode != 401 {
				t.Errorf("%s %s: status %d, want 401", tc.method, tc.target, res.StatusCode)
			}
			continue
		}
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != tc.want {
			t.Errorf("%s %s: %d Location %q, want 302 %q", tc.method, tc.target, res.StatusCode, res.Header.Get("Location"), tc.want)
		}
		if len(res.Header["Set-Cookie"]) != 1 || !strings.Contains(res.Header.Get("Set-Cookie"), "Max-Age=0") {
			t.Errorf("stale cookie not cleared on redirect: %q", res.Header["Set-Cookie"])
		}
	}
}

func TestCSRF(t *testing.T) {
	tests := []struct {
		name    string
		protect bool
		cookie  bool
		headers map[string]string
		status  int
	}{
		{"cross-site", true, true, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site", true, true, map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"origin mismatch", true, true, map[string]string{"Origin": "https://evil.example"}, 403},
		{"same-origin", true, true, map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"own origin", true, true, map[string]string{"Origin": "http://gw.example"}, 200},
		{"no headers", true, true, nil, 200},
		{"trusted origin", true, true, map[string]string{"Origin": "https://trusted.example", "Sec-Fetch-Site": "cross-site"}, 200},
		{"no cookie", true, false, map[string]string{"Sec-Fetch-Site": "cross-site"}, 200},
		{"protect off", false, true, map[string]string{"Sec-Fetch-Site": "cross-site"}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTestGateway(t, func(c *config.Config) {
				c.CSRF.ProtectUpstream = tc.protect
				c.CSRF.TrustedOrigins = []string{"https://trusted.example"}
				c.Routes[0].Path = "/" // public, so "no cookie" reaches the upstream
				c.Routes = c.Routes[:1]
			})
			req := tg.newRequest(t, "POST", "/form")
			req.Host = "gw.example"
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			if tc.cookie {
				req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokAlice})
			}
			res, body := tg.do(t, req)
			if res.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d (%s)", res.StatusCode, tc.status, body)
			}
			_, forwarded := tg.up.last()
			if forwarded != (tc.status == 200) {
				t.Errorf("forwarded = %v", forwarded)
			}
			if tc.status == 403 {
				checkError(t, res, body, apierror.CrossOrigin)
			}
		})
	}
}

// wsUpstream answers a WebSocket-style upgrade with 101 and then echoes
// bytes upper-cased, so both directions can be checked.
func wsUpstream(tg *testGateway) {
	tg.up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Seen-User: " + r.Header.Get("X-User-Id") + "\r\n\r\n")
		_ = brw.Flush()
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = brw.WriteString(strings.ToUpper(line))
		_ = brw.Flush()
	})
}

func TestWebSocket(t *testing.T) {
	tg := newTestGateway(t, nil)
	wsUpstream(tg)
	dial := func(origin string) (*http.Response, *bufio.Reader, net.Conn) {
		conn, err := net.Dial("tcp", hostOf(tg.srv))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		req := "GET /ws HTTP/1.1\r\nHost: gw.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: gatehouse_session=" + tokAlice + "\r\n"
		if origin != "" {
			req += "Origin: " + origin + "\r\n"
		}
		_, _ = io.WriteString(conn, req+"\r\n")
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res, br, conn
	}
	res, _, _ := dial("https://evil.example")
	if res.StatusCode != 403 {
		t.Errorf("foreign Origin: status %d, want 403", res.StatusCode)
	}
	for _, origin := range []string{"", "http://gw.example"} {
		res, br, conn := dial(origin)
		if res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("origin %q: status %d, want 101", origin, res.StatusCode)
		}
		if res.Header.Get("X-Seen-User") != aliceID {
			t.Errorf("upstream saw X-User-Id %q", res.Header.Get("X-Seen-User"))
		}
		_, _ = io.WriteString(conn, "hello\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "HELLO\n" {
			t.Errorf("echo through upgraded connection = %q, %v", line, err)
		}
	}
}

func TestSSEStreams(t *testing.T) {
	tg := newTestGateway(t, nil)
	release := make(chan struct{})
	tg.up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		<-release
		_, _ = io.WriteString(w, "data: second\n\n")
	})
	defer close(release)
	req := tg.newRequest(t, "GET", "/public/events")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	// The upstream is still blocked: the first event must arrive now.
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event = %q, %v", line, err)
	}
}

// TestOwnEndpoints: the auth paths go to Options.Endpoints with the state
// in the context, before the route table (here / is deny).
func TestOwnEndpoints(t *testing.T) {
	var ip, method string
	tg := newTestGateway(t, func(c *config.Config) {
		c.Routes = []config.Route{{Path: "/", Policy: config.Deny}}
	}, func(o *Options) {
		o.Endpoints = map[string]http.Handler{"/login": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip, method = ClientIP(r), r.Method
			w.WriteHeader(204)
		})}
	})
	res, _ := tg.do(t, tg.newRequest(t, "post", "//login"))
	if res.StatusCode != 204 || ip != "127.0.0.1" || method != "POST" {
		t.Errorf("status %d, ClientIP %q, method %q", res.StatusCode, ip, method)
	}
	res, _ = tg.do(t, tg.newRequest(t, "GET", "/login/x"))
	if res.StatusCode != 403 {
		t.Errorf("/login/x: status %d, want 403 (not an endpoint)", res.StatusCode)
	}
}

// TestOneAuthenticateCall: one store round trip per request.
func TestOneAuthenticateCall(t *testing.T) {
	tg := newTestGateway(t, nil)
	req := tg.newRequest(t, "GET", "/app")
	req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokAlice})
	req.Header.Set("Authorization", "Bearer "+tokAlice)
	tg.auth.calls.Store(0)
	tg.do(t, req)
	if n := tg.auth.calls.Load(); n != 1 {
		t.Errorf("Authenticate called %d times, want 1", n)
	}
}

// TestOwnEndpointsSeeCleanPath: an endpoint subtree is handed the path it
// was matched on, repeated slashes merged, so "/me//tokens" is
// "/me/tokens" to the handler as to the matcher (it was a 404 there).
func TestOwnEndpointsSeeCleanPath(t *testing.T) {
	var got string
	tg := newTestGateway(t, nil, func(o *Options) {
		o.Endpoints = map[string]http.Handler{"/me/": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = r.URL.Path
			w.WriteHeader(204)
		})}
	})
	for _, tc := range []struct{ path, want string }{
		{"/me//tokens", "/me/tokens"},
		{"//me/sessions//abc", "/me/sessions/abc"},
		{"/me/tokens", "/me/tokens"},
	} {
		got = ""
		res, _ := tg.do(t, tg.newRequest(t, "DELETE", tc.path))
		if res.StatusCode != 204 || got != tc.want {
			t.Errorf("%s: status %d, handler saw %q, want 204 and %q", tc.path, res.StatusCode, got, tc.want)
		}
	}
}

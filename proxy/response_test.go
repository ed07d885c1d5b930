package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/config"
)

// An upstream can never set or clear the gateway's session cookie; its own
// cookies reach the client.
func TestUpstreamCannotSetSessionCookie(t *testing.T) {
	tg := newTestGateway(t, nil)
	tg.up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Set-Cookie", "gatehouse_session=gh1.planted; Path=/; HttpOnly")
		h.Add("Set-Cookie", "app_pref=1; Path=/")
		h.Add("Set-Cookie", " gatehouse_session=; Max-Age=0")
		h.Add("Set-Cookie", "gatehouse_session_other=ok")
		w.Write([]byte("ok"))
	})
	res, _ := tg.do(t, tg.newRequest(t, "GET", "/public/x"))
	got := res.Header.Values("Set-Cookie")
	want := []string{"app_pref=1; Path=/", "gatehouse_session_other=ok"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Set-Cookie = %q, want %q", got, want)
	}
}

// TestInformationalCannotSetSessionCookie: a 103 Early Hints from a real
// upstream (HTTP/1.1 and HTTP/2) reaches the client without a Set-Cookie
// naming the session cookie, while its other headers pass. Before the fix
// ReverseProxy copied the 1xx header to the client untouched
// (ModifyResponse sees only the final response), so an upstream could
// plant a session that way.
func TestInformationalCannotSetSessionCookie(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Link", "</app.css>; rel=preload; as=style")
		h.Add("Set-Cookie", "gatehouse_session=gh1.planted; Path=/; HttpOnly")
		h.Add("Set-Cookie", "early=1")
		h.Add("Set-Cookie", " gatehouse_session=; Max-Age=0")
		w.WriteHeader(http.StatusEarlyHints)
		clear(h)
		h.Add("Set-Cookie", "gatehouse_session=gh1.again")
		w.WriteHeader(http.StatusEarlyHints)
		clear(h)
		h.Add("Set-Cookie", "gatehouse_session=gh1.planted2; Path=/")
		h.Add("Set-Cookie", "late=1")
		_, _ = w.Write([]byte("ok:" + r.Proto))
	})
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http1", true: "http2"}[h2], func(t *testing.T) {
			up := httptest.NewUnstartedServer(upstream)
			cu := config.Upstream{}
			if h2 {
				up.EnableHTTP2 = true
				up.StartTLS()
				cu.InsecureSkipVerify = true
			} else {
				up.Start()
			}
			t.Cleanup(up.Close)
			cu.URL = up.URL
			tg := newTestGateway(t, func(c *config.Config) { c.Upstreams = map[string]config.Upstream{"app": cu} })

			var mu sync.Mutex
			var codes []int
			var early []string
			var links int
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				mu.Lock()
				defer mu.Unlock()
				codes = append(codes, code)
				early = append(early, h.Values("Set-Cookie")...)
				links += len(h.Values("Link"))
				return nil
			}}
			req := tg.newRequest(t, "GET", "/public/x")
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
			res, body := tg.do(t, req)
			wantBody := map[bool]string{false: "ok:HTTP/1.1", true: "ok:HTTP/2.0"}[h2]
			if res.StatusCode != 200 || body != wantBody {
				t.Fatalf("status %d, body %q, want 200 %q", res.StatusCode, body, wantBody)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(codes, []int{103, 103}) || links != 1 {
				t.Fatalf("1xx codes %v, Link lines %d: want two 103 forwarded, the first with Link", codes, links)
			}
			for _, c := range early {
				if strings.HasPrefix(strings.TrimSpace(c), "gatehouse_session=") {
					t.Errorf("1xx carried Set-Cookie %q", c)
				}
			}
			if want := []string{"early=1"}; !slices.Equal(early, want) {
				t.Errorf("1xx Set-Cookie = %q, want %q", early, want)
			}
			if got, want := res.Header.Values("Set-Cookie"), []string{"late=1"}; !slices.Equal(got, want) {
				t.Errorf("final Set-Cookie = %q, want %q", got, want)
			}
		})
	}
}

// CONNECT and TRACE answer 405 with the Allow header RFC 9110 requires.
func TestMethodNotAllowedHasAllow(t *testing.T) {
	tg := newTestGateway(t, nil)
	res, _ := rawResponse(t, hostOf(tg.srv), "TRACE", "TRACE /public/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") == "" {
		t.Errorf("TRACE = %d Allow %q, want 405 with Allow", res.StatusCode, res.Header.Get("Allow"))
	}
}

// The WebSocket Origin check holds with csrf.protect_upstream off too: it
// is the only defence against cross-site WebSocket hijacking.
func TestWebSocketOriginCheckedWithoutProtectUpstream(t *testing.T) {
	tg := newTestGateway(t, func(c *config.Config) { c.CSRF.ProtectUpstream = false })
	req := tg.newRequest(t, "GET", "/ws")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Cookie", "gatehouse_session="+tokAlice)
	res, body := tg.do(t, req)
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("foreign-origin upgrade = %d %s, want 403 cross_origin", res.StatusCode, body)
	}
	if _, ok := tg.up.last(); ok {
		t.Errorf("the upgrade reached the upstream")
	}
}

package proxy

import (
	"net/http"
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

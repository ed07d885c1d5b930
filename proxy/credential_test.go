package proxy

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

var tokBob = testToken("gh1.", "00000000000000000000000000000b0b", "D")

// TestSeveralAuthorization: every Authorization value is looked at. A
// gateway token behind a foreign one authenticates and is stripped, the
// foreign one goes upstream.
func TestSeveralAuthorization(t *testing.T) {
	tg := newTestGateway(t, nil)
	req := tg.newRequest(t, "GET", "/app")
	req.Header.Add("Authorization", "Bearer foreign-api-token")
	req.Header.Add("Authorization", "Bearer "+tokAlice)
	res, body := tg.do(t, req)
	if res.StatusCode != 200 {
		t.Fatalf("status = %d, want 200 (%s)", res.StatusCode, body)
	}
	got, _ := tg.up.last()
	if a := got.Header["Authorization"]; !slices.Equal(a, []string{"Bearer foreign-api-token"}) {
		t.Errorf("Authorization upstream = %q, want only the foreign token", a)
	}
	if got.Header.Get("X-User-Id") != aliceID {
		t.Errorf("X-User-Id = %q, want %q", got.Header.Get("X-User-Id"), aliceID)
	}

	// The tossed cookie and a second token-shaped Bearer: the cookie's
	// token counts, no gateway token goes upstream.
	tg.up.reset()
	req = tg.newRequest(t, "GET", "/app")
	req.Header.Set("Cookie", "gatehouse_session=; gatehouse_session="+tokAlice)
	req.Header.Add("Authorization", "Bearer "+tokExpired)
	req.Header.Add("Authorization", "Bearer foreign-api-token")
	res, body = tg.do(t, req)
	if res.StatusCode != 200 {
		t.Fatalf("tossed cookie + bearers: status = %d, want 200 (%s)", res.StatusCode, body)
	}
	got, _ = tg.up.last()
	if a := got.Header["Authorization"]; !slices.Equal(a, []string{"Bearer foreign-api-token"}) {
		t.Errorf("Authorization upstream = %q, want only the foreign token", a)
	}
	if c := got.Header.Get("Cookie"); c != "" {
		t.Errorf("Cookie upstream = %q, want none", c)
	}
}

// lineCounter collects log output written from handler goroutines.
type lineCounter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *lineCounter) matching(msg string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for line := range strings.Lines(c.buf.String()) {
		if strings.Contains(line, `"msg":"`+msg+`"`) {
			out = append(out, line)
		}
	}
	return out
}

// TestStoreErrorLogLimited: during a store outage every lookup fails; the
// gateway used to log a Warn line for each one (thousands a second). Now
// it logs at most one per second, with the count of the lines left out.
func TestStoreErrorLogLimited(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	logs := &lineCounter{}
	tg := newTestGateway(t, nil, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		o.now = func() time.Time { return time.Unix(0, clock.Load()) }
	})
	tg.auth.down.Store(true)
	fail := func(n int) {
		t.Helper()
		for range n {
			r := httptest.NewRequest("GET", "/app", nil)
			r.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokAlice})
			w := httptest.NewRecorder()
			tg.gw.ServeHTTP(w, r)
			if w.Code != http.StatusServiceUnavailable {
				t.Fatalf("status = %d, want 503", w.Code)
			}
			if !strings.Contains(w.Body.String(), string(apierror.StoreUnavailable)) {
				t.Fatalf("body = %s", w.Body)
			}
		}
	}
	fail(100)
	got := logs.matching("session store error")
	if len(got) != 1 {
		t.Fatalf("100 failed lookups logged %d lines, want 1:\n%s", len(got), strings.Join(got, ""))
	}
	if !strings.Contains(got[0], `"suppressed":0`) {
		t.Errorf("first line = %s, want suppressed 0", got[0])
	}

	// Still within the second: nothing more.
	clock.Add(int64(999 * time.Millisecond))
	fail(1)
	if n := len(logs.matching("session store error")); n != 1 {
		t.Errorf("within a second: %d lines, want 1", n)
	}
	// A second after the first line: one more, counting what was left out.
	clock.Add(int64(time.Millisecond))
	fail(1)
	got = logs.matching("session store error")
	if len(got) != 2 || !strings.Contains(got[1], `"suppressed":100`) {
		t.Errorf("after a second: lines %q, want a second one with suppressed 100", got)
	}
}

// TestLenientCookieTokens: a cookie value that a lenient application
// parser (blanks trimmed, escapes decoded) would read as a live gateway
// token never reaches the upstream, neither through the proxy nor in
// forward-auth's Cookie answer header.
func TestLenientCookieTokens(t *testing.T) {
	tg := newTestGateway(t, nil)
	tests := []struct{ name, cookie string }{
		{"blank before", "a= " + tokAlice},
		{"tab before", "a=\t" + tokAlice},
		{"quoted with blanks", `a=" ` + tokAlice + `"`},
		{"percent-encoded dots", "a=" + strings.ReplaceAll(tokAlice, ".", "%2E")},
		{"plus before", "a=+" + tokAlice},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg.up.reset()
			req := tg.newRequest(t, "GET", "/public/x")
			req.Header.Set("Cookie", tc.cookie+"; keep=1")
			if res, body := tg.do(t, req); res.StatusCode != 200 {
				t.Fatalf("proxy: status = %d, want 200 (%s)", res.StatusCode, body)
			}
			got, _ := tg.up.last()
			if c := got.Header["Cookie"]; !slices.Equal(c, []string{"keep=1"}) {
				t.Errorf("proxy: Cookie upstream = %q, want [keep=1]", c)
			}

			req = tg.newRequest(t, "GET", "/_gatehouse/verify/app")
			req.Header.Set("Cookie", "gatehouse_session="+tokAlice+"; "+tc.cookie+"; keep=1")
			res, body := tg.do(t, req)
			if res.StatusCode != 200 {
				t.Fatalf("forward-auth: status = %d, want 200 (%s)", res.StatusCode, body)
			}
			if c := res.Header["Cookie"]; !slices.Equal(c, []string{"keep=1"}) {
				t.Errorf("forward-auth: Cookie answer = %q, want [keep=1]", c)
			}
		})
	}
}

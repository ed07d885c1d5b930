package proxy

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// realShape is the session token shape of package auth, so that these
// tests tell a token from a value that merely starts like one.
var realShape = regexp.MustCompile(`^gh1\.[0-9a-f]{32}\.[1-9][0-9]{0,11}\.[A-Za-z0-9_-]{43}$`).MatchString

const (
	shapedSession = "gh1.0123456789abcdef0123456789abcdef.1999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	shapedAPI     = "ght1.0123456789abcdef0123456789abcdef.1999999999.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
)

func TestUpstreamCookie(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"no cookie", nil, ""},
		{"empty line", []string{""}, ""},
		{"blank line", []string{"  "}, ""},
		{"others only, kept as sent", []string{"theme=dark; lang=en"}, "theme=dark; lang=en"},
		{"session only", []string{"gatehouse_session=" + shapedSession}, ""},
		{"session first", []string{"gatehouse_session=" + shapedSession + "; theme=dark"}, "theme=dark"},
		{"session last", []string{"theme=dark; lang=en; gatehouse_session=" + shapedSession}, "theme=dark; lang=en"},
		{"session in the middle", []string{"a=1;gatehouse_session=x;b=2"}, "a=1; b=2"},
		// The session cookie goes whatever its value: a stale or forged
		// one is still the session cookie.
		{"session not token-shaped", []string{"gatehouse_session=stale; a=1"}, "a=1"},
		{"empty session", []string{"gatehouse_session=; a=1"}, "a=1"},
		{"several sessions", []string{"gatehouse_session=" + shapedSession + "; a=1; gatehouse_session=other"}, "a=1"},
		{"quoted session", []string{`gatehouse_session="` + shapedSession + `"; a=1`}, "a=1"},
		{"token under another name", []string{"a=1; copy=" + shapedSession}, "a=1"},
		{"quoted token under another name", []string{`copy="` + shapedSession + `"; a=1`}, "a=1"},
		{"API token", []string{"api=" + shapedAPI + "; a=1"}, "a=1"},
		{"API token alone", []string{"api=" + shapedAPI}, ""},
		// Only the shape counts: a value that starts like a token but is
		// none stays (the app's own cookie may start with anything).
		{"gh1 prefix, not a token", []string{"note=gh1.hello; a=1"}, "note=gh1.hello; a=1"},
		{"ght1 prefix, not a token", []string{"note=ght1.hello"}, "note=ght1.hello"},
		{"token with a tail", []string{"x=" + shapedSession + "x"}, "x=" + shapedSession + "x"},
		{"similar name", []string{"gatehouse_session2=v; xgatehouse_session=w"}, "gatehouse_session2=v; xgatehouse_session=w"},
		{"name case differs", []string{"Gatehouse_Session=v"}, "Gatehouse_Session=v"},
		{"spaces around the name", []string{" gatehouse_session =x; a=1"}, "a=1"},
		{"pair without value", []string{"flag; gatehouse_session=x"}, "flag"},
		{"empty pairs dropped", []string{"a=1; ; gatehouse_session=x;; b=2;"}, "a=1; b=2"},
		{"several lines joined", []string{"a=1", "b=2"}, "a=1; b=2"},
		{"several lines, session in one", []string{"a=1", "gatehouse_session=x; b=2"}, "a=1; b=2"},
		{"several lines, nothing left", []string{"gatehouse_session=x", "t=" + shapedAPI}, ""},
		{"too long to be a token", []string{"big=gh1." + strings.Repeat("a", 200)}, "big=gh1." + strings.Repeat("a", 200)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.lines != nil {
				h["Cookie"] = tc.lines
			}
			if got := upstreamCookie(h, "gatehouse_session", realShape); got != tc.want {
				t.Errorf("upstreamCookie(%q) = %q, want %q", tc.lines, got, tc.want)
			}
		})
	}
}

// TestUpstreamCookieHostPrefix: a __Host- cookie name is matched exactly.
func TestUpstreamCookieHostPrefix(t *testing.T) {
	h := http.Header{"Cookie": {"gatehouse_session=keep; __Host-gatehouse_session=" + shapedSession + "; a=1"}}
	// gatehouse_session's value is not a token, and it is not the
	// configured cookie here: it stays.
	if got, want := upstreamCookie(h, "__Host-gatehouse_session", realShape), "gatehouse_session=keep; a=1"; got != want {
		t.Errorf("upstreamCookie = %q, want %q", got, want)
	}
}

// TestUpstreamCookieAllocs: the common cases of an allowed forward-auth
// request cost no allocation when nothing is removed, and one string when
// something is.
func TestUpstreamCookieAllocs(t *testing.T) {
	tests := []struct {
		name string
		line string
		max  float64
	}{
		{"nothing removed", "theme=dark; lang=en", 0},
		{"session removed", "theme=dark; gatehouse_session=" + shapedSession + "; lang=en", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Cookie": {tc.line}}
			if n := testing.AllocsPerRun(100, func() { upstreamCookie(h, "gatehouse_session", realShape) }); n > tc.max {
				t.Errorf("upstreamCookie allocates %v times, want at most %v", n, tc.max)
			}
		})
	}
}

// TestForwardAuthCookie: the verify endpoint's 200 carries the cookies the
// app may see, and no Cookie header when none remain; its other answers
// carry none.
func TestForwardAuthCookie(t *testing.T) {
	tg := newTestGateway(t, nil)
	tests := []struct {
		name   string
		uri    string
		cookie string
		status int
		want   []string // nil: no Cookie header
	}{
		{"session and others", "/app", "theme=dark; gatehouse_session=" + tokAlice + "; lang=en", 200, []string{"theme=dark; lang=en"}},
		{"session only", "/app", "gatehouse_session=" + tokAlice, 200, nil},
		{"public, no session", "/public/x", "theme=dark", 200, []string{"theme=dark"}},
		{"public, stale session", "/public/x", "gatehouse_session=" + tokExpired + "; theme=dark", 200, []string{"theme=dark"}},
		{"public, token under another name", "/public/x", "copy=" + tokAlice, 200, nil},
		{"denied", "/admin", "gatehouse_session=" + tokAlice + "; theme=dark", 403, nil},
		{"no session", "/app", "theme=dark", 401, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tg.newRequest(t, "GET", "/_gatehouse/verify")
			req.Header.Set("X-Forwarded-Method", "GET")
			req.Header.Set("X-Forwarded-Uri", tc.uri)
			req.Header.Set("Cookie", tc.cookie)
			res, body := tg.do(t, req)
			if res.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d (%s)", res.StatusCode, tc.status, body)
			}
			if got := res.Header["Cookie"]; strings.Join(got, "|") != strings.Join(tc.want, "|") || (got == nil) != (tc.want == nil) {
				t.Errorf("Cookie = %q, want %q", got, tc.want)
			}
		})
	}
}

package proxy

import (
	"bufio"
	"errors"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

type pathCase struct {
	line     int
	method   string
	target   string
	session  bool
	status   int
	upstream string // "" = not forwarded
}

func readPathTable(t *testing.T) []pathCase {
	t.Helper()
	f, err := os.Open("testdata/paths.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []pathCase
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 5 {
			t.Fatalf("paths.txt:%d: %d columns, want 5", n, len(cols))
		}
		st, err := strconv.Atoi(cols[3])
		if err != nil {
			t.Fatalf("paths.txt:%d: status: %v", n, err)
		}
		c := pathCase{line: n, method: cols[0], target: cols[1], session: cols[2] == "yes", status: st}
		if cols[4] != "-" {
			c.upstream = cols[4]
		}
		cases = append(cases, c)
	}
	if len(cases) < 40 {
		t.Fatalf("paths.txt has %d cases, want >= 40", len(cases))
	}
	return cases
}

// TestPathTable sends every target of testdata/paths.txt on a raw TCP
// connection and checks the status and the exact request target the
// upstream received (or that it received nothing).
func TestPathTable(t *testing.T) {
	tg := newTestGateway(t, nil)
	addr := hostOf(tg.srv)
	for _, c := range readPathTable(t) {
		t.Run(strconv.Itoa(c.line)+"_"+c.method+"_"+c.target, func(t *testing.T) {
			tg.up.reset()
			var b strings.Builder
			b.WriteString(c.method + " " + c.target + " HTTP/1.1\r\nHost: gw.example\r\n")
			if c.session {
				b.WriteString("Cookie: gatehouse_session=" + tokAlice + "\r\n")
			}
			b.WriteString("Connection: close\r\n\r\n")
			res, body := rawResponse(t, addr, strings.ToUpper(c.method), b.String())
			if res.StatusCode != c.status {
				t.Fatalf("status = %d, want %d (body %q)", res.StatusCode, c.status, body)
			}
			got, forwarded := tg.up.last()
			switch {
			case c.upstream == "" && forwarded:
				t.Fatalf("forwarded %s %q, want nothing forwarded", got.Method, got.RequestURI)
			case c.upstream != "" && !forwarded:
				t.Fatalf("nothing forwarded, want %q", c.upstream)
			case c.upstream != "":
				if got.RequestURI != c.upstream {
					t.Errorf("upstream target = %q, want %q", got.RequestURI, c.upstream)
				}
				if want := strings.ToUpper(c.method); got.Method != want {
					t.Errorf("upstream method = %q, want %q", got.Method, want)
				}
				if c.session && c.status == 200 && got.Header.Get("X-User-Id") != aliceID {
					t.Errorf("X-User-Id = %q, want %q", got.Header.Get("X-User-Id"), aliceID)
				}
			}
			if res.StatusCode == 400 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") &&
				!strings.Contains(body, `"code":"bad_path"`) {
				t.Errorf("400 body = %q, want bad_path", body)
			}
		})
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		name, target string
		want         string // "" = refused
	}{
		{"root", "/", "/"},
		{"plain", "/a/b", "/a/b"},
		{"trailing slash", "/a/", "/a/"},
		{"merged", "//a///b//", "/a/b/"},
		{"decoded", "/%61", "/a"},
		{"utf8", "/caf%C3%A9", "/café"},
		{"space", "/a%20b", "/a b"},
		{"dots in name", "/a..b/.c/d.", "/a..b/.c/d."},
		{"dot", "/a/./b", ""},
		{"dotdot", "/a/../b", ""},
		{"encoded dotdot", "/a/%2e%2E/b", ""},
		{"mixed dotdot", "/a/.%2e", ""},
		{"dot end", "/a/.", ""},
		{"encoded slash", "/a%2Fb", ""},
		{"encoded slash lower", "/a%2fb", ""},
		{"encoded backslash", "/a%5cb", ""},
		{"backslash", "/a\\b", ""},
		{"semicolon", "/a;b", ""},
		{"encoded semicolon", "/a%3Bb", ""},
		{"hash", "/a#b", ""},
		{"encoded hash", "/a%23b", ""},
		{"encoded hash end", "/a%23", ""},
		{"encoded question", "/a%3Fb", ""},
		{"encoded question lower", "/a%3fb", ""},
		{"encoded question end", "/secret%3F", ""},
		{"encoded question and query", "/secret%3F?x=1", ""},
		{"nul", "/a%00", ""},
		{"del", "/a%7F", ""},
		{"tab", "/a%09", ""},
		{"encoded percent", "/a%25", ""},
		{"double encoded dot", "/%252e", ""},
		{"overlong", "/%c0%af", ""},
		{"invalid utf8", "/%ff", ""},
		{"truncated utf8", "/%e2%82", ""},
		{"star", "*", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.ParseRequestURI(tc.target)
			if err != nil {
				t.Fatalf("ParseRequestURI(%q): %v", tc.target, err)
			}
			got, err := CheckPath(u)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("CheckPath(%q) = %q, want error", tc.target, got)
				}
				if !errors.Is(err, ErrBadPath) {
					t.Fatalf("error %v is not ErrBadPath", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CheckPath(%q) = %q, %v; want %q", tc.target, got, err, tc.want)
			}
		})
	}
	// Absolute form without a path means "/"; opaque URLs are refused.
	if got, err := CheckPath(&url.URL{Scheme: "http", Host: "x"}); err != nil || got != "/" {
		t.Errorf("empty path = %q, %v; want /", got, err)
	}
	if _, err := CheckPath(&url.URL{Path: "a/b"}); err == nil {
		t.Errorf("relative path accepted")
	}
	if _, err := CheckPath(&url.URL{Scheme: "http", Opaque: "x"}); err == nil {
		t.Errorf("opaque URL accepted")
	}
}

func TestCheckPathAllocs(t *testing.T) {
	u, _ := url.ParseRequestURI("/api/v1/users/42/profile?x=1")
	if n := testing.AllocsPerRun(100, func() { _, _ = CheckPath(u) }); n != 0 {
		t.Errorf("CheckPath of a clean path allocates %v times, want 0", n)
	}
	for _, target := range []string{"/a/%2e%2e/b", "/secret%3F", "/secret%3f", "/a%23b"} {
		bad, _ := url.ParseRequestURI(target)
		if n := testing.AllocsPerRun(100, func() { _, _ = CheckPath(bad) }); n != 0 {
			t.Errorf("CheckPath(%q), refused, allocates %v times, want 0", target, n)
		}
	}
}

// FuzzCheckPath: CheckPath never panics, and an accepted path is clean and
// a fixed point.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "//a//b", "/%2e%2e/", "/a%2fb", "/caf%C3%A9", "/a;b", "/%c0%af", "*", "/a/./b", "/%25", "/a\\b", "/a%3Fb", "/a%3f", "/a%23b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		clean, err := CheckPath(u)
		if err != nil {
			return
		}
		if !strings.HasPrefix(clean, "/") {
			t.Fatalf("%q: clean %q does not start with /", target, clean)
		}
		if strings.Contains(clean, "//") {
			t.Fatalf("%q: clean %q has //", target, clean)
		}
		if !utf8.ValidString(clean) {
			t.Fatalf("%q: clean %q is not UTF-8", target, clean)
		}
		for _, seg := range strings.Split(clean, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q: clean %q has a dot segment", target, clean)
			}
		}
		for i := 0; i < len(clean); i++ {
			c := clean[i]
			if c < 0x20 || c == 0x7f || c == '\\' || c == ';' || c == '#' || c == '?' || c == '%' {
				t.Fatalf("%q: clean %q has byte %#x", target, clean, c)
			}
		}
		// The clean path is a fixed point, decoded and as it goes on the
		// wire.
		again, err := CheckPath(&url.URL{Path: clean})
		if err != nil || again != clean {
			t.Fatalf("%q: CheckPath(clean %q) = %q, %v", target, clean, again, err)
		}
		wire := (&url.URL{Path: clean}).EscapedPath()
		wu, err := url.ParseRequestURI(wire)
		if err != nil {
			t.Fatalf("%q: wire form %q does not parse: %v", target, wire, err)
		}
		if again, err := CheckPath(wu); err != nil || again != clean {
			t.Fatalf("%q: wire form %q checks as %q, %v", target, wire, again, err)
		}
	})
}

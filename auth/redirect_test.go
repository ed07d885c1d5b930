package auth

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// redirectCase is one line of testdata/redirects.txt.
type redirectCase struct {
	line     int
	rd, want string
}

func loadRedirectCases(t *testing.T) []redirectCase {
	t.Helper()
	f, err := os.Open("testdata/redirects.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []redirectCase
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var fields [2]string
		rest := line
		for i := range fields {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("redirects.txt:%d: %v", n, err)
			}
			if fields[i], err = strconv.Unquote(q); err != nil {
				t.Fatalf("redirects.txt:%d: %v", n, err)
			}
			rest = strings.TrimSpace(rest[len(q):])
		}
		cases = append(cases, redirectCase{line: n, rd: fields[0], want: fields[1]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func TestSafeRedirectPayloads(t *testing.T) {
	allowed := []string{"app.example.net", ".trusted.org", "ports.example:8443", "any.example:*"}
	cases := loadRedirectCases(t)
	if len(cases) < 40 {
		t.Fatalf("only %d payloads in testdata/redirects.txt, want >= 40", len(cases))
	}
	for _, tc := range cases {
		if got := SafeRedirect(tc.rd, "good.com", allowed); got != tc.want {
			t.Errorf("redirects.txt:%d: SafeRedirect(%q) = %q, want %q", tc.line, tc.rd, got, tc.want)
		}
	}
}

func TestSafeRedirectHosts(t *testing.T) {
	tests := []struct {
		name, rd, host string
		allowed        []string
		want           string
	}{
		{"empty", "", "good.com", nil, "/"},
		{"own host with port", "http://good.com:8080/x", "good.com:8080", nil, "http://good.com:8080/x"},
		{"own host other port", "http://good.com:9090/x", "good.com:8080", nil, "/"},
		{"request host upper case", "https://good.com/", "GOOD.com", nil, "https://good.com/"},
		{"request host default port", "https://good.com/", "good.com:443", nil, "https://good.com/"},
		{"http default port is not https", "https://good.com/", "good.com:80", nil, "/"},
		{"ipv6 own host", "http://[::1]:8080/x", "[::1]:8080", nil, "http://[::1]:8080/x"},
		{"ipv6 other port", "http://[::1]:9/x", "[::1]:8080", nil, "/"},
		{"allowed entry upper case", "https://app.example.net/", "good.com", []string{"APP.Example.NET"}, "https://app.example.net/"},
		{"allowed entry without port refuses a port", "https://app.example.net:8443/", "good.com", []string{"app.example.net"}, "/"},
		{"empty allowed entry", "https://evil.com/", "good.com", []string{""}, "/"},
		{"bare dot entry", "https://evil.com/", "good.com", []string{"."}, "/"},
		{"no request host", "https://good.com/", "", nil, "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := SafeRedirect(tc.rd, tc.host, tc.allowed); got != tc.want {
				t.Errorf("SafeRedirect(%q, %q) = %q, want %q", tc.rd, tc.host, got, tc.want)
			}
		})
	}
}

// FuzzSafeRedirect checks invariants that must hold for any input: the
// result is "/" or a same-origin path that no browser reads as another
// host, or an absolute URL naming the request's host.
func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{"/", "//evil.com", "/\\evil.com", "https://good.com/x", "/%2F/x", "http://a@b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rd string) {
		got := SafeRedirect(rd, "good.com", nil)
		if got == "/" {
			return
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; c <= 0x20 || c >= 0x7f || c == '\\' {
				t.Fatalf("SafeRedirect(%q) = %q holds byte %#x", rd, got, c)
			}
		}
		lower := strings.ToLower(got)
		switch {
		case strings.HasPrefix(got, "/"):
			if strings.HasPrefix(got, "//") {
				t.Fatalf("SafeRedirect(%q) = %q is protocol-relative", rd, got)
			}
		case strings.HasPrefix(lower, "http://good.com"), strings.HasPrefix(lower, "https://good.com"):
			rest := lower[strings.Index(lower, "good.com")+len("good.com"):]
			if rest != "" && !strings.ContainsAny(rest[:1], "/?#:") {
				t.Fatalf("SafeRedirect(%q) = %q names another host", rd, got)
			}
		default:
			t.Fatalf("SafeRedirect(%q) = %q", rd, got)
		}
	})
}

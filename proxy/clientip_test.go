package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func testTrusted(tb testing.TB) trustedNets {
	tb.Helper()
	t, err := parseTrusted([]string{"127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48"})
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// TestClientAddrForwardedEntries: an X-Forwarded-For entry with a port
// counts as its address, and an entry that is not an address is the client
// as written. Before the fix both ended the walk at the last trusted hop,
// so behind a proxy that writes ports every client was that proxy, and a
// few failed logins from anywhere locked out every user.
func TestClientAddrForwardedEntries(t *testing.T) {
	trusted := testTrusted(t)
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"untrusted peer", "192.0.2.1:5000", []string{"203.0.113.5"}, "192.0.2.1"},
		{"no header", "127.0.0.1:5000", nil, "127.0.0.1"},
		{"plain", "127.0.0.1:5000", []string{"203.0.113.5"}, "203.0.113.5"},
		{"ipv4 port", "127.0.0.1:5000", []string{"203.0.113.5:4711"}, "203.0.113.5"},
		{"ipv6 port", "127.0.0.1:5000", []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
		{"ipv6 brackets", "127.0.0.1:5000", []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"ipv6 plain", "127.0.0.1:5000", []string{"2001:db8::1"}, "2001:db8::1"},
		{"ipv6 zone", "127.0.0.1:5000", []string{"[fe80::1%eth0]:80"}, "fe80::1"},
		{"bracket in zone", "127.0.0.1:5000", []string{"[::%[]:0"}, "[::%[]:0"},
		{"bracket in bare zone", "127.0.0.1:5000", []string{"[::%[], [::%]]"}, "[::%]]"},
		{"ipv6 odd zone", "127.0.0.1:5000", []string{"[fe80::1%a b ]:80, fe80::2%x"}, "fe80::2"},
		{"trusted hop with port", "127.0.0.1:5000", []string{"203.0.113.5:1, 10.0.0.2:2"}, "203.0.113.5"},
		{"trusted ipv6 hop with port", "127.0.0.1:5000", []string{"198.51.100.7, [2001:db8:ffff::9]:443"}, "198.51.100.7"},
		{"two lines", "127.0.0.1:5000", []string{"198.51.100.7:9", "10.0.0.3:80"}, "198.51.100.7"},
		{"spaces", "127.0.0.1:5000", []string{" 203.0.113.5:4711 ,10.0.0.2 "}, "203.0.113.5"},
		{"all trusted", "127.0.0.1:5000", []string{"10.0.0.1:1, 10.0.0.2"}, "10.0.0.1"},
		{"unknown", "127.0.0.1:5000", []string{"unknown"}, "unknown"},
		{"unknown behind trusted", "127.0.0.1:5000", []string{"unknown, 10.0.0.2:80"}, "unknown"},
		{"obfuscated", "127.0.0.1:5000", []string{"203.0.113.5, _hidden"}, "_hidden"},
		{"bracketed ipv4", "127.0.0.1:5000", []string{"[203.0.113.5]:80"}, "[203.0.113.5]:80"},
		{"ipv6 port no brackets", "127.0.0.1:5000", []string{"2001:db8::1:4711x"}, "2001:db8::1:4711x"},
		{"bad port", "127.0.0.1:5000", []string{"203.0.113.5:99999"}, "203.0.113.5:99999"},
		{"empty port", "127.0.0.1:5000", []string{"203.0.113.5:"}, "203.0.113.5:"},
		{"empty entries", "127.0.0.1:5000", []string{" , ,"}, "127.0.0.1"},
		{"client-written left of real", "127.0.0.1:5000", []string{"10.0.0.9, 203.0.113.5:4711"}, "203.0.113.5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			if tc.xff != nil {
				r.Header["X-Forwarded-For"] = tc.xff
			}
			got, _ := trusted.clientAddr(r)
			if got != tc.want {
				t.Errorf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
	r := &http.Request{RemoteAddr: "127.0.0.1:5000", Header: http.Header{"X-Forwarded-For": {"198.51.100.7:9, [2001:db8::1]:4711, 10.0.0.2:80"}}}
	if n := testing.AllocsPerRun(100, func() { trusted.clientAddr(r) }); n != 0 {
		t.Errorf("clientAddr allocates %v times, want 0", n)
	}
}

// FuzzClientAddr: clientAddr never panics, never answers a trusted proxy's
// address while an untrusted or unparsable entry exists, never answers a
// port, and agrees with a plain reference walk built on net.SplitHostPort.
func FuzzClientAddr(f *testing.F) {
	for _, s := range [][2]string{
		{"203.0.113.5", ""}, {"203.0.113.5:4711", "10.0.0.2"}, {"[2001:db8::1]:4711", ""},
		{"unknown, 10.0.0.2:80", ""}, {"10.0.0.1, 10.0.0.2", "127.0.0.1"}, {"[203.0.113.5]:80", ""},
		{" , ,", "[2001:db8:ffff::1]"}, {"fe80::1%eth0", "[fe80::1%25eth0]:80"},
	} {
		f.Add(s[0], s[1])
	}
	trusted := testTrusted(f)
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		r := &http.Request{RemoteAddr: "127.0.0.1:5000", Header: http.Header{"X-Forwarded-For": {line1, line2}}}
		got, trustedPeer := trusted.clientAddr(r)
		if !trustedPeer {
			t.Fatalf("peer 127.0.0.1 not trusted")
		}
		if want := refClientAddr(trusted, []string{line1, line2}); got != want {
			t.Fatalf("clientAddr(%q, %q) = %q, reference %q", line1, line2, got, want)
		}
		if strings.Contains(got, ",") || strings.TrimSpace(got) != got || got == "" {
			t.Fatalf("clientAddr(%q, %q) = %q: not one trimmed entry", line1, line2, got)
		}
		if ap, err := netip.ParseAddrPort(got); err == nil && ap.Addr().Zone() == "" {
			t.Fatalf("clientAddr(%q, %q) = %q keeps a port", line1, line2, got)
		}
		if a, err := netip.ParseAddr(got); err == nil && trusted.contains(a) {
			// Only when every entry is a trusted address.
			for _, e := range strings.Split(line1+","+line2, ",") {
				if e = strings.TrimSpace(e); e == "" {
					continue
				}
				if _, a, ok := parseForwardedAddr(e); !ok || !trusted.contains(a) {
					t.Fatalf("clientAddr(%q, %q) = trusted %q although %q is not a trusted address", line1, line2, got, e)
				}
			}
		}
	})
}

// refClientAddr is clientAddr written the slow, obvious way, with another
// parser for the entries.
func refClientAddr(trusted trustedNets, lines []string) string {
	var entries []string
	for _, l := range lines {
		for _, e := range strings.Split(l, ",") {
			if e = strings.TrimSpace(e); e != "" {
				entries = append(entries, e)
			}
		}
	}
	client := "127.0.0.1"
	for i := len(entries) - 1; i >= 0; i-- {
		host, a, ok := refParseEntry(entries[i])
		if !ok {
			return entries[i]
		}
		client = host
		if !trusted.contains(a) {
			return client
		}
	}
	return client
}

func refParseEntry(e string) (string, netip.Addr, bool) {
	if a, err := netip.ParseAddr(e); err == nil {
		return refNoZone(e, a)
	}
	bracketed := strings.HasPrefix(e, "[")
	if bracketed && strings.HasSuffix(e, "]") {
		// As net.SplitHostPort: no bracket inside the brackets.
		a, err := netip.ParseAddr(e[1 : len(e)-1])
		if err != nil || !a.Is6() || strings.ContainsAny(e[1:len(e)-1], "[]") {
			return "", netip.Addr{}, false
		}
		return refNoZone(e[1:len(e)-1], a)
	}
	host, port, err := net.SplitHostPort(e)
	if err != nil {
		return "", netip.Addr{}, false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || bracketed != a.Is6() {
		return "", netip.Addr{}, false
	}
	return refNoZone(host, a)
}

func refNoZone(host string, a netip.Addr) (string, netip.Addr, bool) {
	if a.Zone() != "" {
		host, _, _ = strings.Cut(host, "%")
	}
	return host, a.WithZone(""), true
}

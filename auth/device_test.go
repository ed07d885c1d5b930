package auth

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// deviceCookieOf is the device cookie res sets, or fails the test.
func deviceCookieOf(t *testing.T, res result) *http.Cookie {
	t.Helper()
	for _, sc := range res.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(sc)
		if err == nil && c.Name == DeviceCookieName {
			return c
		}
	}
	t.Fatalf("no device cookie in %q", res.header.Values("Set-Cookie"))
	return nil
}

// TestDeviceCookieSkipsEmailLockout: failures from ten addresses fill the
// per-email window over all addresses, so a login from a new address gets
// 429 even with the right password; the same login from a browser holding
// the device cookie of an earlier sign-in succeeds. A device cookie of
// another account, or a forged one, does not help; the per email-and-
// address limit still applies with a valid one.
func TestDeviceCookieSkipsEmailLockout(t *testing.T) {
	g := newTestGateway(t, func(c *config.Config) { c.Auth.MaxLoginFailures = 2 })
	g.register("ann@example.com", "password1")
	g.register("bob@example.com", "password1")
	login := func(email, password, ip string, device string) result {
		rq := request{method: "POST", path: "/login", contentType: jsonType,
			body: credsJSON(email, password), header: []string{testClientIPHeader, ip}}
		if device != "" {
			rq.header = append(rq.header, "Cookie", DeviceCookieName+"="+device)
		}
		return g.do(rq)
	}
	first := login("ann@example.com", "password1", "198.51.100.1", "")
	if first.status != http.StatusOK {
		t.Fatalf("first login: status = %d", first.status)
	}
	dc := deviceCookieOf(t, first)
	if dc.Path != "/login" || !dc.HttpOnly || !dc.Secure || dc.MaxAge < 365*24*3600 || !strings.HasPrefix(dc.Value, "gd1.") {
		t.Errorf("device cookie = %+v; want Path=/login, HttpOnly, Secure, a long Max-Age", dc)
	}
	bobDevice := deviceCookieOf(t, login("bob@example.com", "password1", "198.51.100.1", "")).Value

	// Ten addresses, max_login_failures each: 10x the limit for the email.
	for i := range 10 {
		for range 2 {
			if res := login("ann@example.com", "wrong-password", fmt.Sprintf("203.0.113.%d", i+1), ""); res.status != http.StatusUnauthorized {
				t.Fatalf("failure from address %d: status = %d", i, res.status)
			}
		}
	}
	checkError(t, login("ann@example.com", "password1", "192.0.2.77", ""), apierror.TooManyAttempts)
	forged := dc.Value[:len(dc.Value)-2] + "AA"
	for name, dev := range map[string]string{"other account's": bobDevice, "forged": forged} {
		if res := login("ann@example.com", "password1", "192.0.2.77", dev); res.status != http.StatusTooManyRequests {
			t.Errorf("%s device cookie: status = %d, want 429", name, res.status)
		}
	}
	if res := login("ann@example.com", "password1", "192.0.2.77", dc.Value); res.status != http.StatusOK {
		t.Fatalf("with the device cookie: status = %d, want 200 (%s)", res.status, res.body)
	}

	// The per email-and-address limit still applies to a device: two
	// failures from one address, then that address waits, cookie or not.
	for range 2 {
		if res := login("ann@example.com", "wrong-password", "192.0.2.88", dc.Value); res.status != http.StatusUnauthorized {
			t.Fatalf("failure with the device cookie: status = %d", res.status)
		}
	}
	checkError(t, login("ann@example.com", "password1", "192.0.2.88", dc.Value), apierror.TooManyAttempts)
}

// TestDeviceCookieLimitedPerDevice: a stolen device cookie buys no more
// guesses than one address: its own window over all addresses is
// max_login_failures, after which it is refused like any other attempt.
func TestDeviceCookieLimitedPerDevice(t *testing.T) {
	g := newTestGateway(t, func(c *config.Config) { c.Auth.MaxLoginFailures = 2 })
	res := g.do(request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON("ann@example.com", "password1")})
	dev := deviceCookieOf(t, res).Value
	login := func(password, ip string) int {
		return g.do(request{method: "POST", path: "/login", contentType: jsonType, body: credsJSON("ann@example.com", password),
			header: []string{testClientIPHeader, ip, "Cookie", DeviceCookieName + "=" + dev}}).status
	}
	for i := range 2 {
		if st := login("wrong-password", fmt.Sprintf("203.0.113.%d", i+1)); st != http.StatusUnauthorized {
			t.Fatalf("failure %d: status = %d", i, st)
		}
	}
	if st := login("password1", "203.0.113.50"); st != http.StatusTooManyRequests {
		t.Errorf("the device's window is full: status = %d, want 429", st)
	}
}

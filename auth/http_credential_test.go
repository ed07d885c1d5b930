package auth

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
)

// gatewayKinds runs a test against the endpoints alone and behind the
// real proxy.Gateway.
var gatewayKinds = []struct {
	name string
	new  func(t *testing.T) *testGateway
}{
	{"endpoints", func(t *testing.T) *testGateway { return newTestGateway(t, nil) }},
	{"proxied", func(t *testing.T) *testGateway { return newProxiedTestGateway(t, nil) }},
}

// tossed is a Cookie header with an empty session cookie ahead of the real
// one, as a cookie tossed from a sibling domain (or set with a longer Path)
// produces.
func tossed(token string) []string {
	return []string{"Cookie", "gatehouse_session=; gatehouse_session=" + token}
}

// TestHTTPTossedCookie: the endpoints read the session like the proxy does
// (proxy.Credential, injected as HandlerOptions.Credential). Before the
// fix they took the first cookie of the name even when empty: /logout
// answered 204 but left the real session alive in the store, /me said
// 401 to a session the proxy accepted, and /login's fixation defence
// missed the token the client brought.
func TestHTTPTossedCookie(t *testing.T) {
	for _, k := range gatewayKinds {
		t.Run(k.name, func(t *testing.T) {
			g := k.new(t)
			tok := g.register("tossed@example.com", "password1")

			res := g.do(request{method: "GET", path: "/me", header: tossed(tok)})
			if res.status != http.StatusOK {
				t.Errorf("/me with a tossed cookie: status = %d, want 200 (%s)", res.status, res.body)
			}

			// Login ends the session the client brought.
			fresh := g.sessionToken(g.do(request{method: "POST", path: "/login", contentType: jsonType,
				body: credsJSON("tossed@example.com", "password1"), header: tossed(tok)}))
			if g.alive(tok) || !g.alive(fresh) {
				t.Errorf("login: old alive %v, new alive %v; want false, true", g.alive(tok), g.alive(fresh))
			}
			// So does registration.
			third := g.sessionToken(g.do(request{method: "POST", path: "/register", contentType: jsonType,
				body: credsJSON("tossed2@example.com", "password1"), header: tossed(fresh)}))
			if g.alive(fresh) || !g.alive(third) {
				t.Errorf("register: old alive %v, new alive %v; want false, true", g.alive(fresh), g.alive(third))
			}

			// Logout deletes the session in the store, not only the cookie.
			res = g.do(request{method: "POST", path: "/logout", header: tossed(third)})
			if res.status != http.StatusNoContent {
				t.Fatalf("logout: status = %d, want 204 (%s)", res.status, res.body)
			}
			if g.alive(third) {
				t.Error("logout with a tossed cookie answered 204 but the session is still valid")
			}
			if !strings.HasPrefix(k.name, "proxied") {
				return
			}
			// Behind the proxy: the proxied route refuses it too.
			res = g.do(request{method: "GET", path: "/app", header: tossed(third)})
			if res.status != http.StatusUnauthorized {
				t.Errorf("proxied request after logout: status = %d, want 401", res.status)
			}
		})
	}
}

// TestHTTPSeveralAuthorization: every Authorization value is looked at, as
// the proxy does. Before the fix the endpoints read only the first one
// (Header.Get): a logout behind a foreign Bearer value ended nothing, and a
// login ended only one of several tokens.
func TestHTTPSeveralAuthorization(t *testing.T) {
	for _, k := range gatewayKinds {
		t.Run(k.name, func(t *testing.T) {
			g := k.new(t)
			g.register("several@example.com", "password1")
			a := g.login("several@example.com", "password1")

			res := g.do(request{method: "GET", path: "/me",
				header: []string{"Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "Authorization", "Bearer " + a}})
			if res.status != http.StatusOK {
				t.Errorf("/me behind a foreign Bearer: status = %d, want 200 (%s)", res.status, res.body)
			}

			res = g.do(request{method: "POST", path: "/logout",
				header: []string{"Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "Authorization", "Bearer " + a}})
			if res.status != http.StatusNoContent {
				t.Fatalf("logout: status = %d, want 204 (%s)", res.status, res.body)
			}
			if g.alive(a) {
				t.Error("logout behind a foreign Bearer left the session valid")
			}

			// A login ends every token presented: a tossed and a real
			// cookie, and several Bearer values.
			c := g.login("several@example.com", "password1")
			b1 := g.login("several@example.com", "password1")
			b2 := g.login("several@example.com", "password1")
			fresh := g.sessionToken(g.do(request{method: "POST", path: "/login", contentType: jsonType,
				body:   credsJSON("several@example.com", "password1"),
				header: append(tossed(c), "Authorization", "Bearer "+b1, "Authorization", "Basic dXNlcjpwdw==", "Authorization", "Bearer "+b2)}))
			for name, tok := range map[string]string{"cookie": c, "first bearer": b1, "second bearer": b2} {
				if g.alive(tok) {
					t.Errorf("login left the %s's session valid", name)
				}
			}
			if !g.alive(fresh) {
				t.Error("the new session is not valid")
			}

			// Registration too, with Bearer values only.
			b3 := g.login("several@example.com", "password1")
			b4 := g.login("several@example.com", "password1")
			reg := g.sessionToken(g.do(request{method: "POST", path: "/register", contentType: jsonType,
				body:   credsJSON("several2@example.com", "password1"),
				header: []string{"Authorization", "Bearer " + b3, "Authorization", "Bearer " + b4}}))
			if g.alive(b3) || g.alive(b4) || !g.alive(reg) {
				t.Errorf("register: alive %v, %v, new %v; want false, false, true", g.alive(b3), g.alive(b4), g.alive(reg))
			}
		})
	}
}

// TestHTTPSlowBody: the public server has no ReadTimeout, so a client that
// announced a body and trickled it held a connection (and a goroutine)
// forever. The endpoints now give it bodyReadTimeout (shortened here), and
// then answer and close the connection. The guard below only detects the
// hang; it is not a measure of speed.
func TestHTTPSlowBody(t *testing.T) {
	const guard = 10 * time.Second
	short := func(o *HandlerOptions) { o.bodyReadTimeout = 100 * time.Millisecond }
	kinds := []struct {
		name string
		new  func(t *testing.T) *testGateway
	}{
		{"endpoints", func(t *testing.T) *testGateway {
			return newTestGatewayWith(t, func(c *config.Config) { c.Auth.Registration = config.RegistrationOpen }, false, short)
		}},
		{"proxied", func(t *testing.T) *testGateway { return newProxiedTestGateway(t, short) }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			g := k.new(t)
			for _, target := range []string{"POST /login", "POST /register", "POST /logout", "PUT /login"} {
				t.Run(target, func(t *testing.T) {
					conn, err := net.Dial("tcp", g.host)
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close()
					_ = conn.SetReadDeadline(time.Now().Add(guard))
					head := target + " HTTP/1.1\r\nHost: " + g.host + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
					if _, err := io.WriteString(conn, head); err != nil {
						t.Fatal(err)
					}
					type answer struct {
						res *http.Response
						err error
					}
					done := make(chan answer, 1)
					go func() {
						res, err := http.ReadResponse(bufio.NewReader(conn), nil)
						if err == nil {
							_, _ = io.Copy(io.Discard, res.Body)
							res.Body.Close()
						}
						done <- answer{res, err}
					}()
					// Trickle the body, one space a tick, never all of it.
					tick := time.NewTicker(20 * time.Millisecond)
					defer tick.Stop()
					var got answer
				trickle:
					for sent := 1; ; sent++ {
						select {
						case got = <-done:
							break trickle
						case <-tick.C:
							if sent < 99 {
								if _, err := io.WriteString(conn, " "); err != nil {
									got = <-done // the gateway closed the connection
									break trickle
								}
							}
						}
					}
					if ne, ok := errors.AsType[net.Error](got.err); ok && ne.Timeout() {
						t.Fatalf("no answer within %v: the trickled body holds the connection", guard)
					}
					if got.err == nil {
						want := http.StatusBadRequest
						if strings.HasPrefix(target, "PUT") {
							want = http.StatusMethodNotAllowed
						}
						if got.res.StatusCode != want {
							t.Errorf("status = %d, want %d", got.res.StatusCode, want)
						}
					}
					// Whatever was answered, the connection is closed: its
					// unread body must never be parsed as a request.
					if _, err := conn.Read(make([]byte, 1)); err == nil {
						t.Error("connection still open after the answer")
					} else if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
						t.Error("connection still open after the answer")
					}
				})
			}
			// A body sent in time is served as before.
			g.register("slow@example.com", "password1")
		})
	}
}

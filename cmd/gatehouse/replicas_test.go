package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/auth/redistest"
)

// redisConfig is a gateway on a real Redis with an httptest-free echo
// upstream; every replica started from it shares the store.
func redisConfig(r *redistest.Instance, registration string) string {
	return fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
redis:
  url: %q
  key_prefix: %q
upstreams:
  demo: builtin:echo
routes:
  - path: /
    policy: authenticated
auth:
  registration: %s
  bcrypt_cost: 4
session:
  cookie_secure: false
`, r.URL, r.KeyPrefix, registration)
}

// Two replicas share one Redis: a session made on one is valid on the
// other, and a logout on the second is seen by the first at once.
func TestTwoReplicasShareSessions(t *testing.T) {
	r := redistest.Server(t)
	cfg := redisConfig(r, "open")
	a := newTestGateway(t, cfg, nil)
	b := newTestGateway(t, cfg, nil)

	c := newClient(t)
	st, h, body := do(t, c, "POST", a.public+"/login", "application/json", `{"email":"bob@example.com","password":"hunter2hunter2"}`)
	if st != 401 {
		t.Fatalf("login before register = %d %s, want 401", st, body)
	}
	st, h, body = do(t, c, "POST", a.public+"/register", "application/json", `{"email":"bob@example.com","password":"hunter2hunter2"}`)
	if st != 201 {
		t.Fatalf("register on A = %d %s", st, body)
	}
	cookie := strings.SplitN(h.Get("Set-Cookie"), ";", 2)[0]

	plain := newClient(t)
	if st, _, body := do(t, plain, "GET", b.public+"/x", "", "", "Cookie", cookie); st != 200 || !strings.Contains(body, "X-User-Id") {
		t.Fatalf("session from A used on B = %d %s", st, body)
	}
	if st, _, _ := do(t, plain, "POST", b.public+"/logout", "", "", "Cookie", cookie); st != 204 {
		t.Fatalf("logout on B = %d", st)
	}
	if st, _, _ := do(t, plain, "GET", a.public+"/x", "", "", "Cookie", cookie); st != 401 {
		t.Fatalf("A after logout on B = %d, want 401", st)
	}
}

// The operator commands work against the configured store: users add with
// registration closed, sessions revoke, users delete.
func TestUsersAndSessionsCommands(t *testing.T) {
	r := redistest.Server(t)
	path := t.TempDir() + "/gw.yaml"
	if err := os.WriteFile(path, []byte(redisConfig(r, "closed")), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, path, nil)
	c := newClient(t)
	const creds = `{"email":"carol@example.com","password":"a long passphrase"}`
	if st, _, body := do(t, c, "POST", g.public+"/register", "application/json", creds); st != 403 || !strings.Contains(body, "registration_closed") {
		t.Fatalf("register while closed = %d %s", st, body)
	}

	cli := func(stdin string, args ...string) (string, error) {
		var out, errOut strings.Builder
		err := run(t.Context(), append(args[:1:1], append([]string{args[1], "-config", path}, args[2:]...)...), noEnv, strings.NewReader(stdin), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if out, err := cli("a long passphrase\n", "users", "add", " Carol@Example.com"); err != nil {
		t.Fatalf("users add: %v\n%s", err, out)
	}
	if out, err := cli("another one\n", "users", "add", "carol@example.com"); err == nil || exitCode(err) != 1 {
		t.Fatalf("users add twice = %v (%s), want exit 1", err, out)
	}
	if st, _, body := do(t, c, "POST", g.public+"/login", "application/json", creds); st != 200 {
		t.Fatalf("login after users add = %d %s", st, body)
	}
	if st, _, _ := do(t, c, "GET", g.public+"/me", "", ""); st != 200 {
		t.Fatalf("/me after login = %d", st)
	}
	if out, err := cli("", "sessions", "revoke", "carol@example.com"); err != nil || !strings.Contains(out, "ended 1 sessions") {
		t.Fatalf("sessions revoke = %v %q", err, out)
	}
	if st, _, _ := do(t, c, "GET", g.public+"/me", "", ""); st != 401 {
		t.Fatalf("/me after revoke = %d, want 401", st)
	}
	if st, _, _ := do(t, c, "POST", g.public+"/login", "application/json", creds); st != 200 {
		t.Fatalf("login again = %d", st)
	}
	if out, err := cli("", "users", "delete", "carol@example.com"); err != nil {
		t.Fatalf("users delete: %v %s", err, out)
	}
	if st, _, _ := do(t, c, "GET", g.public+"/me", "", ""); st != 401 {
		t.Fatalf("/me after users delete = %d, want 401", st)
	}
	if st, _, _ := do(t, c, "POST", g.public+"/login", "application/json", creds); st != 401 {
		t.Fatalf("login after users delete = %d, want 401", st)
	}
	if out, err := cli("", "users", "delete", "carol@example.com"); err == nil || !strings.Contains(err.Error(), "no account") {
		t.Fatalf("users delete of a missing user = %v %q", err, out)
	}
}

// The operator commands refuse the embedded store, which lives only inside
// a serving process.
func TestAccountsRefuseEmbeddedStore(t *testing.T) {
	path := t.TempDir() + "/gw.yaml"
	os.WriteFile(path, []byte(embeddedConfig), 0o600)
	var out strings.Builder
	err := run(t.Context(), []string{"users", "add", "-config", path, "a@example.com"}, noEnv, strings.NewReader("password1\n"), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "embedded") {
		t.Fatalf("users add on the embedded store = %v", err)
	}
}

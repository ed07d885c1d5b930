package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/auth/redistest"
)

// groupsConfig is redisConfig with an /admin/ rule for the admins group and
// auth.groups naming everyone at example.org.
func groupsConfig(r *redistest.Instance) string {
	return fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
redis:
  url: %q
  key_prefix: %q
upstreams:
  demo: builtin:echo
routes:
  - path: /admin/
    policy: authenticated
    groups: [admins]
  - path: /
    policy: authenticated
auth:
  registration: open
  bcrypt_cost: 4
  groups:
    staff: ["*@example.org"]
session:
  cookie_secure: false
`, r.URL, r.KeyPrefix)
}

// TestGroupsAndAccountCommandsAcrossReplicas: groups, disable, set-password
// and tokens, changed by the operator, hold at the very next request on two
// gateways sharing one Redis, and an authenticated request with groups
// configured still costs exactly one Redis command.
func TestGroupsAndAccountCommandsAcrossReplicas(t *testing.T) {
	r := redistest.Server(t, redistest.WithPassword("groups-test"))
	path := t.TempDir() + "/gw.yaml"
	if err := os.WriteFile(path, []byte(groupsConfig(r)), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startGateway(t, path, nil)
	b := startGateway(t, path, nil)
	cli := func(stdin string, args ...string) (string, error) {
		t.Helper()
		var out, errOut strings.Builder
		err := run(t.Context(), append(args[:2:2], append([]string{"-config", path}, args[2:]...)...), noEnv, strings.NewReader(stdin), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	c := newClient(t)
	if st, _, body := do(t, c, "POST", a.public+"/register", "application/json", `{"email":"ann@example.org","password":"correct horse"}`); st != 201 {
		t.Fatalf("register = %d %s", st, body)
	}
	expect := func(what string, want int, path string) string {
		t.Helper()
		var body string
		for _, g := range []*testGateway{a, b} {
			var st int
			st, _, body = do(t, c, "GET", g.public+path, "", "")
			if st != want {
				t.Fatalf("%s: GET %s on %s = %d, want %d (%s)", what, path, g.public, st, want, body)
			}
		}
		return body
	}
	expect("no group yet", 403, "/admin/x")
	if body := expect("file group", 200, "/x"); !strings.Contains(body, `"staff"`) {
		t.Errorf("upstream did not get X-User-Groups staff: %s", body)
	}

	if out, err := cli("", "users", "groups", "ann@example.org", "+admins", "+ops"); err != nil || !strings.Contains(out, "account groups: admins,ops") {
		t.Fatalf("users groups +admins +ops = %v %q", err, out)
	}
	if body := expect("group added", 200, "/admin/x"); !strings.Contains(body, `"admins,ops,staff"`) {
		t.Errorf("upstream groups after the change: %s", body)
	}

	// One Redis command per authenticated request, groups and all.
	if err := r.Client(t).ConfigResetStat(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for range n {
		if st, _, _ := do(t, c, "GET", a.public+"/admin/x", "", ""); st != 200 {
			t.Fatal("admin request failed")
		}
	}
	calls := redistest.CommandCalls(t, r.Client(t))
	if calls["getex"] < n {
		t.Errorf("getex = %d, want at least %d", calls["getex"], n)
	}
	total := 0
	for cmd, k := range calls {
		switch cmd {
		case "info", "config|resetstat", "ping", "hello", "auth", "client|setinfo", "select":
			// The readiness probe's ping and a new pool connection's
			// handshake are not the requests' work.
		default:
			total += k
		}
	}
	if total != n {
		t.Errorf("%d Redis commands for %d authenticated requests, want exactly one each (%v)", total, n, calls)
	}

	if out, err := cli("", "users", "groups", "ann@example.org", "-admins"); err != nil || !strings.Contains(out, "account groups: ops") {
		t.Fatalf("users groups -admins = %v %q", err, out)
	}
	expect("group removed", 403, "/admin/x")

	out, err := cli("", "tokens", "create", "ann@example.org", "ci", "-ttl", "1h")
	if err != nil {
		t.Fatalf("tokens create: %v %s", err, out)
	}
	token := strings.SplitN(out, "\n", 2)[0]
	plain := newClient(t)
	for _, g := range []*testGateway{a, b} {
		if st, _, body := do(t, plain, "GET", g.public+"/x", "", "", "Authorization", "Bearer "+token); st != 200 || !strings.Contains(body, "X-User-Id") {
			t.Fatalf("token on %s = %d %s", g.public, st, body)
		}
	}
	if out, err := cli("", "users", "show", "ann@example.org", "-json"); err != nil {
		t.Fatalf("users show: %v %s", err, out)
	} else {
		var shown struct {
			User struct {
				Groups []string `json:"groups"`
			} `json:"user"`
			Sessions []struct{ ID string } `json:"sessions"`
			Tokens   []struct{ ID, Name string }
		}
		if err := json.Unmarshal([]byte(out), &shown); err != nil {
			t.Fatalf("users show -json: %v\n%s", err, out)
		}
		if len(shown.Sessions) != 1 || len(shown.Tokens) != 1 || shown.Tokens[0].Name != "ci" || strings.Join(shown.User.Groups, ",") != "ops,staff" {
			t.Errorf("users show = %+v", shown)
		}
	}
	if out, err := cli("", "users", "list"); err != nil || !strings.Contains(out, "ann@example.org") || !strings.Contains(out, "EMAIL") {
		t.Errorf("users list = %v %q", err, out)
	}

	if out, err := cli("", "users", "disable", "ann@example.org"); err != nil {
		t.Fatalf("users disable: %v %s", err, out)
	}
	expect("disabled", 401, "/x")
	for _, g := range []*testGateway{a, b} {
		if st, _, _ := do(t, plain, "GET", g.public+"/x", "", "", "Authorization", "Bearer "+token); st != 401 {
			t.Errorf("token after disable on %s = %d, want 401", g.public, st)
		}
	}
	st, _, body := do(t, c, "POST", a.public+"/login", "application/json", `{"email":"ann@example.org","password":"correct horse"}`)
	if st != 401 || !strings.Contains(body, "invalid_credentials") {
		t.Fatalf("login while disabled = %d %s, want 401 invalid_credentials", st, body)
	}
	if out, err := cli("", "users", "enable", "ann@example.org"); err != nil {
		t.Fatalf("users enable: %v %s", err, out)
	}
	if st, _, body := do(t, c, "POST", a.public+"/login", "application/json", `{"email":"ann@example.org","password":"correct horse"}`); st != 200 {
		t.Fatalf("login after enable = %d %s", st, body)
	}
	expect("enabled", 200, "/x")
	if out, err := cli("a new passphrase\n", "users", "set-password", "ann@example.org"); err != nil {
		t.Fatalf("set-password: %v %s", err, out)
	}
	expect("password set", 401, "/x")
	if st, _, _ := do(t, c, "POST", a.public+"/login", "application/json", `{"email":"ann@example.org","password":"correct horse"}`); st != 401 {
		t.Errorf("old password after set-password = %d, want 401", st)
	}
	if st, _, body := do(t, c, "POST", b.public+"/login", "application/json", `{"email":"ann@example.org","password":"a new passphrase"}`); st != 200 {
		t.Errorf("new password = %d %s", st, body)
	}

	// Bad input: a clear error, exit 1 or 2, nothing changed.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"users", "groups", "nobody@example.org", "+admins"}, 1, "no account"},
		{[]string{"users", "groups", "ann@example.org", "+Admins"}, 1, "not a group name"},
		{[]string{"users", "groups", "ann@example.org", "--bogus"}, 2, "unknown flag"},
		{[]string{"users", "show"}, 2, "needs EMAIL"},
		{[]string{"tokens", "revoke", "ann@example.org", "0123"}, 1, "no such token"},
		{[]string{"tokens", "create", "ann@example.org", "x", "-ttl", "nope"}, 2, "-ttl"},
		{[]string{"users", "frobnicate", "ann@example.org"}, 2, "unknown command"},
	} {
		out, err := cli("", tc.args...)
		if err == nil || exitCode(err) != tc.code || !strings.Contains(out+err.Error(), tc.msg) {
			t.Errorf("%q = %v (exit %d) %q, want exit %d with %q", tc.args, err, exitCode(err), out, tc.code, tc.msg)
		}
	}
	if out, _ := cli("", "users", "groups", "ann@example.org"); !strings.Contains(out, "account groups: ops") {
		t.Errorf("groups changed by a refused command: %q", out)
	}
}

// TestLoginRacingGroupRemoval: a login that happens while a group is
// removed never yields a session holding the removed group.
func TestLoginRacingGroupRemoval(t *testing.T) {
	r := redistest.Server(t)
	path := t.TempDir() + "/gw.yaml"
	if err := os.WriteFile(path, []byte(groupsConfig(r)), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, path, nil)
	cli := func(args ...string) {
		t.Helper()
		var out strings.Builder
		if err := run(t.Context(), append(args[:2:2], append([]string{"-config", path}, args[2:]...)...), noEnv, strings.NewReader(""), &out, &out); err != nil {
			t.Errorf("%q: %v %s", args, err, out.String())
		}
	}
	if st, _, body := do(t, newClient(t), "POST", g.public+"/register", "application/json", `{"email":"bob@example.com","password":"correct horse"}`); st != 201 {
		t.Fatalf("register = %d %s", st, body)
	}
	for round := range 10 {
		cli("users", "groups", "bob@example.com", "+admins")
		clients := make([]*http.Client, 6)
		var wg sync.WaitGroup
		for i := range clients {
			clients[i] = newClient(t)
			wg.Go(func() {
				do(t, clients[i], "POST", g.public+"/login", "application/json", `{"email":"bob@example.com","password":"correct horse"}`)
			})
		}
		cli("users", "groups", "bob@example.com", "-admins")
		wg.Wait()
		for i, c := range clients {
			if st, _, _ := do(t, c, "GET", g.public+"/admin/x", "", ""); st != 403 && st != 401 {
				t.Fatalf("round %d, client %d: /admin/ after the removal = %d, want 403", round, i, st)
			}
		}
	}
}

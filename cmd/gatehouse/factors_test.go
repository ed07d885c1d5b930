package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/gatehouse-dev/gatehouse/auth/redistest"
)

// factorConfig is a gateway on a real Redis with a TOTP key file (keyFile
// "" for none) and an /admin/ rule that requires a second factor.
func factorConfig(r *redistest.Instance, keyFile string) string {
	key := ""
	if keyFile != "" {
		key = fmt.Sprintf("  totp:\n    encryption_key_file: %q\n", keyFile)
	}
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
    mfa: required
  - path: /
    policy: authenticated
auth:
  registration: open
  bcrypt_cost: 4
%ssession:
  cookie_secure: false
`, r.URL, r.KeyPrefix, key)
}

// writeTOTPKey writes a fresh base64 key file into dir.
func writeTOTPKey(t *testing.T, dir string) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "totp.key")
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// enrolOverHTTP turns TOTP on for the client's session and returns the
// secret.
func enrolOverHTTP(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	st, _, body := do(t, c, "POST", base+"/me/totp", "", "")
	if st != 200 {
		t.Fatalf("POST /me/totp: %d %s", st, body)
	}
	var b struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(b.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st, _, body := do(t, c, "POST", base+"/me/totp/confirm", "application/json", `{"code":"`+code+`"}`); st != 200 {
		t.Fatalf("confirm: %d %s", st, body)
	}
	return b.Secret
}

// TestSecondFactorOnRealRedis: through the command, a session passes an
// mfa route once TOTP is confirmed in it, each such request still costs
// one Redis command, `users list` shows the factor, and `users reset-2fa`
// removes it and ends the session.
func TestSecondFactorOnRealRedis(t *testing.T) {
	r := redistest.Server(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(path, []byte(factorConfig(r, writeTOTPKey(t, dir))), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, path, nil)
	cli := func(args ...string) (string, error) {
		t.Helper()
		var out, errOut strings.Builder
		err := run(t.Context(), append(args[:2:2], append([]string{"-config", path}, args[2:]...)...), noEnv, strings.NewReader(""), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	c := newClient(t)
	if st, _, body := do(t, c, "POST", g.public+"/register", "application/json", `{"email":"ann@example.com","password":"correct horse"}`); st != 201 {
		t.Fatalf("register: %d %s", st, body)
	}
	if st, _, body := do(t, c, "GET", g.public+"/admin/x", "", "", "Accept", "application/json"); st != 403 || !strings.Contains(body, `"mfa_required"`) {
		t.Fatalf("before the factor: %d %s", st, body)
	}
	enrolOverHTTP(t, c, g.public)

	if err := r.Client(t).ConfigResetStat(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 10
	for range n {
		if st, _, body := do(t, c, "GET", g.public+"/admin/x", "", ""); st != 200 {
			t.Fatalf("after the factor: %d %s", st, body)
		}
	}
	calls := redistest.CommandCalls(t, r.Client(t))
	total := 0
	for cmd, k := range calls {
		switch cmd {
		case "info", "config|resetstat", "ping", "hello", "auth", "client|setinfo", "select":
		default:
			total += k
		}
	}
	if total != n {
		t.Errorf("%d Redis commands for %d requests to an mfa route, want one each (%v)", total, n, calls)
	}

	if out, err := cli("users", "list"); err != nil || !strings.Contains(out, "totp") {
		t.Errorf("users list = %v %q, want the totp factor", err, out)
	}
	out, err := cli("users", "reset-2fa", "Ann@Example.com")
	if err != nil || !strings.Contains(out, "removed the second factors of ann@example.com") || !strings.Contains(out, "ended its 1 sessions") {
		t.Fatalf("users reset-2fa = %v %q", err, out)
	}
	if st, _, _ := do(t, c, "GET", g.public+"/me", "", ""); st != 401 {
		t.Errorf("session after reset-2fa: %d, want 401", st)
	}
	if out, err := cli("users", "show", "ann@example.com", "-json"); err != nil || !strings.Contains(out, `"second_factors": []`) {
		t.Errorf("users show after reset = %v %q", err, out)
	}
	if _, err := cli("users", "reset-2fa", "nobody@example.com"); err == nil || !strings.Contains(err.Error(), "no account") {
		t.Errorf("reset-2fa of no account = %v", err)
	}
}

// TestTOTPKeyChoices: without a key a real Redis has TOTP off (403, and
// check warns); the embedded store gets an ephemeral key that survives a
// reload (an enrolment begun before it confirms after it), with a warning.
func TestTOTPKeyChoices(t *testing.T) {
	r := redistest.Server(t)
	t.Run("real redis without a key", func(t *testing.T) {
		g := newTestGateway(t, factorConfig(r, ""), nil)
		c := newClient(t)
		if st, _, body := do(t, c, "POST", g.public+"/register", "application/json", `{"email":"bob@example.com","password":"correct horse"}`); st != 201 {
			t.Fatalf("register: %d %s", st, body)
		}
		if st, _, body := do(t, c, "POST", g.public+"/me/totp", "", ""); st != 403 || !strings.Contains(body, `"forbidden"`) {
			t.Errorf("enrolment without a key: %d %s", st, body)
		}
		var out, errOut strings.Builder
		if err := run(t.Context(), []string{"check", "-config", g.configPath}, noEnv, strings.NewReader(""), &out, &errOut); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut.String(), "warning: ") || !strings.Contains(errOut.String(), "auth.totp.encryption_key_file: not set, so TOTP is off") {
			t.Errorf("check stderr = %q, want the TOTP warning", errOut.String())
		}
	})
	t.Run("embedded store", func(t *testing.T) {
		cfg := embeddedConfig
		g := newTestGateway(t, cfg, nil)
		c := newClient(t)
		if st, _, body := do(t, c, "POST", g.public+"/register", "application/json", `{"email":"cy@example.com","password":"correct horse"}`); st != 201 {
			t.Fatalf("register: %d %s", st, body)
		}
		st, _, body := do(t, c, "POST", g.public+"/me/totp", "", "")
		if st != 200 {
			t.Fatalf("enrolment on the embedded store: %d %s", st, body)
		}
		var b struct {
			Secret string `json:"secret"`
		}
		if err := json.Unmarshal([]byte(body), &b); err != nil {
			t.Fatal(err)
		}
		// A reload (here: a harmless change to the file) builds new
		// second factors; the key must stay the process's one.
		if err := os.WriteFile(g.configPath, []byte(cfg+"\n# reloaded\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			_, _, m := do(t, c, "GET", g.admin+"/metrics", "", "")
			return strings.Contains(m, `gatehouse_config_reloads_total{result="success"} 1`)
		})
		code, err := totp.GenerateCode(b.Secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if st, _, body := do(t, c, "POST", g.public+"/me/totp/confirm", "application/json", `{"code":"`+code+`"}`); st != 200 {
			t.Errorf("confirm after a reload: %d %s", st, body)
		}
		if n := strings.Count(g.logs.String(), "TOTP secrets are sealed with a per-process key"); n != 1 {
			t.Errorf("ephemeral TOTP key warnings = %d, want 1\n%s", n, g.logs.String())
		}
		var out, errOut strings.Builder
		if err := run(t.Context(), []string{"check", "-config", g.configPath}, noEnv, strings.NewReader(""), &out, &errOut); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(errOut.String(), "totp") {
			t.Errorf("check warns about TOTP on the embedded store: %q", errOut.String())
		}
	})
}

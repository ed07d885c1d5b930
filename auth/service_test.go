package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-dev/gatehouse/config"
)

func TestRegisterRules(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		tune     func(*config.Config)
		email    string
		password string
		want     error
	}{
		{"closed", func(c *config.Config) { c.Auth.Registration = config.RegistrationClosed }, "ann@example.com", "password1", ErrRegistrationClosed},
		{"invalid email", nil, "ann", "password1", ErrInvalidEmail},
		{"short password", nil, "ann@example.com", "passwd", ErrWeakPassword},
		{"short in characters, long in bytes", nil, "ann@example.com", "ééééééé", ErrWeakPassword},
		{"73 bytes", nil, "ann@example.com", strings.Repeat("p", 73), ErrWeakPassword},
		{"25 euros (75 bytes)", nil, "ann@example.com", strings.Repeat("€", 25), ErrWeakPassword},
		{"domain not allowed", func(c *config.Config) { c.Auth.AllowedEmailDomains = []string{"corp.example"} }, "ann@example.com", "password1", ErrRegistrationClosed},
		{"domain allowed", func(c *config.Config) { c.Auth.AllowedEmailDomains = []string{"corp.example"} }, "ann@CORP.example", "password1", nil},
		{"72 bytes", nil, "ann@example.com", strings.Repeat("€", 24), nil},
		{"min length in characters", nil, "ann@example.com", "éééééééé", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newMiniEnv(t, c.tune)
			u, tok, err := e.svc.Register(ctx, c.email, c.password)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("Register = %v, want %v", err, c.want)
			}
			if err != nil {
				if tok != "" || u != (User{}) {
					t.Errorf("failed Register returned %+v, %q", u, tok)
				}
				if lines := e.dump(t); len(lines) != 0 {
					t.Errorf("failed Register left keys: %v", lines)
				}
				return
			}
			e.mustAuth(t, tok, u)
			if _, _, err := e.svc.Login(ctx, c.email, c.password, "192.0.2.1", ""); err != nil {
				t.Errorf("Login with the registered password: %v", err)
			}
		})
	}
}

func TestRegisterEmailTaken(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		e.register(t, "ann@example.com", "password1")
		if _, _, err := e.svc.Register(context.Background(), " ANN@example.COM", "password2"); err != ErrEmailTaken {
			t.Fatalf("Register of a taken email (other case) = %v, want ErrEmailTaken", err)
		}
		if err := e.login("ann@example.com", "password1", "192.0.2.1"); err != nil {
			t.Errorf("the first account's password no longer works: %v", err)
		}
	})
}

// TestConcurrentRegistration: 50 simultaneous registrations of one email
// (in different spellings) make exactly one account.
func TestConcurrentRegistration(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		const n = 50
		spellings := []string{"ann@example.com", "ANN@example.com", " ann@Example.com "}
		errs := make([]error, n)
		users := make([]User, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				users[i], _, errs[i] = e.svc.Register(context.Background(), spellings[i%len(spellings)], "password1")
			})
		}
		wg.Wait()
		ok, taken := 0, 0
		var winner User
		for i, err := range errs {
			switch err {
			case nil:
				ok++
				winner = users[i]
			case ErrEmailTaken:
				taken++
			default:
				t.Errorf("Register: %v", err)
			}
		}
		if ok != 1 || taken != n-1 {
			t.Fatalf("%d succeeded, %d ErrEmailTaken; want 1 and %d", ok, taken, n-1)
		}
		u, _, err := e.svc.Login(context.Background(), "ann@example.com", "password1", "192.0.2.1", "")
		if err != nil || u != winner {
			t.Errorf("Login = %+v, %v; want the one account %+v", u, err, winner)
		}
	})
}

// TestLongPasswordAtLogin: a password over 72 bytes is refused at login
// too, even when its first 72 bytes are the stored password (which bcrypt
// alone would accept), and the attempt does not count as a failure.
func TestLongPasswordAtLogin(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		pw := strings.Repeat("x", 72)
		e.register(t, "ann@example.com", pw)
		for _, long := range []string{pw + "y", pw + strings.Repeat("€", 10)} {
			if err := e.login("ann@example.com", long, "192.0.2.1"); !errors.Is(err, ErrWeakPassword) {
				t.Errorf("Login with %d bytes = %v, want ErrWeakPassword", len(long), err)
			}
		}
		for _, k := range e.store.throttleKeys("ann@example.com", "192.0.2.1") {
			if n, _ := e.rdb.Exists(context.Background(), k).Result(); n != 0 {
				t.Errorf("throttle counter %s exists after refused-as-invalid attempts", k)
			}
		}
		if err := e.login("ann@example.com", pw, "192.0.2.1"); err != nil {
			t.Errorf("Login with the 72-byte password: %v", err)
		}
	})
}

// TestLoginErrors: unknown email and wrong password are the same error;
// an invalid email is ErrInvalidEmail.
func TestLoginErrors(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		e.register(t, "ann@example.com", "password1")
		wantInvalid(t, e.login("ann@example.com", "wrong-password", "192.0.2.1"))
		wantInvalid(t, e.login("nobody@example.com", "password1", "192.0.2.2"))
		wantInvalid(t, e.login("ann@example.com", "", "192.0.2.3"))
		if err := e.login("not an email", "password1", "192.0.2.4"); !errors.Is(err, ErrInvalidEmail) {
			t.Errorf("Login with an invalid email = %v, want ErrInvalidEmail", err)
		}
	})
}

// TestLoginFixation: the session a client brings to a login is deleted, and
// never adopted, whoever it belongs to.
func TestLoginFixation(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		ann, annTok := e.register(t, "ann@example.com", "password1")
		_, mallory := e.register(t, "mallory@example.com", "password1")

		// Ann logs in again with her own session.
		_, tok2, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", annTok)
		if err != nil {
			t.Fatal(err)
		}
		e.mustNotAuth(t, annTok)
		e.mustAuth(t, tok2, ann)

		// Mallory planted her session token in Ann's browser.
		_, tok3, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", mallory)
		if err != nil {
			t.Fatal(err)
		}
		if tok3 == mallory {
			t.Fatal("Login adopted the planted token")
		}
		e.mustNotAuth(t, mallory)
		e.mustAuth(t, tok3, ann)

		// Anything else is ignored.
		if _, _, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", "garbage; Path=/"); err != nil {
			t.Fatalf("Login with a garbage previous token: %v", err)
		}
	})
}

// TestRegisterReplacing: registration deletes the session brought along too.
func TestRegisterReplacing(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		_, old := e.register(t, "ann@example.com", "password1")
		u, tok, err := e.svc.RegisterReplacing(context.Background(), "bob@example.com", "password1", old)
		if err != nil {
			t.Fatal(err)
		}
		e.mustNotAuth(t, old)
		e.mustAuth(t, tok, u)
	})
}

// TestAddUser: the operator's way ignores registration and allowed domains
// but not the email and password rules, and makes no session.
func TestAddUser(t *testing.T) {
	tune := func(c *config.Config) {
		c.Auth.Registration = config.RegistrationClosed
		c.Auth.AllowedEmailDomains = []string{"corp.example"}
	}
	forEachStore(t, tune, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u, err := e.svc.AddUser(ctx, "Ann@Example.com", "password1")
		if err != nil || u.Email != "ann@example.com" {
			t.Fatalf("AddUser = %+v, %v", u, err)
		}
		if _, err := e.svc.AddUser(ctx, "ann@example.com", "password1"); err != ErrEmailTaken {
			t.Errorf("AddUser again = %v, want ErrEmailTaken", err)
		}
		if _, err := e.svc.AddUser(ctx, "bob@example.com", "short"); !errors.Is(err, ErrWeakPassword) {
			t.Errorf("AddUser with a short password = %v, want ErrWeakPassword", err)
		}
		if _, err := e.svc.AddUser(ctx, "bob", "password1"); !errors.Is(err, ErrInvalidEmail) {
			t.Errorf("AddUser with an invalid email = %v, want ErrInvalidEmail", err)
		}
		for _, line := range e.dump(t) {
			if strings.Contains(line, "{u:") {
				t.Errorf("AddUser made a session key: %s", line)
			}
		}
		got, _, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", "")
		if err != nil || got != u {
			t.Errorf("Login = %+v, %v; want %+v", got, err, u)
		}
	})
}

// TestStoreHoldsNoSecrets runs a full flow and reads back every key and
// value: no token (nor its secret part) and no password may appear, and
// every key must be one of the documented layout.
func TestStoreHoldsNoSecrets(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		passwords := []string{"Tr0ub4dor&3-horse", "correct battery staple"}
		var toks []string
		_, tok := e.register(t, "ann@example.com", passwords[0])
		toks = append(toks, tok)
		_, tok, err := e.svc.Login(ctx, "ann@example.com", passwords[0], "192.0.2.1", "")
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
		wantInvalid(t, e.login("ann@example.com", passwords[1], "192.0.2.1"))
		wantInvalid(t, e.login("zed@example.com", passwords[1], "2001:db8::1"))
		if _, err := e.svc.AddUser(ctx, "bob@example.com", passwords[1]); err != nil {
			t.Fatal(err)
		}
		_, tok, err = e.svc.Login(ctx, "bob@example.com", passwords[1], "192.0.2.1", toks[1])
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
		if _, err := e.svc.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}

		lines := e.dump(t)
		if len(lines) == 0 {
			t.Fatal("empty dump")
		}
		dump := strings.Join(lines, "\n")
		for _, tok := range toks {
			secret := tok[strings.LastIndexByte(tok, '.')+1:]
			if strings.Contains(dump, tok) || strings.Contains(dump, secret) || strings.Contains(dump, secret[:16]) {
				t.Errorf("the store holds (part of) a raw token:\n%s", dump)
			}
		}
		for _, pw := range passwords {
			for _, part := range []string{pw, pw[:len(pw)/2], pw[len(pw)/2:]} {
				if strings.Contains(dump, part) {
					t.Errorf("the store holds password text %q:\n%s", part, dump)
				}
			}
		}
		p := regexp.QuoteMeta(e.prefix)
		layout := regexp.MustCompile(`^` + p + `(` +
			`\{u:[0-9a-f]{32}\}:s:[0-9a-f]{64} string 2\n[0-9a-f]{32}\n[^\n]+@[^\n]+\n[a-z0-9.,_-]*\n[mh-]\n[a-z]+\n0\n\n\n` +
			`|\{u:[0-9a-f]{32}\}:sessions zset [0-9a-f]{64}(,[0-9a-f]{64})*` +
			`|\{u:[0-9a-f]{32}\}:sessions:info hash [0-9a-f]{64}=2\|[0-9a-f]{32}\|[^|]+@[^|]+\|[a-z0-9.,_-]*\|[mh-]\|[a-z]+\|[0-9]+\|[^|]*\|[^|]*\|[^,]*(,[0-9a-f]{64}=.*)?` +
			`|\{u:[0-9a-f]{32}\}:account string \{"email":"[^"]+"[^}]*\}` +
			`|user:[^ ]+@[^ ]+ string \{"id":"[0-9a-f]{32}","email":"[^"]+","hash":"\$2a\$04\$[^"]{53}","created":"[^"]+"\}` +
			`|throttle:(ei|e):[0-9a-f]{64} string -?[0-9]+` +
			`|throttle:i:[0-9a-f.:/]+ string -?[0-9]+` +
			`)$`)
		for _, line := range lines {
			if !layout.MatchString(line) {
				t.Errorf("key outside the documented layout: %q", line)
			}
			if strings.HasPrefix(line, e.prefix+"throttle:") && strings.Contains(line, "example.com") {
				t.Errorf("a throttle key names an email: %q", line)
			}
		}
	})
}

func TestMetricsCount(t *testing.T) {
	e := newMiniEnv(t, nil)
	ctx := context.Background()
	e.register(t, "ann@example.com", "password1")
	_, _, _ = e.svc.Register(ctx, "ann@example.com", "password1")
	_, _, _ = e.svc.Register(ctx, "bad", "password1")
	_ = e.login("ann@example.com", "password1", "192.0.2.1")
	for range 4 {
		_ = e.login("ann@example.com", "wrong-password", "192.0.2.9")
	}
	_ = e.login("ann", "password1", "192.0.2.1")
	want := map[[2]string]float64{
		{"gatehouse_registrations_total", "success"}:              1,
		{"gatehouse_registrations_total", "email_taken"}:          1,
		{"gatehouse_registrations_total", "invalid_email"}:        1,
		{"gatehouse_registrations_total", "registration_closed"}:  0,
		{"gatehouse_login_attempts_total", "success"}:             1,
		{"gatehouse_login_attempts_total", "invalid_credentials"}: 3,
		{"gatehouse_login_attempts_total", "too_many_attempts"}:   1,
		{"gatehouse_login_attempts_total", "invalid_email"}:       1,
		{"gatehouse_login_attempts_total", "store_unavailable"}:   0,
	}
	for k, v := range want {
		if got := e.counterValue(t, k[0], "result", k[1]); got != v {
			t.Errorf("%s{result=%q} = %v, want %v", k[0], k[1], got, v)
		}
	}
	// Every label value exists from the start, so dashboards see zeros.
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if mf.GetName() == "gatehouse_session_store_errors_total" && len(mf.GetMetric()) != len(storeOps) {
			t.Errorf("store errors has %d series, want %d", len(mf.GetMetric()), len(storeOps))
		}
	}
	for _, n := range []string{"gatehouse_login_attempts_total", "gatehouse_registrations_total", "gatehouse_session_store_errors_total"} {
		if !slices.Contains(names, n) {
			t.Errorf("metric %s not registered", n)
		}
	}
	// nil Metrics count nothing and do not panic.
	var m *Metrics
	m.login(nil)
	m.registration(ErrEmailTaken)
	m.storeError(storeErr("ping", errors.New("down")))
}

// TestLoginTimingUnknownVsWrongPassword compares the time of a login with
// an unknown email and with a wrong password at bcrypt cost 10. It measures
// wall-clock time, so it only runs with GATEHOUSE_TIMING=1.
func TestLoginTimingUnknownVsWrongPassword(t *testing.T) {
	if os.Getenv("GATEHOUSE_TIMING") != "1" {
		t.Skip("timing test: set GATEHOUSE_TIMING=1 to run it (.ci/run enables it)")
	}
	e := newMiniEnv(t, func(c *config.Config) {
		c.Auth.BcryptCost = 10
		c.Auth.MaxLoginFailures = 1000
	})
	e.register(t, "ann@example.com", "password1")
	const samples = 31
	var unknown, wrong []time.Duration
	measure := func(email string) time.Duration {
		start := time.Now()
		err := e.login(email, "wrong-password", "192.0.2.1")
		d := time.Since(start)
		wantInvalid(t, err)
		return d
	}
	measure("ann@example.com") // warm up connections and caches
	for range samples {
		unknown = append(unknown, measure("nobody@example.com"))
		wrong = append(wrong, measure("ann@example.com"))
	}
	slices.Sort(unknown)
	slices.Sort(wrong)
	mu, mw := unknown[samples/2], wrong[samples/2]
	ratio := float64(mu) / float64(mw)
	t.Logf("median unknown email %v, wrong password %v (ratio %.2f)", mu, mw, ratio)
	if ratio < 0.75 || ratio > 1.25 {
		t.Errorf("medians differ by more than 25%%: unknown %v, wrong password %v", mu, mw)
	}
}

// TestLoginRehashesAtConfiguredCost: after auth.bcrypt_cost changes, a
// successful login stores the password again at the new cost (so its
// timing matches the dummy hash of unknown emails again); a failed one
// changes nothing.
func TestLoginRehashesAtConfiguredCost(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u, _ := e.register(t, "ann@example.com", "password1") // cost 4
		before, err := e.store.getUser(ctx, "ann@example.com")
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.Auth.BcryptCost = 5
		svc5, err := NewService(e.store, cfg, ServiceOptions{Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}

		_, _, err = svc5.Login(ctx, "ann@example.com", "wrong-password", "192.0.2.1", "")
		wantInvalid(t, err)
		if rec, _ := e.store.getUser(ctx, "ann@example.com"); rec == nil || rec.Hash != before.Hash {
			t.Fatalf("a failed login changed the stored hash")
		}

		if got, _, err := svc5.Login(ctx, "ann@example.com", "password1", "192.0.2.1", ""); err != nil || got != u {
			t.Fatalf("Login at cost 5 = %+v, %v; want %+v", got, err, u)
		}
		after, err := e.store.getUser(ctx, "ann@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if cost, err := bcrypt.Cost([]byte(after.Hash)); err != nil || cost != 5 {
			t.Errorf("stored hash cost = %d, %v; want 5", cost, err)
		}
		if bcrypt.CompareHashAndPassword([]byte(after.Hash), []byte("password1")) != nil {
			t.Error("the new hash does not match the password")
		}
		if after.ID != before.ID || after.Email != before.Email || !after.Created.Equal(before.Created) {
			t.Errorf("record = %+v, want %+v with only the hash changed", after, before)
		}
		// Already at the configured cost: not rehashed again.
		if _, _, err := svc5.Login(ctx, "ann@example.com", "password1", "192.0.2.1", ""); err != nil {
			t.Fatalf("second Login: %v", err)
		}
		if again, _ := e.store.getUser(ctx, "ann@example.com"); again == nil || again.Hash != after.Hash {
			t.Error("a login at the stored cost rehashed the password")
		}
	})
}

// TestLoginRehashFailureIsLogged: a login whose rehash cannot be written
// back still succeeds; the old hash stays and the failure is logged.
func TestLoginRehashFailureIsLogged(t *testing.T) {
	e := newMiniEnv(t, nil)
	ctx := context.Background()
	u, _ := e.register(t, "ann@example.com", "password1")
	before, err := e.store.getUser(ctx, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	var logs openRedisLogs
	cfg := testConfig()
	cfg.Auth.BcryptCost = 5
	svc5, err := NewService(e.store, cfg, ServiceOptions{Now: e.clock.Now, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// Only the write-back WATCHes the account's email key during a login
	// (creating the session WATCHes the {u:id}:account record).
	e.rdb.AddHook(cmdHook{before: func(cmd redis.Cmder) error {
		if cmd.Name() == "watch" && strings.Contains(fmt.Sprint(cmd.Args()), "user:") {
			return errors.New("injected: i/o timeout")
		}
		return nil
	}})
	tok := ""
	if got, tk, err := svc5.Login(ctx, "ann@example.com", "password1", "192.0.2.1", ""); err != nil || got != u {
		t.Fatalf("Login = %+v, %v; want %+v despite the failed rehash", got, err, u)
	} else {
		tok = tk
	}
	e.mustAuth(t, tok, u)
	if rec, _ := e.store.getUser(ctx, "ann@example.com"); rec == nil || rec.Hash != before.Hash {
		t.Error("the stored hash changed although its write failed")
	}
	if !strings.Contains(logs.String(), "rehash") || strings.Contains(logs.String(), "password1") {
		t.Errorf("log = %q, want the failed rehash logged (without the password)", logs.String())
	}
}

// TestDummyHashCost: the hash compared for unknown emails has the
// configured cost, so it takes as long as a stored hash of that cost.
func TestDummyHashCost(t *testing.T) {
	store := NewStore(nil, "gatehouse:")
	for _, cost := range []int{4, 5, 6} {
		cfg := testConfig()
		cfg.Auth.BcryptCost = cost
		svc, err := NewService(store, cfg, ServiceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := bcrypt.Cost(svc.dummyHash); err != nil || got != cost {
			t.Errorf("dummy hash cost = %d, %v; want %d", got, err, cost)
		}
	}
}

package auth

import (
	"context"
	"errors"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/auth/redistest"
	"github.com/gatehouse-dev/gatehouse/config"
)

// testClock is the injected clock. On miniredis, advance also fast-forwards
// the TTLs; on a real redis-server it sleeps, so the server's own expiry
// is what the test observes.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testEnv is one store and service under test.
type testEnv struct {
	name    string // "miniredis" or "redis-server"
	rdb     redis.UniversalClient
	mr      *miniredis.Miniredis // nil on a real server
	inst    *redistest.Instance  // nil on miniredis
	prefix  string
	clock   *testClock
	cfg     *config.Config
	store   *Store
	svc     *Service
	reg     *prometheus.Registry
	metrics *Metrics
}

// advance moves time forward by d for the clock and the store.
func (e *testEnv) advance(d time.Duration) {
	e.clock.add(d)
	if e.mr != nil {
		e.mr.FastForward(d)
		return
	}
	time.Sleep(d)
}

// testConfig is the default configuration with test-friendly auth settings:
// bcrypt cost 4, open registration, 3 failures per window, long sessions.
func testConfig() *config.Config {
	cfg := config.Default()
	cfg.Auth.BcryptCost = bcrypt.MinCost
	cfg.Auth.Registration = config.RegistrationOpen
	cfg.Auth.MaxLoginFailures = 3
	cfg.Auth.LoginFailureWindow = config.Duration(15 * time.Minute)
	cfg.Session.TTL = config.Duration(time.Hour)
	cfg.Session.IdleTimeout = config.Duration(10 * time.Minute)
	return cfg
}

// forEachStore runs fn as two subtests: against miniredis and against a
// real redis-server (started by redistest, or GATEHOUSE_TEST_REDIS_URL;
// skipped with redistest's message when there is none). tune changes the
// configuration (nil: testConfig as is).
func forEachStore(t *testing.T, tune func(*config.Config), fn func(t *testing.T, e *testEnv)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) { fn(t, newMiniEnv(t, tune)) })
	t.Run("redis-server", func(t *testing.T) { fn(t, newRealEnv(t, tune)) })
}

func newMiniEnv(t testing.TB, tune func(*config.Config)) *testEnv {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := newRedisClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	e := &testEnv{name: "miniredis", rdb: rdb, mr: mr, prefix: "gatehouse:"}
	e.init(t, tune)
	return e
}

func newRealEnv(t testing.TB, tune func(*config.Config)) *testEnv {
	t.Helper()
	inst := redistest.Server(t)
	rdb, closeFn, err := OpenRedis(config.Redis{URL: inst.URL}, nil)
	if err != nil {
		t.Fatalf("OpenRedis: %v", err)
	}
	t.Cleanup(func() { _ = closeFn() })
	e := &testEnv{name: "redis-server", rdb: rdb, inst: inst, prefix: inst.KeyPrefix}
	e.init(t, tune)
	return e
}

func (e *testEnv) init(t testing.TB, tune func(*config.Config)) {
	t.Helper()
	e.cfg = testConfig()
	if tune != nil {
		tune(e.cfg)
	}
	// Whole seconds, like real time as tokens see it; the real server's
	// expiry only depends on durations.
	e.clock = &testClock{now: time.Now().Truncate(time.Second)}
	e.store = NewStore(e.rdb, e.prefix)
	e.store.Now = e.clock.Now
	e.reg = prometheus.NewRegistry()
	e.metrics = NewMetrics(e.reg)
	// A limiter wide enough that the concurrency tests (50 registrations
	// at once) race in the store rather than meet a full hash queue; the
	// queue has tests of its own (hash_test.go).
	svc, err := NewService(e.store, e.cfg, ServiceOptions{Metrics: e.metrics, Hashes: NewHashLimiter(128)})
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	e.svc = svc
}

// register creates an account with a session, failing the test on error.
func (e *testEnv) register(t testing.TB, email, password string) (User, string) {
	t.Helper()
	u, tok, err := e.svc.Register(context.Background(), email, password)
	if err != nil {
		t.Fatalf("Register(%q): %v", email, err)
	}
	return u, tok
}

// mustAuth asserts that tok is a live session of u.
func (e *testEnv) mustAuth(t testing.TB, tok string, u User) credential.Identity {
	t.Helper()
	s, err := e.svc.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatalf("Authenticate: %v, want the session of %s", err, u.Email)
	}
	if (User{ID: s.UserID, Email: s.Email}) != u {
		t.Fatalf("Authenticate user = %+v, want %+v", s, u)
	}
	return s
}

// mustNotAuth asserts that tok is not a session (and not a store error).
func (e *testEnv) mustNotAuth(t testing.TB, tok string) {
	t.Helper()
	_, err := e.svc.Authenticate(context.Background(), tok)
	if !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("Authenticate = %v, want ErrSessionNotFound", err)
	}
}

// dump returns every key of the test's prefix with its type and value(s),
// one line per key, sorted.
func (e *testEnv) dump(t testing.TB) []string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	iter := e.rdb.Scan(ctx, 0, e.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ, err := e.rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", k, err)
		}
		var val string
		switch typ {
		case "string":
			val, err = e.rdb.Get(ctx, k).Result()
		case "zset":
			var zs []redis.Z
			zs, err = e.rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
			var parts []string
			for _, z := range zs {
				parts = append(parts, z.Member.(string))
			}
			val = strings.Join(parts, ",")
		case "hash":
			var m map[string]string
			m, err = e.rdb.HGetAll(ctx, k).Result()
			var parts []string
			for f, v := range m {
				parts = append(parts, f+"="+strings.ReplaceAll(v, "\n", "|"))
			}
			slices.Sort(parts)
			val = strings.Join(parts, ",")
		case "none":
			continue // expired while scanning
		default:
			t.Fatalf("key %s has unexpected type %s", k, typ)
		}
		if err != nil && err != redis.Nil {
			t.Fatalf("read %s: %v", k, err)
		}
		lines = append(lines, k+" "+typ+" "+val)
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	sort.Strings(lines)
	return lines
}

// pttl returns the remaining TTL of the session key of tok.
func (e *testEnv) pttl(t testing.TB, tok string) time.Duration {
	t.Helper()
	id, _, ok := parseToken(tok)
	if !ok {
		t.Fatalf("not a token: %q", tok)
	}
	d, err := e.rdb.PTTL(context.Background(), e.store.sessionKey(id, tok)).Result()
	if err != nil {
		t.Fatalf("PTTL: %v", err)
	}
	return d
}

// counterValue reads a counter of the env's registry (0 if absent).
func (e *testEnv) counterValue(t testing.TB, name, label, value string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestStorePing(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		if err := e.store.Ping(context.Background()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestStoreDown points the service at a closed port: every operation must
// fail with ErrStoreUnavailable (never "not found", never a panic) and be
// counted by op.
func TestStoreDown(t *testing.T) {
	rdb, closeFn, err := OpenRedis(config.Redis{URL: "redis://" + closedAddr(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	e := &testEnv{name: "down", rdb: rdb, prefix: "gatehouse:"}
	e.init(t, nil)
	ctx := context.Background()
	// A well-formed token for a session that may or may not exist.
	tok, err := newToken(strings.Repeat("a", 32), e.clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	checks := []struct {
		name string
		op   string
		run  func() error
	}{
		{"Ping", "ping", func() error { return e.store.Ping(ctx) }},
		{"Authenticate", "authenticate", func() error { _, err := e.svc.Authenticate(ctx, tok); return err }},
		{"Register", "user_get", func() error { _, _, err := e.svc.Register(ctx, "a@example.com", "password1"); return err }},
		{"Login", "throttle", func() error { _, _, err := e.svc.Login(ctx, "a@example.com", "password1", "192.0.2.1", ""); return err }},
		{"Logout", "session_delete", func() error { return e.svc.Logout(ctx, tok, false) }},
		{"LogoutAll", "session_get", func() error { return e.svc.Logout(ctx, tok, true) }},
		{"RevokeSessions", "user_get", func() error { _, err := e.svc.RevokeSessions(ctx, "a@example.com"); return err }},
		// DeleteUser reads the account first (to end its sessions before
		// deleting it), so that read is what fails.
		{"DeleteUser", "user_get", func() error { return e.svc.DeleteUser(ctx, "a@example.com") }},
		// AddUser and Register look the email up before hashing, so that
		// read is what fails.
		{"AddUser", "user_get", func() error { _, err := e.svc.AddUser(ctx, "b@example.com", "password1"); return err }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			before := e.counterValue(t, "gatehouse_session_store_errors_total", "op", c.op)
			err := c.run()
			if !errors.Is(err, ErrStoreUnavailable) {
				t.Fatalf("err = %v, want ErrStoreUnavailable", err)
			}
			for _, wrong := range []error{ErrSessionNotFound, ErrUserNotFound, ErrInvalidCredentials, ErrEmailTaken} {
				if errors.Is(err, wrong) {
					t.Errorf("err = %v also matches %v", err, wrong)
				}
			}
			if c.name == "Ping" {
				return // Ping is the store's, not counted by the service
			}
			if got := e.counterValue(t, "gatehouse_session_store_errors_total", "op", c.op); got != before+1 {
				t.Errorf("store errors{op=%q} = %v, want %v", c.op, got, before+1)
			}
		})
	}
	if got := e.counterValue(t, "gatehouse_login_attempts_total", "result", "store_unavailable"); got != 1 {
		t.Errorf("login_attempts{store_unavailable} = %v, want 1", got)
	}
}

// TestStoreDownMidSession stops a real server under a live session:
// Authenticate must report the store, not the session, and recover when the
// server is back.
func TestStoreDownMidSession(t *testing.T) {
	e := newRealEnv(t, nil)
	if e.inst.External {
		t.Skip("needs a redis-server started by the test, not GATEHOUSE_TEST_REDIS_URL")
	}
	u, tok := e.register(t, "ann@example.com", "password1")
	e.mustAuth(t, tok, u)
	e.inst.Pause(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := e.svc.Authenticate(ctx, tok)
	cancel()
	if !errors.Is(err, ErrStoreUnavailable) || errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("Authenticate with a paused server = %v, want ErrStoreUnavailable", err)
	}
	e.inst.Resume(t)
	// The reply to the timed-out GETEX may still be in flight on that
	// connection; go-redis drops such connections, so the next call works.
	e.mustAuth(t, tok, u)
}

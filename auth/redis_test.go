package auth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/auth/redistest"
	"github.com/gatehouse-dev/gatehouse/config"
)

// openRedisLogs is a log sink for slog that tests can read.
type openRedisLogs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *openRedisLogs) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *openRedisLogs) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOpenRedisEmbedded: no url, sentinel or cluster gives a working
// in-process store whose TTLs run with the clock, and a warning.
func TestOpenRedisEmbedded(t *testing.T) {
	var logs openRedisLogs
	rdb, closeFn, err := OpenRedis(config.Redis{KeyPrefix: "gatehouse:"}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "lost at exit") {
		t.Errorf("no warning about the embedded store, logs: %s", logs.String())
	}
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 20*time.Millisecond).Err(); err != nil {
		t.Fatalf("SET on the embedded store: %v", err)
	}
	// ClockTTL: the key expires by itself, without FastForward.
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Exists(ctx, "k").Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("a key with a 20ms TTL still exists after 10s: TTLs do not run")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := closeFn(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestOpenRedisEmbeddedAuth: the embedded store answers only the gateway.
// A local client without the password gets NOAUTH, one with a wrong
// password WRONGPASS, and the password is never logged. Before the fix the
// logged loopback port took any command from anyone.
func TestOpenRedisEmbeddedAuth(t *testing.T) {
	var logs openRedisLogs
	rdb, closeFn, err := OpenRedis(config.Redis{KeyPrefix: "gatehouse:"}, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	ctx := context.Background()
	if err := rdb.Set(ctx, "gatehouse:k", "v", 0).Err(); err != nil {
		t.Fatalf("the gateway's own client: %v", err)
	}
	c, ok := rdb.(*redis.Client)
	if !ok {
		t.Fatalf("client is %T, want *redis.Client", rdb)
	}
	addr, pw := c.Options().Addr, c.Options().Password
	if len(pw) < 20 {
		t.Fatalf("embedded store password %q: want a random one", pw)
	}
	// What a local attacker would send: plain RESP on the logged port.
	for name, cmd := range map[string]string{
		"read":  respCommand("GET", "gatehouse:k"),
		"write": respCommand("SET", "gatehouse:session:x", "forged"),
		"scan":  respCommand("KEYS", "*"),
	} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte(cmd)); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil || !strings.HasPrefix(line, "-NOAUTH") {
			t.Errorf("%s without password: reply %q, %v; want -NOAUTH", name, line, err)
		}
	}
	wrong := redis.NewClient(&redis.Options{Addr: addr, Password: "not-it", MaxRetries: -1, MaintNotificationsConfig: maintOff()})
	defer wrong.Close()
	if err := wrong.Get(ctx, "gatehouse:k").Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("wrong password: %v, want WRONGPASS", err)
	}
	if v, err := rdb.Get(ctx, "gatehouse:session:x").Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("unauthenticated SET took effect: %q, %v", v, err)
	}
	if strings.Contains(logs.String(), pw) {
		t.Errorf("the log holds the embedded store password: %s", logs.String())
	}
}

// respCommand encodes a command as a RESP array of bulk strings.
func respCommand(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

func TestOpenRedisURLAndPassword(t *testing.T) {
	inst := redistest.Server(t, redistest.WithPassword("s3cret"))
	ctx := context.Background()
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// OpenRedis takes the password as config.Load resolved it: a
	// password_file reaches it as Password.
	yml := "upstreams: {app: http://127.0.0.1:3000}\nredis:\n  url: redis://" + inst.Addr + "\n  password_file: " + pwFile + "\n"
	loaded, err := config.Parse(filepath.Join(t.TempDir(), "gatehouse.yaml"), []byte(yml), nil)
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	cases := map[string]config.Redis{
		"url with password":          {URL: inst.URL},
		"password overrides the url": {URL: "redis://:wrong@" + inst.Addr + "/0", Password: "s3cret"},
		"password in no url":         {URL: "redis://" + inst.Addr, Password: "s3cret"},
		"password_file":              loaded.Redis,
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			rdb, closeFn, err := OpenRedis(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			if err := NewStore(rdb, "p:").Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		})
	}
	rdb, closeFn, err := OpenRedis(config.Redis{URL: "redis://" + inst.Addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if err := NewStore(rdb, "p:").Ping(ctx); !errors.Is(err, ErrStoreUnavailable) {
		t.Errorf("Ping without the password = %v, want ErrStoreUnavailable", err)
	}
}

func TestOpenRedisRejects(t *testing.T) {
	// Two topologies, an empty cluster or a nameless sentinel are
	// config.Validate's to refuse (config/validate_redis.go); a URL that
	// go-redis cannot parse is refused here too, without its password.
	cases := map[string]config.Redis{
		"bad url": {URL: "http://user:hunter2@example.com"},
	}
	for name, cfg := range cases {
		_, closeFn, err := OpenRedis(cfg, nil)
		if err == nil {
			closeFn()
			t.Errorf("%s: OpenRedis accepted it", name)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
	}
}

// sessionFlow is register, login, authenticate, logout all, revoke and
// delete on one store: on a Cluster it fails if a user's keys were not in
// one slot (MULTI across slots is refused).
func sessionFlow(t *testing.T, svc *Service) {
	t.Helper()
	ctx := context.Background()
	u, t1, err := svc.Register(ctx, "ann@example.com", "password1")
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	_, t2, err := svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", t1)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if _, err := svc.Authenticate(ctx, t1); err != ErrSessionNotFound {
		t.Errorf("previous token after Login: %v, want ErrSessionNotFound", err)
	}
	if s, err := svc.Authenticate(ctx, t2); err != nil || (User{ID: s.UserID, Email: s.Email}) != u {
		t.Fatalf("Authenticate = %+v, %v", s, err)
	}
	_, t3, err := svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Logout(ctx, t3, true); err != nil {
		t.Fatalf("Logout all: %v", err)
	}
	for _, tok := range []string{t2, t3} {
		if _, err := svc.Authenticate(ctx, tok); err != ErrSessionNotFound {
			t.Errorf("after logout all: %v, want ErrSessionNotFound", err)
		}
	}
	for range 3 {
		if _, _, err := svc.Login(ctx, "ann@example.com", "nope-nope", "192.0.2.1", ""); err != ErrInvalidCredentials {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, _, err := svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", ""); !errors.Is(err, ErrTooManyAttempts) {
		t.Errorf("after 3 failures: %v, want throttled", err)
	}
	_, t4, err := svc.Login(ctx, "ann@example.com", "password1", "192.0.2.2", "")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := svc.RevokeSessions(ctx, "ann@example.com"); err != nil || n != 1 {
		t.Errorf("RevokeSessions = %d, %v; want 1", n, err)
	}
	if _, err := svc.Authenticate(ctx, t4); err != ErrSessionNotFound {
		t.Errorf("after revoke: %v", err)
	}
	if err := svc.DeleteUser(ctx, "ann@example.com"); err != nil {
		t.Errorf("DeleteUser: %v", err)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel() // starting a cluster takes seconds
	c := redistest.Cluster(t)
	rdb, closeFn, err := OpenRedis(config.Redis{Cluster: &config.Cluster{Addrs: c.Addrs}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	svc, err := NewService(NewStore(rdb, "gatehouse:"), testConfig(), ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sessionFlow(t, svc)
}

func TestSentinel(t *testing.T) {
	t.Parallel() // starting sentinels takes seconds
	s := redistest.Sentinel(t)
	rdb, closeFn, err := OpenRedis(config.Redis{Sentinel: &config.Sentinel{Master: s.MasterName, Addrs: s.SentinelAddrs}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	svc, err := NewService(NewStore(rdb, "gatehouse:"), testConfig(), ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sessionFlow(t, svc)

	// A session survives a failover: the client follows the new master.
	ctx := context.Background()
	u, tok, err := svc.Register(ctx, "bob@example.com", "password1")
	if err != nil {
		t.Fatal(err)
	}
	s.Failover(t)
	var got credential.Identity
	deadline := time.Now().Add(15 * time.Second)
	for {
		// Connections to the old master fail once; the next try asks the
		// sentinels again.
		got, err = svc.Authenticate(ctx, tok)
		if err == nil || !errors.Is(err, ErrStoreUnavailable) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || (User{ID: got.UserID, Email: got.Email}) != u {
		t.Fatalf("Authenticate after failover = %+v, %v", got, err)
	}
}

// BenchmarkAuthenticate measures the proxy's hot path: one GETEX per call.
func BenchmarkAuthenticate(b *testing.B) {
	run := func(b *testing.B, e *testEnv) {
		e.store.Now = nil // the real clock: the benchmark must not outlive sessions
		svc, err := NewService(e.store, e.cfg, ServiceOptions{})
		if err != nil {
			b.Fatal(err)
		}
		_, tok, err := svc.Register(context.Background(), "ann@example.com", "password1")
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.Run("serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := svc.Authenticate(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := svc.Authenticate(ctx, tok); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Run("redis-server", func(b *testing.B) { run(b, newRealEnv(b, nil)) })
	b.Run("miniredis", func(b *testing.B) { run(b, newMiniEnv(b, nil)) })
}

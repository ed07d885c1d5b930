package redistest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/redistest"
	"github.com/redis/go-redis/v9"
)

func TestServerSetGet(t *testing.T) {
	srv := redistest.Server(t)
	c := srv.Client(t)
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	key := srv.KeyPrefix + "k"
	if err := c.Set(ctx, key, "v1", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Get(ctx, key).Result(); err != nil || got != "v1" {
		t.Fatalf("GET = %q, %v; want \"v1\", nil", got, err)
	}
	if srv.KeyPrefix == "" || strings.ContainsAny(srv.KeyPrefix, "*?[]{}") {
		t.Errorf("KeyPrefix = %q, want non-empty without glob or hash-tag characters", srv.KeyPrefix)
	}
}

func TestServerBindsLoopbackOnly(t *testing.T) {
	t.Setenv(redistest.EnvURL, "")
	srv := redistest.Server(t)
	host, _, err := net.SplitHostPort(srv.Addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr = %q, want 127.0.0.1:port", srv.Addr)
	}
	bind, err := srv.Client(t).ConfigGet(context.Background(), "bind").Result()
	if err != nil {
		t.Fatalf("CONFIG GET bind: %v", err)
	}
	if bind["bind"] != "127.0.0.1" {
		t.Errorf("bind = %q, want 127.0.0.1", bind["bind"])
	}
}

func TestServerPassword(t *testing.T) {
	srv := redistest.Server(t, redistest.WithPassword("s3cret pass"))
	ctx := context.Background()
	if err := srv.Client(t).Ping(ctx).Err(); err != nil {
		t.Fatalf("PING with password from URL: %v", err)
	}
	anon := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	defer anon.Close()
	if err := anon.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("PING without password = %v, want NOAUTH error", err)
	}
}

func TestRestartWithAOFKeepsData(t *testing.T) {
	srv := redistest.Server(t, redistest.WithAOF())
	ctx := context.Background()
	key := srv.KeyPrefix + "durable"
	if err := srv.Client(t).Set(ctx, key, "kept", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}

	// Kill, not Stop: appendfsync always must make the write survive a crash.
	srv.Kill()
	srv.Restart(t)

	if got, err := srv.Client(t).Get(ctx, key).Result(); err != nil || got != "kept" {
		t.Fatalf("GET after restart = %q, %v; want \"kept\", nil", got, err)
	}
}

func TestRestartWithoutAOFLosesData(t *testing.T) {
	t.Setenv(redistest.EnvURL, "")
	srv := redistest.Server(t)
	ctx := context.Background()
	key := srv.KeyPrefix + "gone"
	if err := srv.Client(t).Set(ctx, key, "x", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	addr := srv.Addr
	srv.Restart(t)
	if srv.Addr != addr {
		t.Errorf("Addr after restart = %q, want %q", srv.Addr, addr)
	}
	if err := srv.Client(t).Get(ctx, key).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET after restart: err = %v, want redis.Nil (no persistence)", err)
	}
}

func TestPauseResume(t *testing.T) {
	t.Setenv(redistest.EnvURL, "")
	srv := redistest.Server(t)
	c := redis.NewClient(&redis.Options{
		Addr:                  srv.Addr,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING before pause: %v", err)
	}

	srv.Pause(t)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := c.Ping(short).Err()
	cancel()
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("PING while paused: err = %v, want a timeout", err)
	}

	srv.Resume(t)
	// The timed-out connection is discarded; a fresh one must work at once.
	resumed, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(resumed).Err(); err != nil {
		t.Fatalf("PING after resume: %v", err)
	}
}

func TestStopRestart(t *testing.T) {
	t.Setenv(redistest.EnvURL, "")
	srv := redistest.Server(t)
	// No retries: a stopped server must answer with an error at once.
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()

	srv.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING after Stop succeeded, want an error")
	}
	srv.Stop() // stopping twice is harmless

	srv.Restart(t)
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart (same client, same address): %v", err)
	}
}

func TestCleanupKillsServer(t *testing.T) {
	t.Setenv(redistest.EnvURL, "")
	var running, paused string
	t.Run("start", func(t *testing.T) {
		running = redistest.Server(t).Addr
		p := redistest.Server(t)
		p.Pause(t) // a stopped process must be killed too
		paused = p.Addr
	})
	for _, addr := range []string{running, paused} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the test ended", addr)
		}
	}
}

func TestServerExternalURL(t *testing.T) {
	t.Setenv(redistest.EnvURL, "")
	shared := redistest.Server(t)
	other := shared.KeyPrefix + "not-mine"
	ctx := context.Background()
	admin := shared.Client(t)
	if err := admin.Set(ctx, other, "x", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}

	t.Setenv(redistest.EnvURL, shared.URL)
	var mine string
	t.Run("uses it", func(t *testing.T) {
		ext := redistest.Server(t)
		if !ext.External || ext.Addr != shared.Addr || ext.Dir != "" {
			t.Fatalf("Server = {External:%v Addr:%s Dir:%q}, want external %s", ext.External, ext.Addr, ext.Dir, shared.Addr)
		}
		if ext.KeyPrefix == shared.KeyPrefix {
			t.Errorf("KeyPrefix %q reused, want one unique to the test", ext.KeyPrefix)
		}
		mine = ext.KeyPrefix + "k"
		if err := ext.Client(t).Set(ctx, mine, "v", 0).Err(); err != nil {
			t.Fatalf("SET: %v", err)
		}
	})
	if n, err := admin.Exists(ctx, mine).Result(); err != nil || n != 0 {
		t.Errorf("EXISTS %s after cleanup = %d, %v; want 0 (own keys deleted)", mine, n, err)
	}
	if n, err := admin.Exists(ctx, other).Result(); err != nil || n != 1 {
		t.Errorf("EXISTS %s after cleanup = %d, %v; want 1 (nothing else touched)", other, n, err)
	}

	var sub *testing.T
	t.Run("process control skips", func(t *testing.T) {
		sub = t
		redistest.Server(t).Pause(t)
		t.Error("Pause on an external server returned")
	})
	if !sub.Skipped() {
		t.Error("Pause on an external server did not skip the test")
	}

	t.Run("options that need a local server", func(t *testing.T) {
		aof := redistest.Server(t, redistest.WithAOF())
		if aof.External || aof.Addr == shared.Addr {
			t.Errorf("Server(WithAOF) = %s (External %v), want a local server", aof.Addr, aof.External)
		}
	})
}

// recordTB records Skip and Fatalf instead of ending the real test.
type recordTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordTB) Helper() {}
func (r *recordTB) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}
func (r *recordTB) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingRedisServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing on PATH
	t.Setenv(redistest.EnvURL, "")
	starters := []struct {
		name  string
		start func(testing.TB)
		want  string
	}{
		{"Server", func(tb testing.TB) { redistest.Server(tb) },
			"redis-server not on PATH; install redis-server or set GATEHOUSE_TEST_REDIS_URL"},
		{"Cluster", func(tb testing.TB) { redistest.Cluster(tb) }, "redis-server not on PATH"},
		{"Sentinel", func(tb testing.TB) { redistest.Sentinel(tb) }, "redis-server not on PATH"},
	}
	for _, st := range starters {
		for _, require := range []string{"", "1"} {
			t.Run(st.name+"/require="+require, func(t *testing.T) {
				t.Setenv(redistest.EnvRequire, require)
				rec := &recordTB{TB: t}
				done := make(chan struct{})
				go func() {
					defer close(done)
					st.start(rec)
				}()
				<-done
				got := rec.skipped
				if require == "1" {
					got = rec.failed
					if rec.skipped != "" {
						t.Errorf("skipped (%q) with %s=1, want a failure", rec.skipped, redistest.EnvRequire)
					}
				}
				if !strings.Contains(got, st.want) {
					t.Errorf("message = %q, want it to contain %q", got, st.want)
				}
			})
		}
	}
}

func TestFreePort(t *testing.T) {
	p := redistest.FreePort(t)
	if p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d, want 1..65535", p)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("listen on free port %d: %v", p, err)
	}
	l.Close()
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node Redis Cluster; skipped in -short mode")
	}
	start := time.Now()
	cl := redistest.Cluster(t)
	t.Logf("cluster up in %v", time.Since(start))
	if len(cl.Addrs) != 3 {
		t.Fatalf("len(Addrs) = %d, want 3", len(cl.Addrs))
	}
	c := cl.Client(t)
	ctx := context.Background()

	// Enough keys that every master owns some of them.
	const n = 60
	for k := range n {
		if err := c.Set(ctx, "key:"+strconv.Itoa(k), strconv.Itoa(k), 0).Err(); err != nil {
			t.Fatalf("SET key:%d: %v", k, err)
		}
	}
	for k := range n {
		if got, err := c.Get(ctx, "key:"+strconv.Itoa(k)).Result(); err != nil || got != strconv.Itoa(k) {
			t.Fatalf("GET key:%d = %q, %v; want %q", k, got, err, strconv.Itoa(k))
		}
	}
	var masters atomic.Int32 // ForEachMaster runs fn concurrently
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		size, err := m.DBSize(ctx).Result()
		if err != nil {
			return err
		}
		if size > 0 {
			masters.Add(1)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ForEachMaster: %v", err)
	}
	if got := masters.Load(); got != 3 {
		t.Errorf("masters holding keys = %d, want 3", got)
	}

	// One user's keys share a hash tag, so they live in one slot and a
	// MULTI over them is legal.
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "{u:42}:s:a", "1", time.Minute)
		p.ZAdd(ctx, "{u:42}:sessions", redis.Z{Score: 1, Member: "a"})
		p.Get(ctx, "{u:42}:s:a")
		return nil
	})
	if err != nil {
		t.Fatalf("MULTI over hash-tagged keys: %v", err)
	}
	if got := cmds[2].(*redis.StringCmd).Val(); got != "1" {
		t.Errorf("GET in MULTI = %q, want \"1\"", got)
	}
	if got, err := c.ZCard(ctx, "{u:42}:sessions").Result(); err != nil || got != 1 {
		t.Errorf("ZCARD = %d, %v; want 1, nil", got, err)
	}
}

func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis Sentinel and fails over; skipped in -short mode")
	}
	start := time.Now()
	s := redistest.Sentinel(t)
	t.Logf("sentinel topology up in %v", time.Since(start))
	if len(s.SentinelAddrs) != 3 {
		t.Fatalf("len(SentinelAddrs) = %d, want 3", len(s.SentinelAddrs))
	}
	c := s.FailoverClient(t)
	ctx := context.Background()
	if err := c.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatalf("SET before failover: %v", err)
	}
	oldMaster, oldReplica := s.Master, s.Replica

	start = time.Now()
	s.Failover(t)
	t.Logf("failover done in %v", time.Since(start))
	if s.Master != oldReplica || s.Replica != oldMaster {
		t.Fatalf("after Failover: Master = %s, Replica = %s; want %s, %s",
			s.Master.Addr, s.Replica.Addr, oldReplica.Addr, oldMaster.Addr)
	}

	// The failover client learns of the switch from the sentinels; until
	// then its writes may go to the old master (READONLY) or a closed
	// connection, so retry, but boundedly.
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = c.Set(ctx, "after", "2", 0).Err(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("SET after failover: %v", err)
	}
	direct := s.Master.Client(t)
	if got, err := direct.Get(ctx, "after").Result(); err != nil || got != "2" {
		t.Errorf("GET after on new master = %q, %v; want \"2\", nil", got, err)
	}
	if got, err := direct.Get(ctx, "before").Result(); err != nil || got != "1" {
		t.Errorf("GET before on new master = %q, %v; want \"1\", nil (replicated)", got, err)
	}

	// The sentinels reconfigure the old master as a replica of the new one,
	// after a grace period of 4 s (see tuneSentinel).
	old := s.Replica.Client(t)
	var role []any
	start = time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		role, err = old.Do(ctx, "ROLE").Slice()
		if err == nil && len(role) >= 3 && role[0] == "slave" && role[2] == int64(s.Master.Port) {
			t.Logf("old master became a replica in %v", time.Since(start))
			return
		}
	}
	t.Fatalf("ROLE of old master = %v, %v; want slave of port %d", role, err, s.Master.Port)
}

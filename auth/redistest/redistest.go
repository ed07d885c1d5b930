// Package redistest starts real Redis servers (single node, Cluster and
// Sentinel) for tests, on 127.0.0.1 only, each in its own t.TempDir().
//
// It owns the processes it starts and nothing else: every process runs in its
// own process group and is killed in t.Cleanup, also when the test fails. It
// never flushes or otherwise touches a server it did not start, except for
// deleting its own keys on a GATEHOUSE_TEST_REDIS_URL server.
//
// Environment:
//   - GATEHOUSE_TEST_REDIS_URL: Server returns this server instead of
//     starting one, with a KeyPrefix unique to the test.
//   - GATEHOUSE_REQUIRE_REDIS=1: a test that cannot get a Redis fails instead
//     of skipping (CI sets it so real-Redis tests never silently skip).
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// EnvURL names the variable that points Server at an existing Redis.
	EnvURL = "GATEHOUSE_TEST_REDIS_URL"
	// EnvRequire names the variable that turns "no Redis" skips into failures.
	EnvRequire = "GATEHOUSE_REQUIRE_REDIS"

	// startTimeout bounds every wait for a process or topology to come up.
	// Generous on purpose: it only matters when something is broken, and a
	// loaded CI machine must not turn into a flaky test.
	startTimeout = 10 * time.Second
	// pollInterval is how often a wait re-checks its condition.
	pollInterval = 20 * time.Millisecond
	// bindAttempts is how often a start retries with a new port when another
	// process took the free port between FreePort and redis-server's bind.
	bindAttempts = 3
)

// Option changes how Server starts redis-server.
type Option func(*options)

type options struct {
	aof      bool
	password string
}

// needsLocal reports whether the options ask for something only a server we
// start ourselves can give (an external server has its own config).
func (o options) needsLocal() bool { return o.aof || o.password != "" }

// WithAOF turns on the append-only file with appendfsync always, so that
// every acknowledged write survives Kill followed by Restart. It always
// starts a local redis-server, even when GATEHOUSE_TEST_REDIS_URL is set.
func WithAOF() Option { return func(o *options) { o.aof = true } }

// WithPassword sets requirepass; URL and Client carry the password. It always
// starts a local redis-server, even when GATEHOUSE_TEST_REDIS_URL is set.
func WithPassword(p string) Option { return func(o *options) { o.password = p } }

// Instance is one Redis server: a redis-server process this package started,
// or the server named by GATEHOUSE_TEST_REDIS_URL (External).
//
// The process-control methods (Stop, Kill, Restart, Pause, Resume) must be
// called from the test's goroutine; on an External instance they skip the
// test, because there is no process to control.
type Instance struct {
	// Addr is "127.0.0.1:port" (for an external server: its host:port).
	Addr string
	// URL is a redis:// URL for redis.ParseURL, with the password if any.
	URL string
	// Dir is the server's working directory (config, redis.log, AOF);
	// empty for an external server.
	Dir string
	// Port is the TCP port of Addr.
	Port int
	// Password is the requirepass of a local server ("" = none).
	Password string
	// KeyPrefix is unique to the test ("gatehouse-test:<test>:<random>:").
	// Use it as redis.key_prefix so tests never collide on a shared server;
	// it is set for local servers too, so local runs behave like CI.
	KeyPrefix string
	// External reports that this is the GATEHOUSE_TEST_REDIS_URL server.
	External bool

	tb      testing.TB
	argv    []string // command line; Restart reuses it unchanged
	logPath string

	mu   sync.Mutex
	proc *process // nil when stopped
}

// Server returns a Redis for the test: a fresh redis-server on a free
// 127.0.0.1 port (no persistence unless WithAOF), stopped in tb.Cleanup, or
// the GATEHOUSE_TEST_REDIS_URL server when that is set and no option needs a
// local process. It skips the test when neither is available, or fails it
// when GATEHOUSE_REQUIRE_REDIS=1.
func Server(tb testing.TB, opts ...Option) *Instance {
	tb.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	msg := "redis-server not on PATH; install redis-server or set " + EnvURL
	if u := os.Getenv(EnvURL); u != "" {
		if !o.needsLocal() {
			return external(tb, u)
		}
		msg = "redis-server not on PATH; WithAOF and WithPassword need a local redis-server (" + EnvURL + " cannot be used)"
	}
	bin := requireBinary(tb, "redis-server", msg)
	return startServer(tb, bin, o, nil)
}

// startServer starts redis-server with the base config plus the lines extra
// returns (called again for each bind attempt; nil = none) and waits until it
// answers PING.
func startServer(tb testing.TB, bin string, o options, extra func() []string) *Instance {
	tb.Helper()
	dir := tb.TempDir()
	return startProcess(tb, dir, func(port int) ([]string, error) {
		conf := []string{
			"bind 127.0.0.1",
			"port " + strconv.Itoa(port),
			"dir " + quote(dir),
			"daemonize no",
			`logfile ""`, // stdout, which goes to redis.log
			`save ""`,
			// A replica's full sync (Sentinel set-up, after a failover)
			// would otherwise wait 5 s for more replicas to join.
			"repl-diskless-sync-delay 0",
		}
		if o.aof {
			conf = append(conf, "appendonly yes", "appendfsync always")
		} else {
			conf = append(conf, "appendonly no")
		}
		if o.password != "" {
			conf = append(conf, "requirepass "+quote(o.password))
		}
		if extra != nil {
			conf = append(conf, extra()...)
		}
		path := filepath.Join(dir, "redis.conf")
		if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("write config: %w", err)
		}
		return []string{bin, path}, nil
	}, o.password)
}

// startProcess picks a free port, builds the command line for it and starts
// the process, retrying with a new port if another process took it first.
func startProcess(tb testing.TB, dir string, argv func(port int) ([]string, error), password string) *Instance {
	tb.Helper()
	var lastErr error
	for range bindAttempts {
		port := FreePort(tb)
		args, err := argv(port)
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		i := &Instance{
			Addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			Dir:       dir,
			Port:      port,
			Password:  password,
			KeyPrefix: keyPrefix(tb),
			tb:        tb,
			argv:      args,
			logPath:   filepath.Join(dir, "redis.log"),
		}
		i.URL = redisURL(i.Addr, password)
		err = i.start()
		if err == nil {
			tb.Cleanup(i.kill)
			return i
		}
		lastErr = err
		if !strings.Contains(i.logTail(), "Address already in use") {
			break
		}
	}
	tb.Fatalf("redistest: %v", lastErr)
	return nil
}

// start spawns the process and waits until it answers PING. On failure the
// process is killed and the error carries the log tail.
func (i *Instance) start() error {
	p, err := spawn(i.argv, i.Dir, i.logPath)
	if err != nil {
		return fmt.Errorf("start %s: %w", i.argv[0], err)
	}
	i.mu.Lock()
	i.proc = p
	i.mu.Unlock()
	if err := waitPing(p, i.Addr, i.Password, startTimeout); err != nil {
		i.kill()
		return fmt.Errorf("%s on %s: %w\n%s", filepath.Base(i.argv[0]), i.Addr, err, i.logTail())
	}
	return nil
}

// external returns the GATEHOUSE_TEST_REDIS_URL server after checking that
// it answers; a set but unreachable URL fails the test rather than skipping.
func external(tb testing.TB, raw string) *Instance {
	tb.Helper()
	opt, err := redis.ParseURL(raw)
	if err != nil {
		tb.Fatalf("redistest: %s: %v", EnvURL, err)
	}
	i := &Instance{Addr: opt.Addr, URL: raw, KeyPrefix: keyPrefix(tb), External: true, tb: tb}
	if _, p, err := net.SplitHostPort(opt.Addr); err == nil {
		i.Port, _ = strconv.Atoi(p)
	}
	c := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		tb.Fatalf("redistest: %s=%s does not answer PING: %v", EnvURL, opt.Addr, err)
	}
	// Delete only this test's keys: the server is shared, so FLUSHDB is out.
	tb.Cleanup(func() {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		iter := c.Scan(ctx, 0, i.KeyPrefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			c.Unlink(ctx, iter.Val())
		}
	})
	return i
}

// Client returns a go-redis client for the instance (default options, the
// URL's password and DB), closed in tb.Cleanup.
func (i *Instance) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(i.URL)
	if err != nil {
		tb.Fatalf("redistest: parse %s: %v", i.URL, err)
	}
	c := redis.NewClient(opt)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop shuts the server down gracefully (SIGTERM, as a service manager
// would; with AOF everything is flushed) and waits for it to exit, killing
// it after 10 s. Stopping a stopped server does nothing.
func (i *Instance) Stop() {
	i.requireLocal("Stop")
	i.mu.Lock()
	p := i.proc
	i.proc = nil
	i.mu.Unlock()
	if p != nil {
		p.stop(startTimeout)
	}
}

// Kill kills the server with SIGKILL (a crash: nothing is flushed) and
// waits for it to exit. Killing a stopped server does nothing.
func (i *Instance) Kill() {
	i.requireLocal("Kill")
	i.kill()
}

func (i *Instance) kill() {
	i.mu.Lock()
	p := i.proc
	i.proc = nil
	i.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// Restart stops the server if it runs (gracefully, like Stop) and starts it
// again with the same port, directory and config, waiting until it answers
// PING (with AOF, until the data is loaded). Use Kill first to simulate a
// crash.
func (i *Instance) Restart(tb testing.TB) {
	tb.Helper()
	i.requireLocal("Restart")
	i.Stop()
	if err := i.start(); err != nil {
		tb.Fatalf("redistest: restart: %v", err)
	}
}

// Pause freezes the server with SIGSTOP: connections stay open and the
// kernel still accepts new ones, but nothing is answered, as with a hung
// server or a network partition. Resume undoes it; Cleanup kills a paused
// server too.
func (i *Instance) Pause(tb testing.TB) {
	tb.Helper()
	i.requireLocal("Pause")
	i.signal(tb, sigStop)
}

// Resume continues a server frozen by Pause (SIGCONT).
func (i *Instance) Resume(tb testing.TB) {
	tb.Helper()
	i.requireLocal("Resume")
	i.signal(tb, sigCont)
}

func (i *Instance) signal(tb testing.TB, sig signal) {
	tb.Helper()
	i.mu.Lock()
	p := i.proc
	i.mu.Unlock()
	if p == nil {
		tb.Fatalf("redistest: %s is not running", i.Addr)
	}
	if err := p.signal(sig); err != nil {
		tb.Fatalf("redistest: signal %s: %v", i.Addr, err)
	}
}

func (i *Instance) requireLocal(op string) {
	if i.External {
		i.tb.Helper()
		i.tb.Skipf("redistest: %s needs a redis-server started by the test, not %s", op, EnvURL)
	}
}

// logTail returns the last lines of the server's log, for failure messages.
func (i *Instance) logTail() string {
	if i.logPath == "" {
		return ""
	}
	b, err := os.ReadFile(i.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return "--- " + i.logPath + " (tail) ---\n" + strings.Join(lines, "\n")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago (the
// kernel picked it for a listener that is closed again). Another process can
// take it before it is used; the starters here retry on "Address already in
// use".
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// requireBinary finds name on PATH, or skips (fails with
// GATEHOUSE_REQUIRE_REDIS=1) with msg.
func requireBinary(tb testing.TB, name, msg string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(EnvRequire) == "1" {
		tb.Fatalf("%s (%s=1)", msg, EnvRequire)
	}
	tb.Skip(msg)
	return ""
}

// keyPrefix is unique per call: the sanitised test name for a human reading
// the keys, random bytes for uniqueness across runs sharing a server. Only
// [A-Za-z0-9_] from the name, so the prefix has no glob or hash-tag
// characters (SCAN MATCH and Cluster slots stay predictable).
func keyPrefix(tb testing.TB) string {
	name := []byte(tb.Name())
	for k, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			name[k] = '_'
		}
	}
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	return "gatehouse-test:" + string(name) + ":" + hex.EncodeToString(r[:]) + ":"
}

func redisURL(addr, password string) string {
	u := url.URL{Scheme: "redis", Host: addr, Path: "/0"}
	if password != "" {
		u.User = url.UserPassword("", password)
	}
	return u.String()
}

// quote makes s one argument in a redis.conf line.
func quote(s string) string { return strconv.Quote(s) }

// CommandCalls returns INFO commandstats of the server as command -> calls
// ("getex", "config|resetstat"): what the one-command budget of the hot
// path is measured with. Reset the counts first with CONFIG RESETSTAT.
func CommandCalls(tb testing.TB, c *redis.Client) map[string]int {
	tb.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatalf("redistest: INFO commandstats: %v", err)
	}
	return ParseCommandStats(info)
}

// ParseCommandStats reads INFO commandstats text into command -> calls.
func ParseCommandStats(info string) map[string]int {
	calls := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		v, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		calls[strings.TrimPrefix(name, "cmdstat_")], _ = strconv.Atoi(v)
	}
	return calls
}

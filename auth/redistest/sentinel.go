package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// sentinelMasterName is the name the sentinels monitor the master under.
	sentinelMasterName = "gatehouse"
	// sentinelCount of 3 with quorum 2 is the smallest setup that can
	// still elect a leader with one sentinel down.
	sentinelCount = 3
)

// SentinelInstance is a master, one replica and three sentinels (quorum 2)
// on 127.0.0.1, each in its own t.TempDir().
type SentinelInstance struct {
	// MasterName is the name the sentinels monitor (FailoverOptions.MasterName).
	MasterName string
	// SentinelAddrs are the sentinels' "127.0.0.1:port" addresses.
	SentinelAddrs []string
	// Master and Replica are the data nodes; Failover swaps them.
	Master, Replica *Instance
	// Sentinels are the sentinel processes.
	Sentinels []*Instance
}

// Sentinel starts a master, a replica of it and three sentinels monitoring
// it (down-after-milliseconds 1000, failover-timeout 5000), and waits until
// the replica is in sync and every sentinel knows the master, the replica
// and the other two sentinels. Everything is killed in tb.Cleanup. It skips
// the test when redis-server is missing, or fails it when
// GATEHOUSE_REQUIRE_REDIS=1.
func Sentinel(tb testing.TB) *SentinelInstance {
	tb.Helper()
	server := requireBinary(tb, "redis-server", "redis-server not on PATH; install redis-server to run Redis Sentinel tests")
	s := &SentinelInstance{MasterName: sentinelMasterName}

	s.Master = startServer(tb, server, options{}, nil)
	s.Replica = startServer(tb, server, options{}, func() []string {
		return []string{"replicaof 127.0.0.1 " + strconv.Itoa(s.Master.Port)}
	})
	// Sentinels learn replicas from the master's INFO, which they read at
	// once on connect and then only every 10 s: start them after the
	// replica is attached, or the wait below could take 10 s.
	master := adminClient(s.Master.Addr, "")
	defer master.Close()
	waitUntil(tb, "replica in sync", []*Instance{s.Master, s.Replica}, func(ctx context.Context) error {
		return replicated(ctx, master, 200*time.Millisecond)
	})

	argv := sentinelArgv(server)
	for range sentinelCount {
		dir := tb.TempDir()
		n := startProcess(tb, dir, func(port int) ([]string, error) {
			conf := strings.Join([]string{
				"bind 127.0.0.1",
				"port " + strconv.Itoa(port),
				"dir " + quote(dir),
				"daemonize no",
				`logfile ""`,
				"sentinel monitor " + s.MasterName + " 127.0.0.1 " + strconv.Itoa(s.Master.Port) + " 2",
				"sentinel down-after-milliseconds " + s.MasterName + " 1000",
				"sentinel failover-timeout " + s.MasterName + " 5000",
				"sentinel parallel-syncs " + s.MasterName + " 1",
			}, "\n") + "\n"
			// Sentinel rewrites its config file, so it must be writable.
			path := filepath.Join(dir, "sentinel.conf")
			if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
				return nil, fmt.Errorf("write sentinel config: %w", err)
			}
			return argv(path), nil
		}, "")
		tuneSentinel(tb, n)
		s.Sentinels = append(s.Sentinels, n)
		s.SentinelAddrs = append(s.SentinelAddrs, n.Addr)
	}

	s.waitSentinels(tb, "sentinels to know master, replica and each other", s.Master.Addr, s.Replica.Addr)
	return s
}

// tuneSentinel shortens two internal sentinel periods with SENTINEL DEBUG
// (Redis 7.0+), so that a test does not wait 10-20 s for what sentinels do
// on timers:
//   - info-period 10 s -> 1 s: how often a sentinel reads a replica's INFO,
//     and so how soon it turns a demoted old master into a replica.
//   - publish-period 2 s -> 1 s: how often sentinels announce themselves
//     (how soon they find each other at start-up).
//
// Not lower: a sentinel that sees a promoted replica before it hears of the
// failover waits only 4 x publish-period before turning the new master back
// into a replica, and the failover leader needs about 1.2 s to announce the
// new master. With a 200 ms publish-period (0.8 s grace) the topology
// flip-flopped in about one failover in ten; 1 s leaves 4 s of grace.
// Failure detection (down-after-milliseconds, failover-timeout) is
// unchanged. Older servers reject the command and are just slower. A
// restarted sentinel runs with the defaults again.
func tuneSentinel(tb testing.TB, n *Instance) {
	tb.Helper()
	c := adminClient(n.Addr, "")
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	err := c.Do(ctx, "SENTINEL", "DEBUG", "info-period", 1000, "publish-period", 1000).Err()
	if err != nil && !strings.Contains(err.Error(), "ERR") {
		tb.Fatalf("redistest: sentinel %s: SENTINEL DEBUG: %v", n.Addr, err)
	}
}

// sentinelArgv prefers redis-sentinel and falls back to redis-server
// --sentinel (Debian's redis-server package has no redis-sentinel).
func sentinelArgv(server string) func(conf string) []string {
	if p, err := exec.LookPath("redis-sentinel"); err == nil {
		return func(conf string) []string { return []string{p, conf} }
	}
	return func(conf string) []string { return []string{server, conf, "--sentinel"} }
}

// waitSentinels waits until every sentinel reports master as the master
// (with replica among its replicas, if replica is not empty) and sees the
// other sentinels.
func (s *SentinelInstance) waitSentinels(tb testing.TB, what, master, replica string) {
	tb.Helper()
	clients := make([]*redis.SentinelClient, len(s.SentinelAddrs))
	for k, a := range s.SentinelAddrs {
		clients[k] = redis.NewSentinelClient(adminClient(a, "").Options())
		defer clients[k].Close()
	}
	waitUntil(tb, what, s.nodes(), func(ctx context.Context) error {
		for k, c := range clients {
			if err := sentinelKnows(ctx, c, s.MasterName, master, replica); err != nil {
				return fmt.Errorf("sentinel %s: %w", s.SentinelAddrs[k], err)
			}
		}
		return nil
	})
}

func sentinelKnows(ctx context.Context, c *redis.SentinelClient, name, master, replica string) error {
	addr, err := c.GetMasterAddrByName(ctx, name).Result()
	if err != nil {
		return err
	}
	if got := addr[0] + ":" + addr[1]; got != master {
		return fmt.Errorf("master is %s, want %s", got, master)
	}
	m, err := c.Master(ctx, name).Result()
	if err != nil {
		return err
	}
	if m["flags"] != "master" {
		return fmt.Errorf("master flags %q, want \"master\"", m["flags"])
	}
	if m["num-other-sentinels"] != strconv.Itoa(sentinelCount-1) {
		return fmt.Errorf("num-other-sentinels %s, want %d", m["num-other-sentinels"], sentinelCount-1)
	}
	if replica == "" {
		return nil
	}
	replicas, err := c.Replicas(ctx, name).Result()
	if err != nil {
		return err
	}
	for _, r := range replicas {
		if r["ip"]+":"+r["port"] == replica && r["flags"] == "slave" && r["master-link-status"] == "ok" {
			return nil
		}
	}
	return fmt.Errorf("replica %s not known and in sync (replicas: %v)", replica, replicas)
}

// Failover makes the sentinels promote the replica (SENTINEL FAILOVER) and
// waits until every sentinel reports it as the master and it accepts
// writes. Then Master and Replica are swapped: Replica is the old master,
// which the sentinels turn into a replica of the new one shortly after.
func (s *SentinelInstance) Failover(tb testing.TB) {
	tb.Helper()
	// SENTINEL FAILOVER does not wait for the replica to catch up (unlike
	// the FAILOVER command); without this, writes made just before would be
	// lost at random, and tests would flake.
	master := adminClient(s.Master.Addr, "")
	defer master.Close()
	waitUntil(tb, "replica to have every write before failing over", s.nodes(), func(ctx context.Context) error {
		return replicated(ctx, master, 500*time.Millisecond)
	})

	sc := redis.NewSentinelClient(adminClient(s.SentinelAddrs[0], "").Options())
	defer sc.Close()
	newMaster := s.Replica
	// NOGOODSLAVE means the sentinel has not yet judged the replica fit to
	// promote (its INFO is refreshed on a timer): ask again. INPROG means an
	// earlier attempt whose reply was lost got through.
	waitUntil(tb, "SENTINEL FAILOVER to be accepted", s.nodes(), func(ctx context.Context) error {
		err := sc.Failover(ctx, s.MasterName).Err()
		if err != nil && strings.HasPrefix(err.Error(), "INPROG") {
			return nil
		}
		return err
	})
	s.waitSentinels(tb, "sentinels to report the new master "+newMaster.Addr, newMaster.Addr, "")

	c := adminClient(newMaster.Addr, "")
	defer c.Close()
	// DEL is a write (a replica answers READONLY) that leaves no key behind.
	waitUntil(tb, "new master "+newMaster.Addr+" to accept writes", s.nodes(), func(ctx context.Context) error {
		return c.Del(ctx, "redistest:failover-probe").Err()
	})
	s.Master, s.Replica = newMaster, s.Master
}

// FailoverClient returns a go-redis Sentinel-backed client for the master
// (default options), closed in tb.Cleanup.
func (s *SentinelInstance) FailoverClient(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    s.MasterName,
		SentinelAddrs: s.SentinelAddrs,
	})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// replicated reports whether a replica has acknowledged every write the
// master c has accepted so far, waiting up to timeout (below the admin
// client's 1 s read timeout).
//
// WAIT counts acknowledgements of this connection's last write, so the
// PUBLISH (replicated, but no key) comes first, on the same connection. It
// also covers the gap after a diskless full sync, where the master holds
// back the stream until the replica's next once-a-second REPLCONF ACK
// although the replica already reports master_link_status:up.
func replicated(ctx context.Context, c *redis.Client, timeout time.Duration) error {
	conn := c.Conn()
	defer conn.Close()
	if err := conn.Publish(ctx, "redistest:sync", "1").Err(); err != nil {
		return err
	}
	n, err := conn.Wait(ctx, 1, timeout).Result()
	if err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("WAIT 1: %d replicas acknowledged", n)
	}
	return nil
}

// nodes lists every process, for log tails in failure messages.
func (s *SentinelInstance) nodes() []*Instance {
	return append([]*Instance{s.Master, s.Replica}, s.Sentinels...)
}

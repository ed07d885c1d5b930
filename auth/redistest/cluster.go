package redistest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterMasters is the smallest cluster redis-cli --cluster create accepts.
const clusterMasters = 3

// ClusterInstance is a Redis Cluster of three masters without replicas, each
// a redis-server in its own t.TempDir() on 127.0.0.1.
type ClusterInstance struct {
	// Addrs are the masters' "127.0.0.1:port" addresses (ClusterOptions.Addrs).
	Addrs []string
	// Nodes are the masters, for Kill, Pause and the like.
	Nodes []*Instance
}

// Cluster starts a three-master Redis Cluster (slots split evenly by
// redis-cli --cluster create) and waits until every node reports
// cluster_state:ok and knows all three nodes. Everything is killed in
// tb.Cleanup. It skips the test when redis-server or redis-cli is missing,
// or fails it when GATEHOUSE_REQUIRE_REDIS=1.
func Cluster(tb testing.TB) *ClusterInstance {
	tb.Helper()
	server := requireBinary(tb, "redis-server", "redis-server not on PATH; install redis-server to run Redis Cluster tests")
	cli := requireBinary(tb, "redis-cli", "redis-cli not on PATH; install redis-tools to run Redis Cluster tests")

	c := &ClusterInstance{}
	for range clusterMasters {
		n := startServer(tb, server, options{}, func() []string {
			return []string{
				"cluster-enabled yes",
				"cluster-config-file nodes.conf",
				// An explicit bus port: the default (port+10000) may be
				// taken or above 65535 for ports the kernel hands out.
				"cluster-port " + strconv.Itoa(FreePort(tb)),
				"cluster-node-timeout 5000",
			}
		})
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Forked like the servers, from the thread that never exits, so that
	// Pdeathsig cannot fire mid-command.
	err := startFromSpawnerThread(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s\n%s", err, out.String(), c.Nodes[0].logTail())
	}

	admin := make([]*redis.Client, len(c.Nodes))
	for k, n := range c.Nodes {
		admin[k] = adminClient(n.Addr, "")
		defer admin[k].Close()
	}
	waitUntil(tb, "cluster_state:ok on every node", c.Nodes, func(ctx context.Context) error {
		for k, a := range admin {
			info, err := a.ClusterInfo(ctx).Result()
			if err != nil {
				return fmt.Errorf("%s: %w", c.Addrs[k], err)
			}
			for _, want := range []string{
				"cluster_state:ok",
				"cluster_slots_ok:16384",
				"cluster_known_nodes:" + strconv.Itoa(clusterMasters),
			} {
				if !strings.Contains(info, want+"\r\n") {
					return fmt.Errorf("%s: no %q in CLUSTER INFO", c.Addrs[k], want)
				}
			}
		}
		return nil
	})
	return c
}

// Client returns a cluster client for all nodes (default options), closed in
// tb.Cleanup.
func (c *ClusterInstance) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

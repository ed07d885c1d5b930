package redistest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// adminClient is for the topology waits: short timeouts and no retries, because
// the wait loop itself retries.
func adminClient(addr, password string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:         addr,
		Password:     password,
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		MaxRetries:   -1,
	})
}

// waitUntil polls cond until it returns nil, failing the test after
// startTimeout with cond's last error and the log tails of nodes.
func waitUntil(tb testing.TB, what string, nodes []*Instance, cond func(ctx context.Context) error) {
	tb.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, n := range nodes {
				logs.WriteString("\n" + n.logTail())
			}
			tb.Fatalf("redistest: waiting for %s: timed out after %v: %v%s", what, startTimeout, err, logs.String())
		}
		time.Sleep(pollInterval)
	}
}

package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/gatehouse-dev/gatehouse/config"
)

// Client settings for the request path. A dead or hung Redis must turn into
// a quick 503, not a request that hangs for go-redis' default 5s times 3
// retries; the proxy bounds each Authenticate with its own deadline as well,
// which ContextTimeoutEnabled lets reach the socket.
const (
	redisDialTimeout = time.Second
	redisIOTimeout   = time.Second
	redisPoolTimeout = time.Second
	redisMaxRetries  = 1
	// redisDialAttempts: one dial per attempt, not go-redis' five with
	// 100ms pauses; MaxRetries already tries the command once more.
	redisDialAttempts = 1
)

// redisPoolSize is connections per node: each proxied request holds one for
// a single round trip, so this many requests can wait on Redis at once per
// CPU before they queue for PoolTimeout.
func redisPoolSize() int { return 32 * runtime.GOMAXPROCS(0) }

// OpenRedis connects to the configured store: redis.url (redis:// or
// rediss://; redis.password overrides the URL's), redis.sentinel (a failover
// client that follows the master), redis.cluster (a Cluster client) or, when
// none is set, an embedded in-process miniredis on 127.0.0.1 (development
// only: its data is lost at exit, which it logs as a warning; it answers
// only clients with a random password made at start, this process's). It does not
// wait for the server: a Redis that is down at start makes requests answer
// 503 until it is back (see Store.Ping for readiness). It returns the client
// and a func that closes it (and the embedded server).
func OpenRedis(cfg config.Redis, logger *slog.Logger) (redis.UniversalClient, func() error, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// config.Load has already read every X_file into X, and config.Validate
	// refused two topologies at once, an empty cluster or sentinel, and a
	// URL go-redis cannot parse.
	url, password := cfg.URL, cfg.Password

	switch {
	case cfg.Cluster != nil:
		c := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                    cfg.Cluster.Addrs,
			Password:                 password,
			DialTimeout:              redisDialTimeout,
			ReadTimeout:              redisIOTimeout,
			WriteTimeout:             redisIOTimeout,
			PoolTimeout:              redisPoolTimeout,
			ContextTimeoutEnabled:    true,
			MaxRetries:               redisMaxRetries,
			DialerRetries:            redisDialAttempts,
			PoolSize:                 redisPoolSize(),
			MaintNotificationsConfig: maintOff(),
		})
		return c, c.Close, nil

	case cfg.Sentinel != nil:
		c := redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:            cfg.Sentinel.Master,
			SentinelAddrs:         cfg.Sentinel.Addrs,
			SentinelPassword:      cfg.Sentinel.Password,
			Password:              password,
			DialTimeout:           redisDialTimeout,
			ReadTimeout:           redisIOTimeout,
			WriteTimeout:          redisIOTimeout,
			PoolTimeout:           redisPoolTimeout,
			ContextTimeoutEnabled: true,
			MaxRetries:            redisMaxRetries,
			DialerRetries:         redisDialAttempts,
			PoolSize:              redisPoolSize(),
			// (FailoverClient turns maintenance notifications off itself.)
		})
		return c, c.Close, nil

	case url != "":
		opt, err := redis.ParseURL(url)
		if err != nil {
			// ParseURL's message may quote the URL, password included.
			return nil, nil, errors.New("auth: redis.url: not a valid redis:// or rediss:// URL")
		}
		if password != "" {
			opt.Password = password
		}
		c := newRedisClient(opt)
		return c, c.Close, nil

	default:
		m := miniredis.NewMiniRedis()
		// miniredis TTLs only count down with the clock when asked to;
		// without this no session or throttle window would ever end.
		m.ClockTTL(true)
		// The port is open to every local user: without a password any of
		// them could read the password hashes or write a session for any
		// user id. The password is random per start, known only to this
		// process, and never logged.
		pw := rand.Text()
		m.RequireAuth(pw)
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, nil, fmt.Errorf("auth: start embedded store: %w", err)
		}
		logger.Warn("no redis configured: using an embedded in-memory store; accounts and sessions are lost at exit (development only)",
			"addr", m.Addr())
		c := newRedisClient(&redis.Options{Addr: m.Addr(), Password: pw})
		return c, func() error {
			err := c.Close()
			m.Close()
			return err
		}, nil
	}
}

// newRedisClient applies the request-path settings to opt.
func newRedisClient(opt *redis.Options) *redis.Client {
	opt.DialTimeout = redisDialTimeout
	opt.ReadTimeout = redisIOTimeout
	opt.WriteTimeout = redisIOTimeout
	opt.PoolTimeout = redisPoolTimeout
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = redisMaxRetries
	opt.DialerRetries = redisDialAttempts
	if opt.PoolSize == 0 {
		opt.PoolSize = redisPoolSize()
	}
	opt.MaintNotificationsConfig = maintOff()
	return redis.NewClient(opt)
}

// maintOff turns off Redis Enterprise maintenance notifications: they are
// for managed clusters that announce failovers, and their handshake is one
// more thing that can fail against plain Redis or miniredis.
func maintOff() *maintnotifications.Config {
	return &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}

package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
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

// StoreOptions are OpenStore's optional dependencies.
type StoreOptions struct {
	// Logger receives the embedded store's warning; nil discards it.
	Logger *slog.Logger
}

// OpenStore opens the configured Redis (see OpenRedis) and returns a Store
// on it with the configured key prefix, and the func that closes both.
func OpenStore(cfg config.Redis, opts StoreOptions) (*Store, func() error, error) {
	rdb, closeFn, err := OpenRedis(cfg, opts.Logger)
	if err != nil {
		return nil, nil, err
	}
	return NewStore(rdb, cfg.KeyPrefix), closeFn, nil
}

// OpenRedis connects to the configured store: redis.url (redis:// or
// rediss://; redis.password overrides the URL's), redis.sentinel (a failover
// client that follows the master), redis.cluster (a Cluster client) or, when
// none is set, an embedded in-process miniredis on 127.0.0.1 (development
// only: its data is lost at exit, which it logs as a warning). It does not
// wait for the server: a Redis that is down at start makes requests answer
// 503 until it is back (see Store.Ping for readiness). It returns the client
// and a func that closes it (and the embedded server).
func OpenRedis(cfg config.Redis, logger *slog.Logger) (redis.UniversalClient, func() error, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	url, err := secret(cfg.URL, cfg.URLFile, "redis.url")
	if err != nil {
		return nil, nil, err
	}
	password, err := secret(cfg.Password, cfg.PasswordFile, "redis.password")
	if err != nil {
		return nil, nil, err
	}
	set := 0
	for _, b := range []bool{url != "", cfg.Sentinel != nil, cfg.Cluster != nil} {
		if b {
			set++
		}
	}
	if set > 1 {
		return nil, nil, errors.New("auth: redis: set only one of url, sentinel and cluster")
	}

	switch {
	case cfg.Cluster != nil:
		if len(cfg.Cluster.Addrs) == 0 {
			return nil, nil, errors.New("auth: redis.cluster.addrs: at least one address is required")
		}
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
		if cfg.Sentinel.Master == "" || len(cfg.Sentinel.Addrs) == 0 {
			return nil, nil, errors.New("auth: redis.sentinel: master and at least one address are required")
		}
		sentinelPassword, err := secret(cfg.Sentinel.Password, cfg.Sentinel.PasswordFile, "redis.sentinel.password")
		if err != nil {
			return nil, nil, err
		}
		c := redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:            cfg.Sentinel.Master,
			SentinelAddrs:         cfg.Sentinel.Addrs,
			SentinelPassword:      sentinelPassword,
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
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, nil, fmt.Errorf("auth: start embedded store: %w", err)
		}
		logger.Warn("no redis configured: using an embedded in-memory store; accounts and sessions are lost at exit (development only)",
			"addr", m.Addr())
		c := newRedisClient(&redis.Options{Addr: m.Addr()})
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

// secret returns v, or the content of file (trailing newline trimmed) when
// v is empty. The config loader normally resolves X_file already; this
// keeps OpenRedis right for a Config built in code.
func secret(v, file, name string) (string, error) {
	if v != "" || file == "" {
		return v, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("auth: %s_file: %w", name, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-dev/gatehouse/auth"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy"
	"github.com/gatehouse-dev/gatehouse/proxy/assertion"
)

// Server limits. Headers are capped near 64 KiB (net/http adds 4 KiB of
// slack to MaxHeaderBytes and answers 431 itself); the read-header timeout
// is what stops slowloris clients. There is no ReadTimeout or WriteTimeout:
// uploads, downloads, SSE and WebSockets may legitimately run long.
const (
	maxHeaderBytes = 60 << 10
	idleTimeout    = 120 * time.Second
	// storeProbeInterval is how often the store is pinged for readiness
	// and gatehouse_store_up.
	storeProbeInterval = 5 * time.Second
)

// readHeaderTimeout is a variable only so that the slowloris test need not
// wait ten seconds.
var readHeaderTimeout = 10 * time.Second

// gateway is one loaded configuration and the handler built from it. A hot
// reload swaps the whole value, so a request sees one configuration only.
type gateway struct {
	cfg     *config.Config
	handler *proxy.Gateway
}

// app holds what lives as long as the process: the store, the metrics, the
// current gateway, readiness.
type app struct {
	logger  *slog.Logger
	rdb     redis.UniversalClient
	store   *auth.Store
	metrics *metrics
	hashes  *auth.HashLimiter // one cap on bcrypt work across reloads
	// ephemeral signs the identity assertion of a configuration without
	// key_files. One per process: a reload must not change the key that
	// upstreams cached from the JWKS.
	ephemeral *assertion.KeySet
	current   atomic.Pointer[gateway]
	reloadMu  sync.Mutex // one reload at a time

	storeAnswered atomic.Bool // the store answered at least once since start
	shuttingDown  atomic.Bool

	// totp is the embedded store's TOTP key, one per process.
	totp ephemeralTOTP
}

// serve runs the gateway until ctx ends, then drains in-flight requests.
func serve(ctx context.Context, e env, path string) error {
	// Taken before loading: a change between the two is then seen as a
	// change, never missed.
	loadedSum := fileSum(path)
	cfg, err := e.loadConfig(path)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return errReported
	}
	logOut, flushLog := newLogWriter(e.stderr)
	defer flushLog()
	logger := slog.New(slog.NewJSONHandler(logOut, nil))
	redisLogTarget.Store(logger)
	// Registered before anything else starts: until then a SIGHUP would
	// take its default action and end the process (systemd's ExecReload
	// right after start, say).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	rdb, closeStore, err := auth.OpenRedis(cfg.Redis, logger)
	if err != nil {
		return fmt.Errorf("open session store: %w", err)
	}
	defer func() {
		if err := closeStore(); err != nil {
			logger.Warn("closing session store", "err", err)
		}
	}()

	eph, err := assertion.EphemeralKeys()
	if err != nil {
		return fmt.Errorf("identity assertion: %w", err)
	}
	a := &app{logger: logger, rdb: rdb, store: auth.NewStore(rdb, cfg.Redis.KeyPrefix), metrics: newMetrics(),
		hashes: auth.NewHashLimiter(0), ephemeral: eph}
	gw, err := a.build(cfg)
	if err != nil {
		return err
	}
	a.current.Store(gw)
	defer func() { a.current.Load().handler.Close() }()

	publicLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	public := &http.Server{
		Handler:           http.HandlerFunc(a.serveHTTP),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	servers := []*http.Server{public}
	listeners := []net.Listener{publicLn}
	logger.Info("listening", "listener", "public", "addr", publicLn.Addr().String())

	if cfg.AdminListen != "" {
		adminLn, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			publicLn.Close()
			return fmt.Errorf("admin listen: %w", err)
		}
		admin := &http.Server{
			Handler:           a.adminHandler(),
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
		servers = append(servers, admin)
		listeners = append(listeners, adminLn)
		logger.Info("listening", "listener", "admin", "addr", adminLn.Addr().String())
	}

	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	watcher, err := watchConfigDir(path)
	if err != nil {
		a.logger.Warn("config file not watched; reload with SIGHUP", "err", err)
	} else {
		defer watcher.Close()
	}
	go a.probeStore(bg)
	go a.watchReloads(bg, e, path, hup, watcher, loadedSum)

	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}

	select {
	case err := <-errc:
		// A listener failed on its own: stop the rest and report it.
		a.shuttingDown.Store(true)
		for _, srv := range servers {
			srv.Close()
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	// Readiness turns 503 first, so load balancers stop sending, then the
	// listeners close and in-flight requests drain within shutdown_timeout.
	a.shuttingDown.Store(true)
	// The drain is bounded by the timeout of the configuration in force
	// now, which a reload may have changed since start.
	timeout := time.Duration(a.current.Load().cfg.ShutdownTimeout)
	logger.Info("shutting down", "timeout", timeout.String())
	drainCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// One at a time, public first: the admin listener keeps answering
	// /readyz 503 (rather than refusing connections) while requests drain.
	for _, srv := range servers {
		if err := srv.Shutdown(drainCtx); err != nil {
			logger.Warn("drain incomplete; closing remaining connections", "err", err)
			srv.Close()
		}
	}
	logger.Info("stopped")
	return nil
}

// serveHTTP hands the request to the current gateway. The atomic load is the
// whole cost of hot reload on the hot path.
func (a *app) serveHTTP(w http.ResponseWriter, r *http.Request) {
	a.current.Load().handler.ServeHTTP(w, r)
}

// build makes a gateway from cfg, sharing the process's store and metrics.
func (a *app) build(cfg *config.Config) (*gateway, error) {
	factors, err := secondFactors(a.store, cfg, &a.totp, a.logger)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	svc, err := auth.NewService(a.store, cfg, auth.ServiceOptions{Logger: a.logger, Metrics: a.metrics.auth, Hashes: a.hashes,
		Factors: factors})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	endpoints := auth.NewHandlers(cfg, svc, auth.HandlerOptions{Logger: a.logger})
	h, err := proxy.New(proxy.Options{
		Config:        cfg,
		Auth:          svc,
		Endpoints:     endpoints,
		Logger:        a.logger,
		Metrics:       a.metrics.proxy,
		EphemeralKeys: a.ephemeral,
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if as := cfg.Identity.Assertion; as.Header != "" && len(as.Keys) == 0 {
		a.logger.Warn("identity assertion signed with an ephemeral key: upstreams must fetch the JWKS again after a restart, and each replica signs with its own key; set identity.assertion.key_files",
			"kid", a.ephemeral.KeyIDs()[0])
	}
	return &gateway{cfg: cfg, handler: h}, nil
}

// probeStore pings the store for readiness and gatehouse_store_up.
func (a *app) probeStore(ctx context.Context) {
	t := time.NewTicker(storeProbeInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := a.store.Ping(pctx)
		cancel()
		if err == nil {
			a.storeAnswered.Store(true)
			a.metrics.storeUp.Set(1)
		} else if ctx.Err() == nil {
			a.metrics.storeUp.Set(0)
			a.logger.Warn("session store unreachable", "err", err)
		}
		// Until the store first answers, ask again quickly so that
		// readiness follows within a second.
		wait := storeProbeInterval
		if !a.storeAnswered.Load() {
			wait = 200 * time.Millisecond
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

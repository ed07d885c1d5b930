package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-dev/gatehouse/auth"
	"github.com/gatehouse-dev/gatehouse/auth/redistest"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/assertion"
)

// discardWriter keeps nothing; both benchmarks use it so its cost cancels.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

func serveLoop(b *testing.B, h http.Handler, r *http.Request) {
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.ResetTimer()
	defer startCPU(b)()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkGatewayAuthenticatedRedis is the whole per-request stack the
// binary runs for an authenticated route: the gateway built by the
// command (request log to a JSON handler, metrics), the auth service and a
// real redis-server (one GETEX), and a real upstream. Its allocs/op minus
// BenchmarkGatewayBareProxy's is the gateway's allocation cost.
func BenchmarkGatewayAuthenticatedRedis(b *testing.B) {
	up := benchUpstream(b)
	gw, token := newAuthedGateway(b, redistest.Server(b), up.URL, false)
	serveLoop(b, gw.handler, benchRequest(b, token))
}

// BenchmarkGatewayAuthenticatedRedisAssertion is
// BenchmarkGatewayAuthenticatedRedis with the signed identity assertion on:
// the pair's ratio is what the assertion costs. One session makes every
// request, as an active user's do, so the Signer signs once and then
// reuses the assertion (for a quarter of its ttl); the uncached signature
// is BenchmarkSign in proxy/assertion.
func BenchmarkGatewayAuthenticatedRedisAssertion(b *testing.B) {
	up := benchUpstream(b)
	gw, token := newAuthedGateway(b, redistest.Server(b), up.URL, true)
	serveLoop(b, gw.handler, benchRequest(b, token))
}

// newAuthedGateway builds the gateway the command would for one
// authenticated route to upstream on r, with the identity assertion on or
// off, registers a user and returns a session token of theirs.
func newAuthedGateway(tb testing.TB, r *redistest.Instance, upstream string, withAssertion bool) (*gateway, string) {
	tb.Helper()
	src := fmt.Sprintf(`
redis: {url: %q, key_prefix: %q}
upstreams: {app: %q}
routes: [{path: /, policy: authenticated}]
auth: {bcrypt_cost: 4}
`, r.URL, r.KeyPrefix, upstream)
	if withAssertion {
		src += "identity: {assertion: {header: X-Gatehouse-Assertion}}\n"
	}
	cfg, err := config.Parse("bench.yaml", []byte(src), nil)
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	rdb, closeStore, err := auth.OpenRedis(cfg.Redis, logger)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { closeStore() })
	eph, err := assertion.EphemeralKeys()
	if err != nil {
		tb.Fatal(err)
	}
	a := &app{logger: logger, rdb: rdb, store: auth.NewStore(rdb, cfg.Redis.KeyPrefix), metrics: newMetrics(), ephemeral: eph}
	gw, err := a.build(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(gw.handler.Close)
	svc, err := auth.NewService(a.store, cfg, auth.ServiceOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if _, err := svc.AddUser(ctx, "bench@example.com", "benchmark-password"); err != nil {
		tb.Fatal(err)
	}
	_, token, err := svc.Login(ctx, "bench@example.com", "benchmark-password", "127.0.0.1", "")
	if err != nil {
		tb.Fatal(err)
	}
	return gw, token
}

// BenchmarkGatewayBareProxy is a plain httputil.ReverseProxy to the same
// kind of upstream with the same request: the floor any Go proxy pays.
func BenchmarkGatewayBareProxy(b *testing.B) {
	up := benchUpstream(b)
	target, _ := url.Parse(up.URL)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	b.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: tr,
	}
	serveLoop(b, rp, benchRequest(b, "gh1.not-checked"))
}

func benchUpstream(b testing.TB) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		w.Write([]byte("ok"))
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchRequest(b testing.TB, token string) *http.Request {
	b.Helper()
	r := httptest.NewRequest("GET", "http://app.example.com/api/v1/items/42?page=2", nil)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "bench/1.0")
	r.Header.Set("Cookie", "theme=dark; gatehouse_session="+token)
	r.RemoteAddr = "192.0.2.10:51234"
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return r.WithContext(ctx)
}

// BenchmarkUpstreamKeepAlivePool shows why the upstream transport keeps
// 256 idle connections per host: with 32 concurrent requests, Go's
// default of 2 makes most requests dial a new connection. It reports
// dials per request.
func BenchmarkUpstreamKeepAlivePool(b *testing.B) {
	for _, tc := range []struct {
		name string
		idle int
	}{{"default-2", 2}, {"gatehouse-256", 256}} {
		b.Run(tc.name, func(b *testing.B) {
			up := benchUpstream(b)
			target, _ := url.Parse(up.URL)
			var dials atomic.Int64
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = tc.idle
			d := &net.Dialer{}
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return d.DialContext(ctx, network, addr)
			}
			b.Cleanup(tr.CloseIdleConnections)
			rp := &httputil.ReverseProxy{
				Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
				Transport: tr,
			}
			b.SetParallelism(16) // 32 goroutines on 2 CPUs
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: make(http.Header)}
				r := httptest.NewRequest("GET", "http://app.example.com/x", nil)
				for pb.Next() {
					clear(w.h)
					rp.ServeHTTP(w, r)
				}
			})
			b.ReportMetric(float64(dials.Load())/float64(b.N), "dials/op")
		})
	}
}

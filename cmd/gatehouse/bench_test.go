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
	r := redistest.Server(b)
	cfg, err := config.Parse("bench.yaml", []byte(fmt.Sprintf(`
redis: {url: %q, key_prefix: %q}
upstreams: {app: %q}
routes: [{path: /, policy: authenticated}]
auth: {bcrypt_cost: 4}
`, r.URL, r.KeyPrefix, up.URL)), nil)
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	rdb, closeStore, err := auth.OpenRedis(cfg.Redis, logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeStore() })
	a := &app{logger: logger, rdb: rdb, store: auth.NewStore(rdb, cfg.Redis.KeyPrefix), metrics: newMetrics()}
	gw, err := a.build(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(gw.handler.Close)
	svc, err := auth.NewService(a.store, cfg, auth.ServiceOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.AddUser(b.Context(), "bench@example.com", "benchmark-password"); err != nil {
		b.Fatal(err)
	}
	_, token, err := svc.Login(b.Context(), "bench@example.com", "benchmark-password", "127.0.0.1", "")
	if err != nil {
		b.Fatal(err)
	}
	serveLoop(b, gw.handler, benchRequest(b, token))
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

func benchUpstream(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		w.Write([]byte("ok"))
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchRequest(b *testing.B, token string) *http.Request {
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

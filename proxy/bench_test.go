package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing, shared by both
// benchmarks so that its cost cancels out.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

func benchUpstream(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		_, _ = w.Write([]byte("ok"))
	}))
	b.Cleanup(srv.Close)
	return srv
}

// benchRequest is a typical browser request with a session cookie.
func benchRequest(b *testing.B, ctx context.Context) *http.Request {
	b.Helper()
	r := httptest.NewRequest("GET", "http://app.example.com/api/v1/items/42?page=2", nil)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "bench/1.0")
	r.Header.Set("Accept-Encoding", "gzip")
	r.Header.Set("Cookie", "theme=dark; gatehouse_session="+tokAlice)
	r.RemoteAddr = "192.0.2.10:51234"
	return r.WithContext(ctx)
}

func runBench(b *testing.B, h http.Handler, r *http.Request) {
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

// BenchmarkProxyAuthenticated measures the gateway's full pipeline for an
// authenticated route with a valid session (in-memory Authenticator, so
// the number is the proxy's own cost), against a real upstream. Compare
// its allocs/op with BenchmarkBareReverseProxy.
func BenchmarkProxyAuthenticated(b *testing.B) {
	up := benchUpstream(b)
	cfg := testConfig(up.URL)
	gw, err := New(Options{Config: cfg, Auth: newFakeAuth(), Metrics: NewMetrics(nil)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(gw.Close)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	runBench(b, gw, benchRequest(b, ctx))
}

// BenchmarkBareReverseProxy is a plain httputil.ReverseProxy (Rewrite with
// SetURL and SetXForwarded) over the same transport to the same upstream.
func BenchmarkBareReverseProxy(b *testing.B) {
	up := benchUpstream(b)
	cfg := testConfig(up.URL)
	gw, err := New(Options{Config: cfg, Auth: newFakeAuth()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(gw.Close)
	target, _ := url.Parse(up.URL)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: gw.upstreams["app"].transport,
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	runBench(b, rp, benchRequest(b, ctx))
}

package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
	"github.com/prometheus/client_golang/prometheus"
)

// Transport sizing. http.DefaultTransport keeps 2 idle connections per host,
// which under load means a new upstream connection for most requests.
const (
	maxIdleConnsPerHost = 256
	maxIdleConns        = 1024
	idleConnTimeout     = 90 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	copyBufferSize      = 32 << 10
)

// upstream is one configured backend: its ReverseProxy and transport.
type upstream struct {
	name      string
	scheme    string
	host      string
	transport *http.Transport // nil for builtin:echo
	proxy     *httputil.ReverseProxy
	errors    [numKinds]prometheus.Counter
}

func (g *Gateway) newUpstream(name string, cu config.Upstream) (*upstream, error) {
	up := &upstream{name: name, errors: g.metrics.upstreamErrorCounters(name)}
	var rt http.RoundTripper
	if cu.URL == config.BuiltinEcho {
		// The echo backend is served in process but through the same
		// ReverseProxy and Rewrite, so it shows exactly what a real
		// upstream would receive.
		up.scheme, up.host = "http", "builtin-echo.invalid"
		rt = handlerTransport{h: NewEcho()}
	} else {
		// config.Validate refused every URL but scheme://host[:port].
		u, err := url.Parse(cu.URL)
		if err != nil {
			return nil, fmt.Errorf("url: %w", err)
		}
		up.scheme, up.host = u.Scheme, u.Host
		t, err := newTransport(u.Scheme, cu)
		if err != nil {
			return nil, err
		}
		up.transport, rt = t, t
	}
	up.proxy = &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { g.rewrite(up, pr) },
		Transport: rt,
		// 0: responses of known length are copied without timed flushes;
		// ReverseProxy itself flushes every write of a text/event-stream
		// or unknown-length (streamed) response at once.
		FlushInterval:  0,
		BufferPool:     bufferPool{},
		ModifyResponse: g.dropSessionSetCookie,
		ErrorHandler:   func(w http.ResponseWriter, r *http.Request, err error) { g.proxyError(up, w, r, err) },
		ErrorLog:       log.New(slogWriter{g.log}, "", 0),
	}
	return up, nil
}

func newTransport(scheme string, cu config.Upstream) (*http.Transport, error) {
	dial := time.Duration(cu.DialTimeout)
	if dial <= 0 {
		dial = config.DefaultDialTimeout
	}
	rht := time.Duration(cu.ResponseHeaderTimeout)
	if rht <= 0 {
		rht = config.DefaultResponseHeaderTimeout
	}
	d := &net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 nil, // never an environment proxy between gateway and upstream
		DialContext:           d.DialContext,
		MaxIdleConns:          maxIdleConns,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		ResponseHeaderTimeout: rht,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ExpectContinueTimeout: time.Second,
		// The client's encoding is passed through untouched.
		DisableCompression: true,
		ForceAttemptHTTP2:  scheme == "https",
	}
	if scheme == "https" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cu.InsecureSkipVerify} //nolint:gosec // opt-in, documented as never for production
		if cu.CAFile != "" {
			pem, err := os.ReadFile(cu.CAFile)
			if err != nil {
				return nil, fmt.Errorf("ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca_file: no PEM certificate in %s", cu.CAFile)
			}
			tc.RootCAs = pool
		}
		t.TLSClientConfig = tc
	}
	return t, nil
}

func (up *upstream) close() {
	if up.transport != nil {
		up.transport.CloseIdleConnections()
	}
}

// proxyError answers a failed upstream round trip. The error text goes to
// the log only, never to the client.
func (g *Gateway) proxyError(up *upstream, w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	if st != nil && st.Context.Err() != nil && errors.Is(err, context.Canceled) {
		// The client went away; there is nobody to answer.
		if st.w.status == 0 {
			st.w.status = 499
		}
		g.log.LogAttrs(r.Context(), slog.LevelDebug, "client gone", slog.String("upstream", up.name))
		return
	}
	kind := upstreamErrorKind(err)
	if c := up.errors[kind]; c != nil {
		c.Inc()
	}
	g.log.LogAttrs(r.Context(), slog.LevelWarn, "upstream error",
		slog.String("upstream", up.name), slog.String("kind", kindNames[kind]), slog.String("error", err.Error()))
	if st != nil && (st.w.status != 0 || st.w.hijacked) {
		return // a response already started (an upgrade that failed late)
	}
	if kind == kindTimeout {
		apierror.Write(w, apierror.UpstreamTimeout)
		return
	}
	apierror.Write(w, apierror.UpstreamUnavailable)
}

func upstreamErrorKind(err error) int {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return kindRefused
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return kindTimeout
	}
	return kindOther
}

// bufferPool lends ReverseProxy 32 KiB copy buffers. It pools array
// pointers, so that Put does not allocate a slice header.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

func (bufferPool) Get() []byte { return copyBuffers.Get().(*[copyBufferSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if cap(b) >= copyBufferSize {
		copyBuffers.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
	}
}

// slogWriter sends ReverseProxy's own log lines (body copy errors) to the
// gateway's logger.
type slogWriter struct{ l *slog.Logger }

func (s slogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	s.l.Warn("reverse proxy", slog.String("error", msg))
	return len(p), nil
}

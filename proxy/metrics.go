package proxy

import (
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds the gateway's HTTP metrics. One Metrics outlives hot
// reloads: every Gateway built with it feeds the same series. Label values
// are bounded: a route's name or index, a known method or OTHER, a status
// code; never a user id or a raw path.
type Metrics struct {
	requests       *prometheus.CounterVec   // code, method, route, policy
	duration       *prometheus.HistogramVec // route, policy
	inFlight       prometheus.Gauge
	upstreamErrors *prometheus.CounterVec // upstream, kind
	decisions      [numDecisions]prometheus.Counter
}

// Auth decision results, the values of gatehouse_auth_decisions_total's
// result label.
type decision uint8

const (
	decAllowed decision = iota
	decUnauthenticated
	decForbidden
	decStoreUnavailable
	decBadPath
	decCrossOrigin
	decMFARequired
	decInternalError
	numDecisions
)

var decisionNames = [numDecisions]string{
	"allowed", "unauthenticated", "forbidden", "store_unavailable", "bad_path", "cross_origin", "mfa_required", "internal_error",
}

// Upstream error kinds, the values of gatehouse_upstream_errors_total's
// kind label.
const (
	kindRefused = iota
	kindTimeout
	kindOther
	numKinds
)

var kindNames = [numKinds]string{"refused", "timeout", "other"}

// NewMetrics creates the gateway's metrics and registers them with reg. A
// collector already registered there (a second NewMetrics on the same
// registry) is reused. It panics on any other registration error, as
// prometheus.MustRegister does.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total",
			Help: "HTTP requests answered by the gateway, by status code, method, route and policy.",
		}, []string{"code", "method", "route", "policy"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_http_request_duration_seconds",
			Help:    "Time to answer a request, upstream included, by route and policy.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "policy"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_http_requests_in_flight",
			Help: "Requests being served.",
		}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_upstream_errors_total",
			Help: "Failed upstream round trips, by upstream and kind (refused, timeout, other).",
		}, []string{"upstream", "kind"}),
	}
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_auth_decisions_total",
		Help: "Access decisions on proxied and forward-auth requests, by result.",
	}, []string{"result"})
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.duration = register(reg, m.duration)
		m.inFlight = register(reg, m.inFlight)
		m.upstreamErrors = register(reg, m.upstreamErrors)
		decisions = register(reg, decisions)
	}
	for i, n := range decisionNames {
		m.decisions[i] = decisions.WithLabelValues(n)
	}
	return m
}

func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// Method label values; anything else is OTHER so that a client cannot
// create series at will.
var methodLabels = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

func methodIndex(m string) int {
	for i, l := range methodLabels[:len(methodLabels)-1] {
		if l == m {
			return i
		}
	}
	return len(methodLabels) - 1
}

// Status codes whose counters are cached per route and method; others go
// through the label lookup (slower, still bounded by the code's range).
var cachedCodes = [...]int{200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308,
	400, 401, 403, 404, 405, 409, 413, 415, 429, 431, 499, 500, 502, 503, 504}

func codeIndex(code int) int {
	for i, c := range cachedCodes {
		if c == code {
			return i
		}
	}
	return -1
}

// routeMetrics is one route's (or own endpoint's) series, resolved once so
// that the hot path does no label hashing: the histogram child is fixed
// and request counters are created on first use and cached.
type routeMetrics struct {
	m        *Metrics
	route    string
	policy   string
	duration prometheus.Observer
	counters [len(methodLabels)][len(cachedCodes)]atomic.Pointer[counterRef]
}

type counterRef struct{ c prometheus.Counter }

func (m *Metrics) forRoute(route, policy string) *routeMetrics {
	if m == nil {
		return nil
	}
	return &routeMetrics{m: m, route: route, policy: policy, duration: m.duration.WithLabelValues(route, policy)}
}

// observe records one finished request.
func (rm *routeMetrics) observe(method string, code int, d time.Duration) {
	rm.duration.Observe(d.Seconds())
	mi := methodIndex(method)
	ci := codeIndex(code)
	if ci < 0 {
		rm.m.requests.WithLabelValues(strconv.Itoa(code), methodLabels[mi], rm.route, rm.policy).Inc()
		return
	}
	slot := &rm.counters[mi][ci]
	ref := slot.Load()
	if ref == nil {
		// Racing creators get the same child from the vec; either store
		// is fine.
		ref = &counterRef{rm.m.requests.WithLabelValues(strconv.Itoa(code), methodLabels[mi], rm.route, rm.policy)}
		slot.Store(ref)
	}
	ref.c.Inc()
}

func (m *Metrics) decision(d decision) {
	if m != nil {
		m.decisions[d].Inc()
	}
}

func (m *Metrics) upstreamErrorCounters(upstream string) [numKinds]prometheus.Counter {
	var cs [numKinds]prometheus.Counter
	if m == nil {
		return cs
	}
	for i, k := range kindNames {
		cs[i] = m.upstreamErrors.WithLabelValues(upstream, k)
	}
	return cs
}

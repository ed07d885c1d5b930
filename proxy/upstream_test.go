package proxy

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestUpstreamErrors(t *testing.T) {
	// A port nobody listens on: listen, note the address, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := l.Addr().String()
	l.Close()

	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	var logs bytes.Buffer
	tg := newTestGateway(t, func(c *config.Config) {
		c.Upstreams["dead"] = config.Upstream{URL: "http://" + deadAddr}
		c.Upstreams["slow"] = config.Upstream{URL: c.Upstreams["app"].URL, ResponseHeaderTimeout: config.Duration(50 * time.Millisecond)}
		c.Routes = []config.Route{
			{Path: "/dead", Policy: config.Public, Upstream: "dead"},
			{Path: "/slow", Policy: config.Public, Upstream: "slow"},
			{Path: "/", Policy: config.Public, Upstream: "app"},
		}
	}, func(o *Options) {
		o.Metrics = m
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	release := make(chan struct{})
	defer close(release)
	tg.up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	})

	res, body := tg.do(t, tg.newRequest(t, "GET", "/dead"))
	if res.StatusCode != 502 {
		t.Errorf("refused: status %d, want 502", res.StatusCode)
	}
	checkError(t, res, body, apierror.UpstreamUnavailable)

	res, body = tg.do(t, tg.newRequest(t, "GET", "/slow"))
	if res.StatusCode != 504 {
		t.Errorf("slow: status %d, want 504", res.StatusCode)
	}
	checkError(t, res, body, apierror.UpstreamTimeout)

	if got := metricValue(t, m.upstreamErrors.WithLabelValues("dead", "refused")); got != 1 {
		t.Errorf("upstream_errors{dead,refused} = %v, want 1", got)
	}
	if got := metricValue(t, m.upstreamErrors.WithLabelValues("slow", "timeout")); got != 1 {
		t.Errorf("upstream_errors{slow,timeout} = %v, want 1", got)
	}
	// The Go error text is in the log, not in any body.
	if !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("log lacks the upstream error: %s", logs.String())
	}
}

func TestEcho(t *testing.T) {
	cfg := testConfig(config.BuiltinEcho)
	gw, err := New(Options{Config: cfg, Auth: newFakeAuth()})
	if err != nil {
		t.Fatal(err)
	}
	tg := &testGateway{gw: gw}
	srv := newServer(t, gw)
	req, _ := http.NewRequest("GET", srv+"/app//x?q=1", nil)
	req.Header.Set("X_User_Id", "evil")
	req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokAlice})
	res, body := tg.do(t, req)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	var got struct {
		Method     string              `json:"method"`
		Path       string              `json:"path"`
		RawQuery   string              `json:"raw_query"`
		Host       string              `json:"host"`
		Headers    map[string][]string `json:"headers"`
		RemoteAddr string              `json:"remote_addr"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("echo body %q: %v", body, err)
	}
	if got.Method != "GET" || got.Path != "/app/x" || got.RawQuery != "q=1" || got.Host != strings.TrimPrefix(srv, "http://") {
		t.Errorf("echo = %+v", got)
	}
	if v := got.Headers["X-User-Id"]; len(v) != 1 || v[0] != aliceID {
		t.Errorf("echo X-User-Id = %q", v)
	}
	if _, ok := got.Headers["X_User_Id"]; ok {
		t.Errorf("spoofed X_User_Id reached the echo backend")
	}
	if _, ok := got.Headers["Cookie"]; ok {
		t.Errorf("session cookie reached the echo backend")
	}
}

func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

func TestMetricsAndLog(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if NewMetrics(reg) == nil { // a second registration reuses the collectors
		t.Fatal("NewMetrics on the same registry failed")
	}
	var logs bytes.Buffer
	tg := newTestGateway(t, nil, func(o *Options) {
		o.Metrics = m
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	req := tg.newRequest(t, "GET", "/app/secret?token=SECRETQUERY")
	req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: tokAlice})
	tg.do(t, req)
	tg.do(t, tg.newRequest(t, "FOO", "/admin"))
	tg.do(t, tg.newRequest(t, "GET", "/public/%2e%2e/admin"))

	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"200", "GET", "2", "authenticated"}, 1},
		{[]string{"403", "OTHER", "admin", "deny"}, 1},
		{[]string{"400", "GET", "none", "none"}, 1},
	} {
		if got := metricValue(t, m.requests.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	for result, want := range map[string]float64{"allowed": 1, "forbidden": 1, "bad_path": 1} {
		if got := metricValue(t, m.decisions[indexOf(decisionNames[:], result)]); got != want {
			t.Errorf("auth_decisions{%s} = %v, want %v", result, got, want)
		}
	}
	if got := metricValue(t, m.inFlight); got != 0 {
		t.Errorf("in_flight = %v after all requests", got)
	}
	// No user id or raw path in any label.
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 5 {
		t.Errorf("gathered %d families, %v; want 5", len(mfs), err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if strings.Contains(lp.GetValue(), aliceID) || strings.Contains(lp.GetValue(), "/") {
					t.Errorf("%s label %s=%q", mf.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(lines), logs.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"msg": "request", "method": "GET", "path": "/app/secret", "status": 200.0, "route": "2", "user_id": aliceID, "client_ip": "127.0.0.1"} {
		if first[k] != want {
			t.Errorf("log %s = %v, want %v", k, first[k], want)
		}
	}
	for _, k := range []string{"duration_ms", "bytes"} {
		if _, ok := first[k]; !ok {
			t.Errorf("log lacks %s", k)
		}
	}
	if strings.Contains(logs.String(), "SECRETQUERY") || strings.Contains(logs.String(), tokAlice) {
		t.Errorf("log leaks the query or the token: %s", logs.String())
	}
	if strings.Contains(lines[1], "user_id") {
		t.Errorf("user_id logged for an anonymous request: %s", lines[1])
	}
}

func indexOf(xs []string, s string) int {
	for i, x := range xs {
		if x == s {
			return i
		}
	}
	return -1
}

// metricValue reads a counter's or gauge's value.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge")
	return 0
}

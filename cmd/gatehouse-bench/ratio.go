package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// caseResult is one measured case.
type caseResult struct {
	Name     string            `json:"name"`
	Round    int               `json:"round,omitempty"` // hot-path rows: 1.., in the order run
	Target   string            `json:"target"`          // direct | bare | gateway
	Loop     string            `json:"loop"`            // closed | open
	Rate     float64           `json:"target_rate,omitempty"`
	Expect   int               `json:"expected_status"`
	Requests uint64            `json:"requests"`
	Errors   uint64            `json:"errors"`
	Statuses map[string]uint64 `json:"statuses"`
	ErrKinds map[string]uint64 `json:"transport_errors,omitempty"`
	Seconds  float64           `json:"seconds"`
	RPS      float64           `json:"rps"`
	P50us    float64           `json:"p50_us"`
	P90us    float64           `json:"p90_us"`
	P99us    float64           `json:"p99_us"`
	MaxUs    float64           `json:"max_us"`
	MeanUs   float64           `json:"mean_us"`
	// ServerCPUus is the CPU (user+system) of the process under test per
	// request: the upstream for direct, the bare proxy, or the gateway.
	ServerCPUus float64 `json:"server_cpu_us_per_req"`
	// RedisCPUus and RedisCmds are per request, gateway cases only.
	RedisCPUus float64           `json:"redis_cpu_us_per_req,omitempty"`
	RedisCmds  float64           `json:"redis_cmds_per_req,omitempty"`
	RedisCalls map[string]uint64 `json:"redis_calls,omitempty"`
	Gateway    *memStatus        `json:"gateway_mem,omitempty"`
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func fromStats(name, target, loop string, s *loadStats) *caseResult {
	c := &caseResult{
		Name: name, Target: target, Loop: loop, Requests: s.requests, Errors: s.errors,
		Statuses: map[string]uint64{}, Seconds: s.elapsed.Seconds(),
		P50us: micros(s.hist.percentile(0.50)), P90us: micros(s.hist.percentile(0.90)),
		P99us: micros(s.hist.percentile(0.99)), MaxUs: micros(time.Duration(s.hist.max)),
		MeanUs: micros(s.hist.mean()),
	}
	if s.elapsed > 0 {
		c.RPS = float64(s.requests) / s.elapsed.Seconds()
	}
	for code, n := range s.statuses {
		c.Statuses[strconv.Itoa(code)] = n
	}
	if len(s.errKinds) > 0 {
		c.ErrKinds = s.errKinds
	}
	return c
}

// measure runs one case against target and reads the server-side costs:
// CPU of the process under test (and of redis for gateway cases), Redis
// commands, and the gateway's memory. rate > 0 makes it an open loop.
func (b *bench) measure(ctx context.Context, sp *loadSpec, target string, rate float64) (*caseResult, error) {
	return b.measureOn(ctx, sp, target, b.gw, rate)
}

// measureOn is measure with the gateway of a "gateway" target given: the
// ratio mode's assertion row runs on a second one.
func (b *bench) measureOn(ctx context.Context, sp *loadSpec, target string, gw *gateway, rate float64) (*caseResult, error) {
	var pids []int
	switch target {
	case "direct":
		pids = []int{b.up.pid()}
	case "bare":
		pids = []int{b.bare.pid()}
	case "gateway":
		pids = []int{gw.pid(), b.redis.proc.pid()}
	}
	var meter *cpuMeter
	before := func() {
		if target == "gateway" {
			gw.truncateLog()
			if err := b.redis.resetStats(ctx); err != nil {
				fmt.Fprintln(b.log, "warning:", err)
			}
		}
		meter = startCPU(pids...)
	}
	conns := sp.conc
	if rate > 0 {
		conns = b.opt.openWorkers
	}
	client := newClient(conns, sp.timeout)
	defer client.CloseIdleConnections()
	var s *loadStats
	var err error
	loop := "closed"
	if rate > 0 {
		loop = "open"
		s, err = runOpen(ctx, client, sp, rate, b.opt.openWorkers, before)
	} else {
		s, err = runClosed(ctx, client, sp, before)
	}
	if err != nil {
		return nil, err
	}
	cpu := meter.stop()
	c := fromStats(sp.name, target, loop, s)
	c.Rate = rate
	c.Expect = sp.expect
	c.ServerCPUus = perRequestMicros(cpu[0], s.requests)
	if target == "gateway" {
		c.RedisCPUus = perRequestMicros(cpu[1], s.requests)
		if calls, err := b.redis.commandCalls(ctx); err == nil {
			c.RedisCalls = calls
			c.RedisCmds = ratio(float64(sumCalls(calls)), float64(s.requests))
		} else {
			fmt.Fprintln(b.log, "warning:", err)
		}
		m := gw.mem()
		c.Gateway = &m
	}
	fmt.Fprintf(b.log, "  %-22s %9.0f req/s  p50 %7.0fµs  p99 %7.0fµs  errors %d\n", c.Name, c.RPS, c.P50us, c.P99us, c.Errors)
	return c, nil
}

// spec builds a loadSpec with the run's common settings.
func (b *bench) spec(name, url string, header http.Header, expect int) *loadSpec {
	return &loadSpec{
		name: name, url: url, header: header, expect: expect,
		conc: b.opt.conc, warmup: b.opt.warmup, dur: b.opt.dur, timeout: b.opt.timeout,
	}
}

// ratios compares the gateway's authenticated case with the bare proxy and
// the direct upstream.
type ratios struct {
	AuthOverBare        float64 `json:"gateway_auth_over_bare_rps"`
	AuthOverDirect      float64 `json:"gateway_auth_over_direct_rps"`
	BareOverDirect      float64 `json:"bare_over_direct_rps"`
	AddedP50us          float64 `json:"added_p50_us_over_bare"`
	AddedP99us          float64 `json:"added_p99_us_over_bare"`
	AddedCPUus          float64 `json:"added_cpu_us_per_req_over_bare"`
	OpenRate            float64 `json:"open_loop_rate,omitempty"`
	OpenAddedP50us      float64 `json:"open_loop_added_p50_us,omitempty"`
	OpenAddedP99us      float64 `json:"open_loop_added_p99_us,omitempty"`
	OpenP99AuthOverBare float64 `json:"open_loop_p99_auth_over_bare,omitempty"`
}

func computeRatios(direct, bare, auth *caseResult) *ratios {
	return &ratios{
		AuthOverBare:   ratio(auth.RPS, bare.RPS),
		AuthOverDirect: ratio(auth.RPS, direct.RPS),
		BareOverDirect: ratio(bare.RPS, direct.RPS),
		AddedP50us:     auth.P50us - bare.P50us,
		AddedP99us:     auth.P99us - bare.P99us,
		AddedCPUus:     auth.ServerCPUus - bare.ServerCPUus,
	}
}

func (b *bench) ratioMode(ctx context.Context, rep *report) error {
	rep.Notes = append(rep.Notes,
		"bcrypt_cost 4: login cost is not what this mode measures (flood mode does, with -login-cost)",
		"server_cpu_us_per_req is the CPU of the process under test (upstream, bare proxy or gateway) from /proc/PID/stat, 10 ms ticks",
		fmt.Sprintf("the four hot-path rows (gateway-auth, -groups, -token, -assertion) run in %d interleaved round(s); the main table shows their medians", b.opt.rounds))
	fmt.Fprintln(b.log, "closed loop:")
	direct, err := b.measure(ctx, b.spec("direct", b.upstreamURL()+"/app", nil, 200), "direct", 0)
	if err != nil {
		return err
	}
	bare, err := b.measure(ctx, b.spec("bare-proxy", b.bareURL+"/app", nil, 200), "bare", 0)
	if err != nil {
		return err
	}
	rep.Cases = append(rep.Cases, direct, bare)
	if b.gw == nil {
		rep.Notes = append(rep.Notes, "-no-gateway: gateway cases skipped")
		return nil
	}
	hp, err := b.hotPathMode(ctx)
	if err != nil {
		return err
	}
	rep.HotPath = hp
	rep.Failures = append(rep.Failures, budgetFailures(hp)...)
	var auth *caseResult
	for _, r := range hp.Rows {
		rep.Cases = append(rep.Cases, r.Median)
		if r.Name == rowAuth {
			auth = r.Median
		}
	}
	for _, tc := range []struct {
		name   string
		path   string
		expect int
	}{
		{"gateway-unauth-401", "/app", 401},
		{"gateway-public", "/public/x", 200},
	} {
		c, err := b.measure(ctx, b.spec(tc.name, b.gw.base+tc.path, nil, tc.expect), "gateway", 0)
		if err != nil {
			return err
		}
		rep.Cases = append(rep.Cases, c)
	}
	rep.Ratios = computeRatios(direct, bare, auth)

	rate := b.opt.rate
	if rate <= 0 {
		rate = bare.RPS / 2
	}
	fmt.Fprintf(b.log, "open loop at %.0f req/s:\n", rate)
	openBare, err := b.measure(ctx, b.spec("open-bare-proxy", b.bareURL+"/app", nil, 200), "bare", rate)
	if err != nil {
		return err
	}
	openAuth, err := b.measure(ctx, b.spec("open-gateway-auth", b.gw.base+"/app", b.authHeader(), 200), "gateway", rate)
	if err != nil {
		return err
	}
	rep.OpenLoop = append(rep.OpenLoop, openBare, openAuth)
	rep.Ratios.OpenRate = rate
	rep.Ratios.OpenAddedP50us = openAuth.P50us - openBare.P50us
	rep.Ratios.OpenAddedP99us = openAuth.P99us - openBare.P99us
	rep.Ratios.OpenP99AuthOverBare = ratio(openAuth.P99us, openBare.P99us)
	rep.Failures = append(rep.Failures, wrongAnswers(append(rep.Cases, rep.OpenLoop...))...)
	return nil
}

// wrongAnswers lists the cases that got an answer of the wrong kind. An
// overloaded machine may make a proxy answer 502/503/504 or a request time
// out: those count as errors in the table but are figures, not a broken
// gateway. A 401 for a valid session, a 200 where 401 was due, or a case
// with no expected answer at all is.
func wrongAnswers(cases []*caseResult) []string {
	var out []string
	for _, c := range cases {
		var wrong []string
		expected := uint64(0)
		for code, n := range c.Statuses {
			switch {
			case isExpected(c, code):
				expected += n
			case code == "502" || code == "503" || code == "504":
			default:
				wrong = append(wrong, fmt.Sprintf("%s×%d", code, n))
			}
		}
		sort.Strings(wrong)
		if len(wrong) > 0 {
			out = append(out, fmt.Sprintf("%s: wrong answers %s", c.Name, strings.Join(wrong, " ")))
		}
		if expected == 0 {
			out = append(out, fmt.Sprintf("%s: no expected answer in %d requests %v %v", c.Name, c.Requests, c.Statuses, c.ErrKinds))
		}
	}
	return out
}

// isExpected reports whether status code is the one case c expects.
func isExpected(c *caseResult, code string) bool { return code == strconv.Itoa(c.Expect) }

// printReport writes the human-readable table.
func printReport(w io.Writer, rep *report) {
	fmt.Fprintf(w, "\ngatehouse-bench -mode %s  (%s, %d CPUs, -c %d, %s per case)\n", rep.Mode, rep.GoVersion, rep.NumCPU, rep.Concurrency, rep.Duration)
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	all := append(append([]*caseResult{}, rep.Cases...), rep.OpenLoop...)
	if len(all) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "case\tloop\treq/s\tp50 µs\tp90 µs\tp99 µs\tmax µs\terrors\tcpu µs/req\tredis µs/req\tredis cmd/req\tgw peak RSS MB\t")
		for _, c := range all {
			rss := "-"
			if c.Gateway != nil {
				rss = fmt.Sprintf("%.1f", float64(c.Gateway.HWMKB)/1024)
			}
			rc, ru := "-", "-"
			if c.Target == "gateway" {
				rc = fmt.Sprintf("%.2f", c.RedisCmds)
				ru = fmt.Sprintf("%.1f", c.RedisCPUus)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%.1f\t%s\t%s\t%s\t\n",
				c.Name, c.Loop, c.RPS, c.P50us, c.P90us, c.P99us, c.MaxUs, c.Errors, c.ServerCPUus, ru, rc, rss)
		}
		_ = tw.Flush()
	}
	if r := rep.Ratios; r != nil {
		fmt.Fprintf(w, "\ngateway-auth / bare proxy throughput: %.2f\n", r.AuthOverBare)
		fmt.Fprintf(w, "gateway-auth / direct throughput:     %.2f  (bare / direct %.2f)\n", r.AuthOverDirect, r.BareOverDirect)
		fmt.Fprintf(w, "added latency over bare proxy (closed loop): p50 %+.0f µs, p99 %+.0f µs; added CPU %+.1f µs/req\n", r.AddedP50us, r.AddedP99us, r.AddedCPUus)
		if r.OpenRate > 0 {
			fmt.Fprintf(w, "open loop at %.0f req/s: added p50 %+.0f µs, p99 %+.0f µs (p99 gateway/bare %.2f)\n", r.OpenRate, r.OpenAddedP50us, r.OpenAddedP99us, r.OpenP99AuthOverBare)
		}
	}
	if rep.HotPath != nil {
		printHotPath(w, rep.HotPath)
	}
	printModeSections(w, rep)
	for _, f := range rep.Failures {
		fmt.Fprintln(w, "FAIL:", f)
	}
}

// formatCalls lists commands per request, most frequent first.
func formatCalls(calls map[string]uint64, requests uint64) string {
	names := make([]string, 0, len(calls))
	for k := range calls {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return calls[names[i]] > calls[names[j]] })
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.3f", n, ratio(float64(calls[n]), float64(requests))))
	}
	return strings.Join(parts, ", ")
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary run the harness's helper roles (upstream,
// bare proxy), which the harness starts by re-executing itself.
func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func TestHistogramPercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h histogram
	sample := make([]time.Duration, 0, 100_000)
	for range 100_000 {
		// Log-normal around 300 µs with a long tail, like real latencies.
		d := time.Duration(math.Exp(rng.NormFloat64()*1.2) * 300e3)
		sample = append(sample, d)
		h.record(d)
	}
	for _, q := range []float64{0.001, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := exactPercentile(sample, q)
		got := h.percentile(q)
		// The histogram rounds up to its bucket's edge: never below the
		// true value, at most 1/64 above it.
		if got < exact || float64(got) > float64(exact)*(1+1.0/histSub) {
			t.Errorf("p%v = %v, exact %v (allowed up to +1/64)", q*100, got, exact)
		}
	}
	if got, want := time.Duration(h.max), exactPercentile(sample, 1); got != want {
		t.Errorf("max = %v, want %v", got, want)
	}
	if h.n != uint64(len(sample)) {
		t.Errorf("n = %d, want %d", h.n, len(sample))
	}
}

func TestHistogramSmallValuesExact(t *testing.T) {
	var h histogram
	for v := range 100 {
		h.record(time.Duration(v + 1)) // 1..100 ns: exact buckets
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50}, {0.9, 90}, {0.99, 99}, {1, 100}, {0.001, 1}} {
		if got := h.percentile(tc.q); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := h.mean(); got != 50 { // 50.5 truncated
		t.Errorf("mean = %v, want 50ns", got)
	}
}

func TestHistogramBucketsContiguous(t *testing.T) {
	for i := range histBuckets - 1 {
		hi := histHigh(i)
		if hi < 0 || hi == math.MaxInt64 {
			break
		}
		if got := histIndex(hi); got != i {
			t.Fatalf("histIndex(histHigh(%d)=%d) = %d", i, hi, got)
		}
		if got := histIndex(hi + 1); got != i+1 {
			t.Fatalf("histIndex(%d) = %d, want %d", hi+1, got, i+1)
		}
	}
	if i := histIndex(math.MaxInt64); i >= histBuckets {
		t.Fatalf("histIndex(MaxInt64) = %d, beyond %d buckets", i, histBuckets)
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all histogram
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		all.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	var m histogram
	m.merge(&a)
	m.merge(&b)
	m.merge(&histogram{}) // an idle worker changes nothing
	if m.counts != all.counts || m.n != all.n || m.min != all.min || m.max != all.max {
		t.Fatalf("merged histogram differs from the one recorded directly")
	}
	if got, want := m.percentile(0.99), all.percentile(0.99); got != want {
		t.Errorf("p99 = %v, want %v", got, want)
	}
}

func TestEmptyHistogram(t *testing.T) {
	var h histogram
	if h.percentile(0.99) != 0 || h.mean() != 0 {
		t.Fatal("an empty histogram must report 0")
	}
	if exactPercentile(nil, 0.5) != 0 {
		t.Fatal("exactPercentile(nil) must be 0")
	}
}

func TestNearestRank(t *testing.T) {
	for _, tc := range []struct {
		q    float64
		n    uint64
		want uint64
	}{
		{0.5, 10, 5}, {0.9, 10, 9}, {0.99, 10, 10}, {0.99, 1000, 990},
		{0, 10, 1}, {1, 10, 10}, {0.5, 1, 1}, {0.999, 100, 100},
	} {
		if got := nearestRank(tc.q, tc.n); got != tc.want {
			t.Errorf("nearestRank(%v, %d) = %d, want %d", tc.q, tc.n, got, tc.want)
		}
	}
}

func TestRatios(t *testing.T) {
	direct := &caseResult{RPS: 40000, P50us: 300, P99us: 1000, ServerCPUus: 10}
	bare := &caseResult{RPS: 20000, P50us: 800, P99us: 3000, ServerCPUus: 40}
	auth := &caseResult{RPS: 15000, P50us: 1000, P99us: 4500, ServerCPUus: 70}
	r := computeRatios(direct, bare, auth)
	want := ratios{AuthOverBare: 0.75, AuthOverDirect: 0.375, BareOverDirect: 0.5, AddedP50us: 200, AddedP99us: 1500, AddedCPUus: 30}
	if *r != want {
		t.Errorf("computeRatios = %+v, want %+v", *r, want)
	}
	if got := ratio(1, 0); got != 0 {
		t.Errorf("ratio(1, 0) = %v, want 0 (a case that did not run)", got)
	}
	if got := perRequestMicros(2*time.Second, 4000); got != 500 {
		t.Errorf("perRequestMicros = %v, want 500", got)
	}
	if got := perRequestMicros(time.Second, 0); got != 0 {
		t.Errorf("perRequestMicros(_, 0) = %v, want 0", got)
	}
}

func TestFromStats(t *testing.T) {
	ws := []*workerStats{{}, {}}
	for i := range 90 {
		ws[i%2].hist.record(time.Millisecond)
		ws[i%2].statuses[200]++
	}
	for range 10 {
		ws[0].hist.record(10 * time.Millisecond)
		ws[0].statuses[503]++
	}
	ws[1].errKinds = map[string]uint64{"timeout": 2}
	ws[1].hist.record(time.Second)
	ws[1].hist.record(time.Second)
	s := mergeWorkers(ws, 200, 2*time.Second)
	c := fromStats("x", "gateway", "closed", s)
	if c.Requests != 102 || c.Errors != 12 {
		t.Errorf("requests, errors = %d, %d; want 102, 12", c.Requests, c.Errors)
	}
	if c.RPS != 51 {
		t.Errorf("rps = %v, want 51", c.RPS)
	}
	if c.Statuses["503"] != 10 || c.ErrKinds["timeout"] != 2 {
		t.Errorf("statuses %v, transport errors %v", c.Statuses, c.ErrKinds)
	}
	if c.P50us < 1000 || c.P50us > 1000*(1+1.0/histSub) {
		t.Errorf("p50 = %vµs, want about 1000", c.P50us)
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 130 0 0 20 0 12 0 100 0 0"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3800 * time.Millisecond; got != want { // (250+130) ticks of 10 ms
		t.Errorf("cpu = %v, want %v", got, want)
	}
	if _, err := parseStatCPU("4242 (x) S 1 2"); err == nil {
		t.Error("short stat: want an error")
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Errorf("own /proc stat: %v", err)
	}
}

func TestParseStatusMem(t *testing.T) {
	status := "Name:\tgatehouse\nVmPeak:\t  900 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n"
	got, err := parseStatusMem(status)
	if err != nil {
		t.Fatal(err)
	}
	if want := (memStatus{RSSKB: 40960, HWMKB: 51234}); got != want {
		t.Errorf("mem = %+v, want %+v", got, want)
	}
	if _, err := parseStatusMem("Name:\tx\n"); err == nil {
		t.Error("missing fields: want an error")
	}
	if m, err := procMem(os.Getpid()); err != nil || m.RSSKB <= 0 {
		t.Errorf("own /proc status: %+v, %v", m, err)
	}
}

func TestParseCommandStats(t *testing.T) {
	info := "# Commandstats\r\n" +
		"cmdstat_getex:calls=1000,usec=2000,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_config|resetstat:calls=1,usec=10,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_info:calls=3,usec=50,usec_per_call=16.67,rejected_calls=0,failed_calls=0\r\n"
	got := parseCommandStats(info)
	want := map[string]uint64{"getex": 1000, "config|resetstat": 1, "info": 3}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	if n := sumCalls(map[string]uint64{"getex": 1000, "ping": 2}); n != 1002 {
		t.Errorf("sumCalls = %d, want 1002", n)
	}
}

func TestParseGoroutines(t *testing.T) {
	metrics := "# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\ngo_goroutines 57\ngo_threads 9\n"
	n, err := parseGoroutines(strings.NewReader(metrics))
	if err != nil || n != 57 {
		t.Errorf("parseGoroutines = %d, %v; want 57", n, err)
	}
	if _, err := parseGoroutines(strings.NewReader("go_threads 9\n")); err == nil {
		t.Error("no go_goroutines: want an error")
	}
}

func TestSlope(t *testing.T) {
	x := []float64{1, 2, 3, 4}
	if got := slope(x, []float64{10, 12, 14, 16}); got != 2 {
		t.Errorf("slope = %v, want 2", got)
	}
	if got := slope(x, []float64{5, 5, 5, 5}); got != 0 {
		t.Errorf("flat slope = %v, want 0", got)
	}
	if got := slope([]float64{1}, []float64{3}); got != 0 {
		t.Errorf("one point: slope = %v, want 0", got)
	}
}

func TestCheckFaultPhase(t *testing.T) {
	oc := func(kv ...any) *outcomeCounts {
		o := &outcomeCounts{Outcomes: map[string]uint64{}}
		for i := 0; i < len(kv); i += 2 {
			o.Outcomes[kv[i].(string)] = uint64(kv[i+1].(int))
			o.Requests += uint64(kv[i+1].(int))
		}
		return o
	}
	for _, tc := range []struct {
		name    string
		quiet   bool
		classes map[string]*outcomeCounts
		fails   int
		warns   int
	}{
		{"outage answered per contract", false, map[string]*outcomeCounts{
			"auth": oc("200", 10, "503", 5), "unauth": oc("401", 7), "public": oc("200", 9, "502", 1)}, 0, 0},
		{"unauthenticated client got 200", false, map[string]*outcomeCounts{
			"auth": oc("200", 1), "unauth": oc("401", 7, "200", 1), "public": oc("200", 1)}, 1, 0},
		{"store outage taken for no session", false, map[string]*outcomeCounts{
			"auth": oc("401", 2), "unauth": oc("401", 1), "public": oc("200", 1)}, 1, 0},
		{"hang past the client timeout", false, map[string]*outcomeCounts{
			"auth": oc("timeout", 1), "unauth": oc("401", 1), "public": oc("200", 1)}, 1, 0},
		{"store deadline passed in a quiet phase", true, map[string]*outcomeCounts{
			"auth": oc("200", 1, "503", 1), "unauth": oc("401", 1), "public": oc("200", 1)}, 0, 1},
		{"class with no answers", true, map[string]*outcomeCounts{
			"auth": oc("200", 1), "unauth": oc(), "public": oc("200", 1)}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fails, warns := checkFaultPhase(faultPhase{Name: "p", Classes: tc.classes}, tc.quiet)
			if len(fails) != tc.fails || len(warns) != tc.warns {
				t.Errorf("failures = %q, warnings = %q; want %d, %d", fails, warns, tc.fails, tc.warns)
			}
		})
	}
	cleared := &outcomeCounts{Outcomes: map[string]uint64{"503": 1}, Requests: 1, CookieCleared: 1}
	got, _ := checkFaultPhase(faultPhase{Name: "p", Classes: map[string]*outcomeCounts{"auth": cleared}}, false)
	if len(got) != 1 {
		t.Errorf("cleared cookie: failures = %q, want 1", got)
	}
}

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseFlags([]string{"-mode", "soak", "-quick"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.dur != 10*time.Second || o.sessions != 20_000 {
		t.Errorf("quick soak: d = %v, sessions = %d", o.dur, o.sessions)
	}
	if o, _ := parseFlags([]string{"-mode", "soak"}, &stderr); o.dur != time.Minute {
		t.Errorf("soak default d = %v, want 1m", o.dur)
	}
	for _, args := range [][]string{{"-mode", "nope"}, {"-c", "0"}, {"extra"}, {"-mode", "faults", "-no-gateway"}} {
		if _, err := parseFlags(args, &stderr); err == nil {
			t.Errorf("parseFlags(%q): want an error", args)
		}
	}
}

// TestQuickRatio runs the whole harness once, briefly: it catches a harness
// that no longer runs (figures are not asserted: they depend on the
// machine). Without a gateway build it measures the direct and bare cases.
func TestQuickRatio(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes and load for several seconds")
	}
	outPath := filepath.Join(t.TempDir(), "bench.json")
	args := []string{"-quick", "-c", "4", "-d", "300ms", "-warmup", "100ms", "-out", outPath}
	withGateway := true
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Log("no redis-server: measuring the direct upstream and bare proxy only")
		withGateway = false
	} else if out, err := exec.Command("go", "build", "-o", filepath.Join(t.TempDir(), "gh"), "../gatehouse").CombinedOutput(); err != nil {
		t.Logf("the gateway does not build yet, measuring the direct upstream and bare proxy only:\n%s", out)
		withGateway = false
	}
	if !withGateway {
		args = append(args, "-no-gateway")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("results JSON: %v", err)
	}
	wantCases := 2
	if withGateway {
		wantCases = 8 // direct, bare, the four hot-path rows, 401, public
		if rep.Ratios == nil || len(rep.OpenLoop) != 2 {
			t.Errorf("ratios %v, %d open-loop cases; want both", rep.Ratios, len(rep.OpenLoop))
		}
		checkQuickHotPath(t, rep.HotPath)
		if !strings.Contains(stdout.String(), "| `gateway-assertion` |") {
			t.Errorf("no markdown hot-path table:\n%s", stdout.String())
		}
	}
	if len(rep.Cases) != wantCases {
		t.Fatalf("%d cases, want %d", len(rep.Cases), wantCases)
	}
	for _, c := range rep.Cases {
		if c.Requests == 0 {
			t.Errorf("%s: no requests measured", c.Name)
		}
	}
	if !strings.Contains(stdout.String(), "bare-proxy") {
		t.Errorf("table lacks the bare-proxy row:\n%s", stdout.String())
	}
}

// checkQuickHotPath checks the hot-path rows of a -quick run: one round
// each, measured, with ratios. Their one Redis command per request is an
// invariant the run itself fails on.
func checkQuickHotPath(t *testing.T, hp *hotPathResult) {
	t.Helper()
	if hp == nil {
		t.Fatal("no hot-path rows")
	}
	var names []string
	for _, r := range hp.Rows {
		names = append(names, r.Name)
		if len(r.Rounds) != 1 || r.Median == nil || r.Median.Requests == 0 {
			t.Errorf("%s: %d rounds, median %+v; want one measured round", r.Name, len(r.Rounds), r.Median)
			continue
		}
		if r.Name != rowAuth && r.RPSOverAuthMedian == 0 {
			t.Errorf("%s: no ratio to gateway-auth", r.Name)
		}
	}
	if want := []string{rowAuth, rowGroups, rowToken, rowAssertion}; strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("hot-path rows %q, want %q", names, want)
	}
}

// TestRedisHelpers checks the harness's own redis-server handling against
// a real one: start, session loading in auth's layout, command counting,
// SIGKILL and restart with the append-only file.
func TestRedisHelpers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("no redis-server on PATH")
	}
	ctx := context.Background()
	r, err := startRedis(ctx, bin, t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	if err := r.resetStats(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 10_000
	lay := sessionLayout{prefix: "bench:", idle: time.Hour, life: 2 * time.Hour, perUser: 2}
	if _, err := r.loadSessions(ctx, lay, n); err != nil {
		t.Fatal(err)
	}
	calls, err := r.commandCalls(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if calls["set"] != n || calls["zadd"] != n || calls["pexpire"] != n/2 {
		t.Errorf("calls = %v; want %d set, %d zadd, %d pexpire", calls, n, n, n/2)
	}
	if _, ok := calls["info"]; ok {
		t.Error("the harness's own INFO must not be counted")
	}
	keys, err := r.cli.DBSize(ctx).Result()
	if err != nil || keys != n+n/2 {
		t.Errorf("dbsize = %d, %v; want %d", keys, err, n+n/2)
	}
	mem, err := r.infoField(ctx, "memory", "used_memory")
	if err != nil || mem <= 0 {
		t.Errorf("used_memory = %d, %v", mem, err)
	}
	// appendfsync everysec: give the file its second before the kill.
	time.Sleep(1500 * time.Millisecond)
	if err := r.restart(ctx); err != nil {
		t.Fatal(err)
	}
	if keys, err := r.cli.DBSize(ctx).Result(); err != nil || keys != n+n/2 {
		t.Errorf("after SIGKILL and restart: dbsize = %d, %v; want %d (AOF replayed)", keys, err, n+n/2)
	}
}

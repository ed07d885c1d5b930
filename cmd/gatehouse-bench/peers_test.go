package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const wrkSample = `Running 8s test @ http://127.0.0.1:41234/app
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.31ms    3.10ms  52.00ms   91.20%
    Req/Sec    11.90k     1.20k   14.10k    71.00%
  Latency Distribution
     50%  812.00us
     75%    1.90ms
     90%    4.20ms
     99%   15.30ms 
  190123 requests in 8.00s, 30.12MB read
  Non-2xx or 3xx responses: 17
  Socket errors: connect 0, read 2, write 0, timeout 3
Requests/sec:  23765.12
Transfer/sec:      3.76MB
`

func TestParseWrk(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want loadResult
		err  bool
	}{
		{"full summary", wrkSample, loadResult{Requests: 190123, Seconds: 8, RPS: 23765.12, P50us: 812, P99us: 15300, Non2xx3xx: 17, SocketErrors: 5}, false},
		{"clean run, seconds-long tail", strings.NewReplacer("  Non-2xx or 3xx responses: 17\n", "", "  Socket errors: connect 0, read 2, write 0, timeout 3\n", "",
			"15.30ms", "1.58s").Replace(wrkSample), loadResult{Requests: 190123, Seconds: 8, RPS: 23765.12, P50us: 812, P99us: 1.58e6}, false},
		{"one minute run", strings.Replace(wrkSample, "in 8.00s,", "in 1.00m,", 1), loadResult{Requests: 190123, Seconds: 60, RPS: 23765.12, P50us: 812, P99us: 15300, Non2xx3xx: 17, SocketErrors: 5}, false},
		{"without --latency", strings.Replace(wrkSample, "     50%  812.00us\n", "", 1), loadResult{}, true},
		{"garbled rate", strings.Replace(wrkSample, "23765.12", "lots", 1), loadResult{}, true},
		{"empty", "", loadResult{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrk(tc.out)
			if tc.err {
				if !errors.Is(err, errWrkOutput) {
					t.Fatalf("err = %v, want errWrkOutput", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != tc.want {
				t.Errorf("parseWrk = %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestParseWrkDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"812.00us", 812 * time.Microsecond}, {"10.20ms", 10200 * time.Microsecond}, {"8.00s", 8 * time.Second}, {"1.50m", 90 * time.Second}, {"1.00h", time.Hour}} {
		if got, err := parseWrkDuration(tc.in); err != nil || got != tc.want {
			t.Errorf("parseWrkDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "12", "ms", "-1.0s", "1.0d"} {
		if _, err := parseWrkDuration(bad); err == nil {
			t.Errorf("parseWrkDuration(%q): want an error", bad)
		}
	}
}

func TestWrkArgs(t *testing.T) {
	w := &wrkGen{bin: "wrk", threads: 2, conns: 50, timeout: 5 * time.Second}
	got := w.wrkArgs("http://127.0.0.1:1/app", "gatehouse_session=gh1.x", 8*time.Second)
	want := []string{"-t", "2", "-c", "50", "-d", "8s", "--timeout", "5s", "--latency", "-H", "Cookie: gatehouse_session=gh1.x", "http://127.0.0.1:1/app"}
	if !slices.Equal(got, want) {
		t.Errorf("wrkArgs = %q, want %q", got, want)
	}
	// No cookie, no header; a sub-second duration still runs a second.
	got = w.wrkArgs("http://h/", "", 300*time.Millisecond)
	if slices.Contains(got, "-H") || !slices.Contains(got, "1s") || slices.Contains(got, "-s") {
		t.Errorf("wrkArgs without cookie = %q", got)
	}
}

func TestOauth2ProxyConfig(t *testing.T) {
	cfg := oauth2ProxyConfig(oauth2ProxySettings{
		port: 4180, upstreamURL: "http://127.0.0.1:9000", redisURL: "redis://127.0.0.1:6400/0",
		htpasswdPath: `/tmp/a "b"/htpasswd`, cookieSecret: "0123456789abcdef0123456789abcdef", requestLog: true,
	})
	for _, line := range []string{
		`http_address = "127.0.0.1:4180"`,
		`upstreams = ["http://127.0.0.1:9000/"]`,
		`session_store_type = "redis"`,
		`redis_connection_url = "redis://127.0.0.1:6400/0"`,
		`htpasswd_file = "/tmp/a \"b\"/htpasswd"`,
		`cookie_secret = "0123456789abcdef0123456789abcdef"`,
		`cookie_secure = false`,
		`email_domains = ["*"]`,
		`request_logging = true`,
	} {
		if !slices.Contains(strings.Split(cfg, "\n"), line) {
			t.Errorf("config lacks the line %s:\n%s", line, cfg)
		}
	}
	off := oauth2ProxyConfig(oauth2ProxySettings{port: 1, requestLog: false})
	if !strings.Contains(off, "request_logging = false\n") {
		t.Errorf("request log off: %s", off)
	}
}

func TestHtpasswdLine(t *testing.T) {
	line, err := htpasswdLine("bench", "pw-1")
	if err != nil {
		t.Fatal(err)
	}
	user, hash, ok := strings.Cut(strings.TrimSuffix(line, "\n"), ":")
	if !ok || user != "bench" || !strings.HasPrefix(hash, "$2") {
		t.Fatalf("line = %q, want bench:$2...", line)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("pw-1")); err != nil {
		t.Errorf("hash does not match the password: %v", err)
	}
}

// TestPeerConfigsAccepted has the installed nginx and Caddy check the
// configurations the harness writes (skipped where they are missing).
func TestPeerConfigsAccepted(t *testing.T) {
	dir := t.TempDir()
	if bin, err := findProgram("nginx", ""); err == nil {
		cfg := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(cfg, []byte(nginxConfig(dir, 18080, 18081)), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-t", "-p", dir, "-c", cfg, "-e", filepath.Join(dir, "e.log")).CombinedOutput(); err != nil {
			t.Errorf("nginx -t: %v\n%s", err, out)
		}
	} else {
		t.Log(err)
	}
	if bin, err := findProgram("caddy", ""); err == nil {
		cfg := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(cfg, []byte(caddyConfig(18080, 18081)), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "adapt", "--config", cfg, "--adapter", "caddyfile").CombinedOutput(); err != nil {
			t.Errorf("caddy adapt: %v\n%s", err, out)
		}
	} else {
		t.Log(err)
	}
}

func TestFindProgramMissing(t *testing.T) {
	_, err := findProgram("wrk-that-is-not-there", "")
	if !errors.Is(err, errMissing) {
		t.Errorf("err = %v, want errMissing", err)
	}
	if got := installHint("nginx"); got != "apt-get install -y nginx-light" {
		t.Errorf("installHint(nginx) = %q", got)
	}
	if p, err := findProgram("nginx", "/opt/nginx"); err != nil || p != "/opt/nginx" {
		t.Errorf("a flag value wins: %q, %v", p, err)
	}
}

func TestNewPeerSample(t *testing.T) {
	lr := &loadResult{Requests: 10_000, RPS: 5000, Non2xx3xx: 3, SocketErrors: 2}
	s := newPeerSample(lr, 200, 1500*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond, 10_000, 25)
	want := peerSample{loadResult: *lr, Errors: 5, ProxyCPUus: 150, UpstreamCPUus: 20, RedisCPUus: 10, RedisCmds: 1, UpstreamConns: 0.0025}
	if *s != want {
		t.Errorf("sample = %+v, want %+v", *s, want)
	}
	// A 401 row expects every answer outside 200-399.
	lr401 := &loadResult{Requests: 1000, Non2xx3xx: 990}
	if s := newPeerSample(lr401, 401, 0, 0, 0, 0, 0); s.Errors != 10 {
		t.Errorf("401 row errors = %d, want 10", s.Errors)
	}
	if s := newPeerSample(&loadResult{}, 200, time.Second, 0, 0, 5, 5); s.ProxyCPUus != 0 || s.RedisCmds != 0 {
		t.Errorf("no requests: %+v, want zero costs", s)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestPeersSummarize(t *testing.T) {
	rounds := func(rps ...float64) []*peerSample {
		var out []*peerSample
		for i, r := range rps {
			s := &peerSample{Round: i + 1, ProxyCPUus: 1e6 / r, Errors: 1}
			s.RPS, s.Requests = r, uint64(r)
			out = append(out, s)
		}
		return out
	}
	p := &peersResult{Rows: []*peerRow{
		{Name: "direct", Rounds: rounds(40000, 20000, 40000)},
		{Name: "bare-proxy", Rounds: rounds(10000, 5000, 12000)},
		{Name: "caddy", Skipped: "caddy: not installed"},
		{Name: "oauth2-proxy", Rounds: rounds(2000, 1000, 3000)},
		{Name: "gatehouse-session", Rounds: rounds(8000, 4000, 6000)},
	}}
	p.summarize()
	gh := p.Rows[4]
	if gh.Median.RPS != 6000 || gh.Median.Requests != 18000 || gh.Median.Errors != 3 {
		t.Errorf("gatehouse median = %+v", gh.Median)
	}
	// Round by round: 8000/40000, 4000/20000, 6000/40000.
	if gh.OverDirect != 0.2 {
		t.Errorf("gatehouse / direct = %v, want 0.2", gh.OverDirect)
	}
	if p.Rows[2].Median != nil {
		t.Error("a skipped row has no median")
	}
	got := map[string]*peerRatio{}
	for _, r := range p.Ratios {
		got[r.Name] = r
	}
	if r := got["gatehouse-session / oauth2-proxy throughput"]; r == nil || !slices.Equal(r.PerRound, []float64{4, 4, 2}) || r.Median != 4 {
		t.Errorf("gatehouse / oauth2-proxy = %+v, want rounds 4, 4, 2, median 4", r)
	}
	if r := got["gatehouse-session / oauth2-proxy proxy CPU per request"]; r == nil || r.Median != 0.25 {
		t.Errorf("CPU ratio = %+v, want median 0.25", r)
	}
	if _, ok := got["gatehouse-session / caddy throughput"]; ok {
		t.Error("a ratio to a skipped row")
	}
	if _, ok := got["gatehouse-session / oauth2-proxy-log throughput"]; ok {
		t.Error("a ratio to a row that is not in the run")
	}
	md := markdownPeers(p)
	if !strings.Contains(md, "| 6000 (8000, 4000, 6000) |") || !strings.Contains(md, "| skipped |") {
		t.Errorf("markdown:\n%s", md)
	}
	var out bytes.Buffer
	printPeers(&out, p)
	if !strings.Contains(out.String(), "gatehouse-session / oauth2-proxy throughput:") {
		t.Errorf("printed report lacks the ratio:\n%s", out.String())
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]string{
		"nginx version: nginx/1.22.1\n":                            "1.22.1",
		"v2.6.2 h1:wKoFIxpmOJLGl3QXoo6PNbYvGW4xLEgo32GPBEjWL8o=\n": "2.6.2",
		"2.6.2\n":        "2.6.2",
		"something else": "",
	} {
		if got := parseVersion(in); got != want {
			t.Errorf("parseVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProcessTree(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	tree := processTree(os.Getpid())
	if tree[0] != os.Getpid() || !slices.Contains(tree, cmd.Process.Pid) {
		t.Errorf("processTree = %v, want this process and its child %d", tree, cmd.Process.Pid)
	}
	if pp, err := parseStatPPID("4242 (a) b) S 17 4242"); err != nil || pp != 17 {
		t.Errorf("parseStatPPID = %d, %v; want 17", pp, err)
	}
	if _, err := parseStatPPID("4242 no name"); err == nil {
		t.Error("no command name: want an error")
	}
}

// TestUpstreamAccepts runs the upstream with its counter and checks that
// a new connection is counted and a kept-alive one is not.
func TestUpstreamAccepts(t *testing.T) {
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	statsPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	up, err := startUpstream(ctx, dir, port, statsPort, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.kill)
	b := &bench{upStats: statsPort}
	if err := waitTCP(ctx, up, fmt.Sprintf("127.0.0.1:%d", statsPort), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	client := newClient(1, 5*time.Second)
	t.Cleanup(client.CloseIdleConnections)
	get := func() {
		t.Helper()
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/app", port))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // a drained body keeps the connection
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// The server accepts in one loop and counts before it serves, so once
	// the first answer is in, every earlier connection (waitTCP's) and
	// this one are counted.
	get()
	before, err := b.upstreamAccepts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before != 2 {
		t.Errorf("accepts after waitTCP's probe and one request = %d, want 2", before)
	}
	for range 5 {
		get()
	}
	after, err := b.upstreamAccepts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("accepts %d -> %d over 5 kept-alive requests, want no new one", before, after)
	}
	client.CloseIdleConnections()
	get()
	if n, err := b.upstreamAccepts(ctx); err != nil || n != after+1 {
		t.Errorf("after closing the connection: accepts = %d, %v; want %d", n, err, after+1)
	}
}

func TestLoadFromStats(t *testing.T) {
	w := &workerStats{}
	for range 8 {
		w.hist.record(time.Millisecond)
		w.statuses[200]++
	}
	w.statuses[401] += 2
	w.errKinds = map[string]uint64{"timeout": 1}
	r := loadFromStats(mergeWorkers([]*workerStats{w}, -1, 2*time.Second))
	if r.Requests != 11 || r.Non2xx3xx != 2 || r.SocketErrors != 1 || r.RPS != 5.5 {
		t.Errorf("loadFromStats = %+v", r)
	}
}

func TestParseFlagsPeers(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseFlags([]string{"-mode", "peers"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.dur != 8*time.Second || o.conc != 50 || o.rounds != 3 || o.threads != 2 {
		t.Errorf("peers defaults: d %v, c %d, rounds %d, t %d; want 8s, 50, 3, 2", o.dur, o.conc, o.rounds, o.threads)
	}
	if o, _ := parseFlags([]string{"-mode", "peers", "-quick"}, &stderr); o.rounds != 1 || o.dur != time.Second {
		t.Errorf("quick peers: rounds %d, d %v", o.rounds, o.dur)
	}
	for _, args := range [][]string{{"-mode", "peers", "-rounds", "0"}, {"-mode", "peers", "-t", "0"}, {"-mode", "peers", "-c", "1", "-t", "2"}, {"-mode", "peers", "-loadgen", "ab"}} {
		if _, err := parseFlags(args, &stderr); err == nil {
			t.Errorf("parseFlags(%q): want an error", args)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// peerTarget is one row of the peers mode: a URL, the request's cookie,
// the answer it must give and the processes whose CPU it is charged.
type peerTarget struct {
	name   string
	label  string // what the README's table calls it
	url    string
	cookie string
	expect int
	proxy  *child // nil for the direct row
	// logPath, when set, is truncated before each measurement: a proxy
	// that logs each request must not fill the disk over the rounds.
	logPath string
	skip    string // why the row did not run
}

// peersMode measures the gateway beside the proxies users would pick
// instead, every target against the same upstream with the same load
// generator, in interleaved rounds so that a busy spell of the shared
// machine hits every row alike.
func (b *bench) peersMode(ctx context.Context, rep *report) error {
	o := b.opt
	res := &peersResult{Rounds: o.rounds, Connections: o.conc, Threads: o.threads, Duration: o.dur.String()}
	rep.Peers = res
	var gen loadGen = &selfGen{conns: o.conc, timeout: o.timeout}
	if o.loadGen == "wrk" {
		if bin, err := findProgram("wrk", o.wrkBin); err == nil {
			gen = &wrkGen{bin: bin, threads: o.threads, conns: o.conc, timeout: o.timeout}
		} else {
			rep.Notes = append(rep.Notes, fmt.Sprintf("wrk not found (%s): the harness's own client runs as the load generator, in a process of its own", installHint("wrk")))
		}
	}
	res.LoadGen = gen.name()
	var kids []*child
	defer func() {
		for _, c := range kids {
			c.stop(3 * time.Second)
		}
	}()
	targets, err := b.peerTargets(ctx, &kids)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if t.skip == "" {
			if err := checkTarget(ctx, t); err != nil {
				t.skip = err.Error()
				if strings.HasPrefix(t.name, "gatehouse") || t.name == "direct" || t.name == "bare-proxy" {
					rep.Failures = append(rep.Failures, t.name+": "+err.Error())
				}
			}
		}
		row := &peerRow{Name: t.name, Label: t.label, Expect: t.expect, Skipped: t.skip}
		if t.skip != "" {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s skipped: %s", t.name, t.skip))
		}
		res.Rows = append(res.Rows, row)
	}
	for round := 1; round <= o.rounds; round++ {
		fmt.Fprintf(b.log, "round %d of %d (%s, %s each):\n", round, o.rounds, gen.name(), o.dur)
		for i, t := range targets {
			if t.skip != "" {
				continue
			}
			s, err := b.measurePeer(ctx, gen, t)
			if err != nil {
				return err
			}
			s.Round = round
			res.Rows[i].Rounds = append(res.Rows[i].Rounds, s)
			fmt.Fprintf(b.log, "  %-22s %9.0f req/s  p50 %7.0fµs  p99 %7.0fµs  proxy %6.1f µs/req  errors %d\n",
				t.name, s.RPS, s.P50us, s.P99us, s.ProxyCPUus, s.Errors)
		}
	}
	res.summarize()
	for _, row := range res.Rows {
		if row.Name == "gatehouse-401" {
			for _, s := range row.Rounds {
				if n := s.Requests - min(s.Requests, s.Non2xx3xx); n > 0 {
					rep.Failures = append(rep.Failures, fmt.Sprintf("gatehouse-401 round %d: %d answers in 200-399 without a session", s.Round, n))
				}
			}
		}
	}
	return nil
}

// peerTargets starts the peers (nginx, Caddy, oauth2-proxy twice) and
// lists every row; a peer that is missing or does not start is a skipped
// row with its reason, not a failed run.
func (b *bench) peerTargets(ctx context.Context, kids *[]*child) ([]*peerTarget, error) {
	o := b.opt
	up := b.upstreamURL()
	targets := []*peerTarget{
		{name: "direct", label: "straight to the upstream", url: up + "/app", expect: 200},
		{name: "bare-proxy", label: "bare `httputil.ReverseProxy`", url: b.bareURL + "/app", expect: 200, proxy: b.bare},
	}
	for _, p := range []struct {
		t      *peerTarget
		prog   string
		flag   string
		start  func(ctx context.Context, bin, dir string, port, upstreamPort int) (*child, error)
		verArg string
	}{
		{&peerTarget{name: "nginx", label: "nginx%s, plain proxy, no auth", expect: 200}, "nginx", o.nginxBin, startNginx, "-v"},
		{&peerTarget{name: "caddy", label: "Caddy%s, plain `reverse_proxy`, no auth", expect: 200}, "caddy", o.caddyBin, startCaddy, "version"},
	} {
		targets = append(targets, p.t)
		v := ""
		bin, err := findProgram(p.prog, p.flag)
		if err == nil {
			if v = programVersion(ctx, bin, p.verArg); v != "" {
				v = " " + v
			}
		}
		p.t.label = fmt.Sprintf(p.t.label, v)
		if err != nil {
			p.t.skip = err.Error()
			continue
		}
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		c, err := p.start(ctx, bin, b.dir, port, b.upPort)
		if err != nil {
			p.t.skip = err.Error()
			continue
		}
		*kids = append(*kids, c)
		p.t.proxy, p.t.url = c, fmt.Sprintf("http://127.0.0.1:%d/app", port)
	}
	o2 := []*peerTarget{
		{name: "oauth2-proxy", label: "oauth2-proxy " + oauth2ProxyVersion + ", signed in, Redis sessions, request log off", expect: 200},
		{name: "oauth2-proxy-log", label: "oauth2-proxy " + oauth2ProxyVersion + ", signed in, Redis sessions, request log on", expect: 200},
	}
	targets = append(targets, o2...)
	if err := b.startOauth2Proxies(ctx, o2, kids); err != nil {
		for _, t := range o2 {
			t.skip = err.Error()
		}
	}
	gw := b.gw
	targets = append(targets,
		&peerTarget{name: "gatehouse-session", label: "Gatehouse, signed in (session in Redis)", url: gw.base + "/app",
			cookie: b.cookie, expect: 200, proxy: gw.proc, logPath: gw.proc.logPath},
		&peerTarget{name: "gatehouse-401", label: "Gatehouse, no session (401)", url: gw.base + "/app",
			expect: 401, proxy: gw.proc, logPath: gw.proc.logPath},
		&peerTarget{name: "gatehouse-public", label: "Gatehouse, public route", url: gw.base + "/public/x",
			expect: 200, proxy: gw.proc, logPath: gw.proc.logPath},
	)
	return targets, nil
}

// startOauth2Proxies builds (once) and starts oauth2-proxy with request
// logging off for the first target and on for the second, both signed in
// as the same htpasswd user with sessions in the harness's Redis.
func (b *bench) startOauth2Proxies(ctx context.Context, rows []*peerTarget, kids *[]*child) error {
	bin, err := oauth2ProxyBinary(ctx, b.opt.oauth2ProxyBin, b.log)
	if err != nil {
		return err
	}
	password := randomHex(12)
	line, err := htpasswdLine(oauth2ProxyUser, password)
	if err != nil {
		return err
	}
	htpasswd := filepath.Join(b.dir, "oauth2-proxy.htpasswd")
	if err := os.WriteFile(htpasswd, []byte(line), 0o600); err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	for i, t := range rows {
		port, err := freePort()
		if err != nil {
			return err
		}
		s := oauth2ProxySettings{port: port, upstreamURL: b.upstreamURL(), redisURL: b.redis.url(),
			htpasswdPath: htpasswd, cookieSecret: randomHex(16), requestLog: i == 1}
		p, err := startOauth2Proxy(ctx, bin, b.dir, t.name, s, password)
		if err != nil {
			return err
		}
		*kids = append(*kids, p.proc)
		t.proxy, t.url, t.cookie, t.logPath = p.proc, p.base+"/app", p.cookie, p.proc.logPath
	}
	return nil
}

// checkTarget sends one request and checks its answer before any load: a
// 200 must carry the upstream's body (a sign-in page is a 200 too), a 401
// must be a 401.
func checkTarget(ctx context.Context, t *peerTarget) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return err
	}
	if t.cookie != "" {
		req.Header.Set("Cookie", t.cookie)
	}
	client := &http.Client{Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("check request: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != t.expect {
		return fmt.Errorf("check request: %s, want %d", resp.Status, t.expect)
	}
	if t.expect == http.StatusOK && !bytes.Equal(body, upstreamBody) {
		return errors.New("check request: 200 without the upstream's body")
	}
	return nil
}

// measurePeer warms a target up, then measures one run of the load
// generator against it and reads what every process spent meanwhile.
func (b *bench) measurePeer(ctx context.Context, gen loadGen, t *peerTarget) (*peerSample, error) {
	if b.opt.warmup > 0 {
		if _, err := gen.run(ctx, t.url, t.cookie, max(b.opt.warmup, time.Second)); err != nil {
			return nil, err
		}
	}
	if t.logPath != "" {
		_ = os.Truncate(t.logPath, 0)
	}
	if err := b.redis.resetStats(ctx); err != nil {
		return nil, err
	}
	var proxyPIDs []int
	if t.proxy != nil {
		proxyPIDs = processTree(t.proxy.pid())
	}
	proxyCPU := startCPU(proxyPIDs...)
	others := startCPU(b.up.pid(), b.redis.proc.pid())
	acc0, err := b.upstreamAccepts(ctx)
	if err != nil {
		return nil, err
	}
	lr, err := gen.run(ctx, t.url, t.cookie, b.opt.dur)
	if err != nil {
		return nil, err
	}
	pc, oc := proxyCPU.stop(), others.stop()
	acc1, err := b.upstreamAccepts(ctx)
	if err != nil {
		return nil, err
	}
	calls, err := b.redis.commandCalls(ctx)
	if err != nil {
		return nil, err
	}
	if t.proxy != nil && t.proxy.exited() {
		return nil, fmt.Errorf("%s exited under load (%v): %s", t.name, t.proxy.exitErr, t.proxy.logTail(2000))
	}
	var total time.Duration
	for _, c := range pc {
		total += c
	}
	return newPeerSample(lr, t.expect, total, oc[0], oc[1], sumCalls(calls), acc1-acc0), nil
}

// upstreamAccepts reads how many connections the upstream has accepted.
func (b *bench) upstreamAccepts(ctx context.Context) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/accepts", b.upStats), nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("upstream accepts: %w", err)
	}
	defer resp.Body.Close()
	s, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	n, err := strconv.ParseUint(strings.TrimSpace(string(s)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("upstream accepts %q: %w", s, err)
	}
	return n, nil
}

// programVersion is a short version string of an external program, for
// the row's label ("1.22.1", "v2.6.2"); "" when it cannot tell.
func programVersion(ctx context.Context, bin, arg string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// nginx -v writes to stderr.
	out, err := exec.CommandContext(ctx, bin, arg).CombinedOutput()
	if err != nil {
		return ""
	}
	return parseVersion(string(out))
}

// parseVersion finds a version in "nginx version: nginx/1.22.1", "2.6.2"
// or "v2.6.2 h1:...".
func parseVersion(out string) string {
	for _, f := range strings.Fields(out) {
		if _, v, ok := strings.Cut(f, "/"); ok {
			f = v
		}
		f = strings.TrimPrefix(f, "v")
		if f != "" && f[0] >= '0' && f[0] <= '9' && strings.Contains(f, ".") {
			return f
		}
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

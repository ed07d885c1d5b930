package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// bench is one harness run's processes.
type bench struct {
	opt     *options
	log     io.Writer
	dir     string
	redis   *redisProc
	upPort  int
	upStats int // the upstream's counter port: connections it accepted
	up      *child
	bare    *child
	bareURL string
	gw      *gateway
	cookie  string // "gatehouse_session=TOKEN" of the registered user
	// gwAssert is a second gateway on the same Redis whose only difference
	// is identity.assertion.header; the ratio mode starts it for its
	// hot-path rows.
	gwAssert *gateway
}

// gateway is the gatehouse process under test.
type gateway struct {
	name     string // its configuration and log are NAME.yaml and NAME.log
	bin      string
	cfgPath  string
	proc     *child
	base     string // http://127.0.0.1:PORT
	admin    string // http://127.0.0.1:ADMINPORT
	settings gatewaySettings
}

// gatewaySettings are what a mode changes in the generated configuration.
type gatewaySettings struct {
	bcryptCost       int
	maxLoginFailures int
	maxRegistrations int // 0 = no limit
	// assertionHeader is identity.assertion.header ("" = no assertion;
	// no key_files, so the gateway signs with an ephemeral key).
	assertionHeader string
}

const (
	benchEmail    = "bench@bench.example"
	benchPassword = "bench-password-1"
	// benchAdminEmail is the account that auth.groups puts in benchGroup;
	// the gateway-auth-groups row signs in as it.
	benchAdminEmail = "bench-admin@bench.example"
	benchGroup      = "admins"
	// groupRoute is the prefix of the rule that requires benchGroup.
	groupRoute = "/admin/"
	cookieName = "gatehouse_session"
	// benchBcryptCost makes registration and login cheap: the ratio mode
	// measures the per-request path, not password hashing (flood mode
	// measures that, with -login-cost).
	benchBcryptCost = 4
	// responseHeaderTimeout is the gateway's upstream timeout; the faults
	// mode's slow upstream sleeps past it.
	responseHeaderTimeout = time.Second
)

func newBench(ctx context.Context, o *options, log io.Writer) (_ *bench, err error) {
	dir, err := os.MkdirTemp("", "gatehouse-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp folder: %w", err)
	}
	b := &bench{opt: o, log: log, dir: dir}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.upPort, err = freePort(); err != nil {
		return nil, err
	}
	if b.upStats, err = freePort(); err != nil {
		return nil, err
	}
	if b.up, err = startUpstream(ctx, dir, b.upPort, b.upStats, 0); err != nil {
		return nil, err
	}
	barePort, err := freePort()
	if err != nil {
		return nil, err
	}
	if b.bare, err = startBareProxy(ctx, dir, barePort, b.upstreamURL()); err != nil {
		return nil, err
	}
	b.bareURL = fmt.Sprintf("http://127.0.0.1:%d", barePort)
	if o.noGateway {
		return b, nil
	}
	if b.redis, err = startRedis(ctx, o.redisBin, dir, o.mode == "faults"); err != nil {
		return nil, err
	}
	bin := o.gatewayBin
	if bin == "" {
		src := o.src
		if src == "" {
			if src, err = moduleRoot(ctx); err != nil {
				return nil, err
			}
		}
		fmt.Fprintln(log, "building the gateway: go build ./cmd/gatehouse")
		if bin, err = buildGateway(ctx, src, dir); err != nil {
			return nil, err
		}
	}
	set := gatewaySettings{bcryptCost: benchBcryptCost, maxLoginFailures: 10, maxRegistrations: 100}
	if o.mode == "flood" {
		set.bcryptCost = o.loginCost
		// From one client address the documented throttle answers the
		// flood with cheap 429s after 100 failures; lifting it measures
		// what a distributed flood costs: every attempt reaches bcrypt.
		set.maxLoginFailures = 100_000_000
	}
	if o.mode == "regflood" {
		set.bcryptCost = o.loginCost
		// As a distributed flood: every registration reaches the hash
		// queue instead of the per-address throttle.
		set.maxRegistrations = 0
	}
	if b.gw, err = startGateway(ctx, "gatehouse", bin, dir, b.redis.url(), b.upstreamURL(), set); err != nil {
		return nil, err
	}
	if b.cookie, err = b.gw.register(ctx, benchEmail, benchPassword); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *bench) upstreamURL() string { return fmt.Sprintf("http://127.0.0.1:%d", b.upPort) }

// close kills every child and removes the temporary folder.
func (b *bench) close() {
	for _, g := range []*gateway{b.gw, b.gwAssert} {
		if g != nil {
			g.proc.stop(3 * time.Second)
		}
	}
	b.bare.kill()
	b.up.kill()
	b.redis.close()
	if b.opt.keep {
		fmt.Fprintln(b.log, "kept:", b.dir)
		return
	}
	_ = os.RemoveAll(b.dir)
}

// gatewayConfig is the generated configuration file. Every mode gets the
// group rule and auth.groups, so that the hot-path rows and the
// gateway-auth row they are compared with run the same configuration.
func gatewayConfig(port, adminPort int, redisURL, upstreamURL string, s gatewaySettings) string {
	identity := ""
	if s.assertionHeader != "" {
		identity = fmt.Sprintf("identity:\n  assertion:\n    header: %s\n", s.assertionHeader)
	}
	return fmt.Sprintf(`# generated by gatehouse-bench
listen: 127.0.0.1:%d
admin_listen: 127.0.0.1:%d
shutdown_timeout: 3s
redis:
  url: %q
  key_prefix: "bench:"
upstreams:
  app:
    url: %q
    response_header_timeout: %s
routes:
  - path: /public/
    policy: public
  - path: %s
    policy: authenticated
    groups: [%s]
  - path: /
    policy: authenticated
default_policy: deny
auth:
  registration: open
  bcrypt_cost: %d
  max_login_failures: %d
  max_registrations: %d
  groups:
    %s: [%q]
session:
  cookie_secure: false
%s`, port, adminPort, redisURL, upstreamURL, responseHeaderTimeout, groupRoute, benchGroup,
		s.bcryptCost, s.maxLoginFailures, s.maxRegistrations, benchGroup, benchAdminEmail, identity)
}

// startGateway writes a configuration and runs `gatehouse serve` until its
// admin /readyz answers 200.
func startGateway(ctx context.Context, name, bin, dir, redisURL, upstreamURL string, s gatewaySettings) (*gateway, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	g := &gateway{
		name:     name,
		bin:      bin,
		cfgPath:  filepath.Join(dir, name+".yaml"),
		base:     fmt.Sprintf("http://127.0.0.1:%d", port),
		admin:    fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		settings: s,
	}
	cfg := gatewayConfig(port, adminPort, redisURL, upstreamURL, s)
	if err := os.WriteFile(g.cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	// The gateway logs one line per request; they go to a file (not a pipe
	// the harness must drain) that truncateLog empties between cases.
	if g.proc, err = startChild(name, filepath.Join(dir, name+".log"), bin,
		[]string{"serve", "-config", g.cfgPath}, nil); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, g.proc, g.admin+"/readyz", http.StatusOK, 30*time.Second); err != nil {
		g.proc.kill()
		return nil, fmt.Errorf("%s not ready: %w", name, err)
	}
	return g, nil
}

func (g *gateway) pid() int { return g.proc.pid() }

// truncateLog empties the gateway's log; it appends (O_APPEND), so its
// next line lands at the new end.
func (g *gateway) truncateLog() { _ = os.Truncate(g.proc.logPath, 0) }

// register creates an account with POST /register and returns the session
// cookie it sets, as "NAME=VALUE".
func (g *gateway) register(ctx context.Context, email, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+"/register", strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("register: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("register: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	for _, c := range resp.Cookies() {
		if c.Name == cookieName && c.Value != "" {
			return c.Name + "=" + c.Value, nil
		}
	}
	return "", fmt.Errorf("register: no %s cookie in the answer", cookieName)
}

// goroutines reads go_goroutines from the gateway's admin /metrics.
func (g *gateway) goroutines(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.admin+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics: %s", resp.Status)
	}
	return parseGoroutines(resp.Body)
}

func parseGoroutines(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("metrics: go_goroutines %q", v)
			}
			return int(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	return 0, fmt.Errorf("metrics: no go_goroutines")
}

// mem reads the gateway's resident memory.
func (g *gateway) mem() memStatus {
	m, _ := procMem(g.pid())
	return m
}

// authHeader is the request header of an authenticated client.
func (b *bench) authHeader() http.Header {
	return http.Header{"Cookie": {b.cookie}}
}

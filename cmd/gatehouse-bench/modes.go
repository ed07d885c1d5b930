package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// connsResult is the conns mode: what idle keep-alive connections cost.
type connsResult struct {
	Wanted           int     `json:"wanted"`
	Opened           int     `json:"opened"`
	Failed           int     `json:"failed"`
	OpenSeconds      float64 `json:"open_seconds"`
	RSSBeforeKB      int64   `json:"rss_before_kb"`
	RSSOpenKB        int64   `json:"rss_open_kb"`
	RSSClosedKB      int64   `json:"rss_after_close_kb"`
	PeakRSSKB        int64   `json:"peak_rss_kb"`
	KBPerConn        float64 `json:"kb_per_conn"`
	GoroutinesBefore int     `json:"goroutines_before"`
	GoroutinesOpen   int     `json:"goroutines_open"`
	GoroutinesClosed int     `json:"goroutines_after_close"`
	// AuthWhileOpen is an authenticated request made while every
	// connection was open: the gateway must still answer promptly.
	AuthWhileOpenStatus int     `json:"auth_while_open_status"`
	AuthWhileOpenMs     float64 `json:"auth_while_open_ms"`
}

// raiseNoFile lifts the soft RLIMIT_NOFILE to the hard limit and returns it.
func raiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("setrlimit: %w", err)
		}
	}
	return lim.Cur, nil
}

func (b *bench) connsMode(ctx context.Context, rep *report) error {
	res := &connsResult{Wanted: b.opt.conns}
	rep.Conns = res
	limit, err := raiseNoFile()
	if err != nil {
		return err
	}
	if want := uint64(b.opt.conns) + 256; limit < want {
		res.Wanted = int(limit) - 256
		rep.Notes = append(rep.Notes, fmt.Sprintf("RLIMIT_NOFILE hard limit %d: opening %d connections", limit, res.Wanted))
	}
	rep.Notes = append(rep.Notes, "each connection sends one GET /public/idle, reads the answer and stays open (keep-alive, idle)")
	before := b.gw.mem()
	res.RSSBeforeKB = before.RSSKB
	res.GoroutinesBefore, _ = b.gw.goroutines(ctx)

	addr := strings.TrimPrefix(b.gw.base, "http://")
	conns := make([]net.Conn, res.Wanted)
	var failed atomic.Int64
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(conns) {
					return
				}
				c, err := idleConn(ctx, addr)
				if err != nil {
					failed.Add(1)
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	res.OpenSeconds = time.Since(start).Seconds()
	res.Failed = int(failed.Load())
	res.Opened = res.Wanted - res.Failed
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "  %d idle connections open (%d failed) in %.1fs\n", res.Opened, res.Failed, res.OpenSeconds)
	if err := sleepCtx(ctx, time.Second); err != nil {
		return err
	}
	open := b.gw.mem()
	res.RSSOpenKB = open.RSSKB
	res.GoroutinesOpen, _ = b.gw.goroutines(ctx)
	if res.Opened > 0 {
		res.KBPerConn = float64(res.RSSOpenKB-res.RSSBeforeKB) / float64(res.Opened)
	}
	t0 := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.gw.base+"/app", nil)
	req.Header.Set("Cookie", b.cookie)
	if resp, err := (&http.Client{Timeout: b.opt.timeout}).Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		res.AuthWhileOpenStatus = resp.StatusCode
	}
	res.AuthWhileOpenMs = float64(time.Since(t0).Microseconds()) / 1e3
	if res.AuthWhileOpenStatus != http.StatusOK {
		rep.Failures = append(rep.Failures, fmt.Sprintf("authenticated GET with %d idle connections open: status %d", res.Opened, res.AuthWhileOpenStatus))
	}
	if res.Failed > 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d of %d connections failed", res.Failed, res.Wanted))
	}
	for i, c := range conns {
		if c != nil {
			_ = c.Close()
			conns[i] = nil
		}
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}
	closed := b.gw.mem()
	res.RSSClosedKB = closed.RSSKB
	res.PeakRSSKB = closed.HWMKB
	res.GoroutinesClosed, _ = b.gw.goroutines(ctx)
	return nil
}

// idleConn opens a connection, makes one keep-alive request on it and
// returns it open and idle.
func idleConn(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /public/idle HTTP/1.1\r\nHost: "+addr+"\r\nUser-Agent: gatehouse-bench\r\n\r\n"); err != nil {
		_ = c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		_ = c.Close()
		return nil, fmt.Errorf("idle conn: %s", resp.Status)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// sessionsResult is the sessions mode: the authenticated case with an
// empty store and with a full one.
type sessionsResult struct {
	Loaded           int         `json:"loaded"`
	LoadSeconds      float64     `json:"load_seconds"`
	Keys             int64       `json:"keys"`
	UsedMemoryBefore int64       `json:"used_memory_before"`
	UsedMemoryAfter  int64       `json:"used_memory_after"`
	BytesPerSession  float64     `json:"used_memory_bytes_per_session"`
	Empty            *caseResult `json:"empty_store"`
	Full             *caseResult `json:"full_store"`
	RPSFullOverEmpty float64     `json:"rps_full_over_empty"`
	P99FullOverEmpty float64     `json:"p99_full_over_empty"`
}

func (b *bench) sessionsMode(ctx context.Context, rep *report) error {
	res := &sessionsResult{}
	rep.Sessions = res
	lay := sessionLayout{prefix: "bench:", idle: 24 * time.Hour, life: 336 * time.Hour, perUser: 2}
	rep.Notes = append(rep.Notes, fmt.Sprintf(
		"sessions written in auth's layout (auth/sessions.go): P{u:ID}:s:HASH with PX 24h plus the user's index zset (PEXPIRE 336h), %d sessions per user; accounts not created",
		lay.perUser))
	var err error
	if res.Empty, err = b.measure(ctx, b.spec("auth-empty-store", b.gw.base+"/app", b.authHeader(), 200), "gateway", 0); err != nil {
		return err
	}
	res.Empty.Name = "gateway-auth (empty store)"
	if res.UsedMemoryBefore, err = b.redis.infoField(ctx, "memory", "used_memory"); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "  loading %d sessions\n", b.opt.sessions)
	took, err := b.redis.loadSessions(ctx, lay, b.opt.sessions)
	if err != nil {
		return err
	}
	res.Loaded = b.opt.sessions
	res.LoadSeconds = took.Seconds()
	if res.UsedMemoryAfter, err = b.redis.infoField(ctx, "memory", "used_memory"); err != nil {
		return err
	}
	res.Keys, _ = b.redis.cli.DBSize(ctx).Result()
	res.BytesPerSession = ratio(float64(res.UsedMemoryAfter-res.UsedMemoryBefore), float64(res.Loaded))
	fmt.Fprintf(b.log, "  loaded in %.1fs, %.0f bytes per session\n", res.LoadSeconds, res.BytesPerSession)
	if res.Full, err = b.measure(ctx, b.spec("auth-full-store", b.gw.base+"/app", b.authHeader(), 200), "gateway", 0); err != nil {
		return err
	}
	res.Full.Name = fmt.Sprintf("gateway-auth (%d sessions)", res.Loaded)
	res.RPSFullOverEmpty = ratio(res.Full.RPS, res.Empty.RPS)
	res.P99FullOverEmpty = ratio(res.Full.P99us, res.Empty.P99us)
	rep.Cases = append(rep.Cases, res.Empty, res.Full)
	rep.Failures = append(rep.Failures, wrongAnswers(rep.Cases)...)
	return nil
}

// floodResult is the flood mode: authenticated latency with and without
// a flood of failing logins.
type floodResult struct {
	LoginCost          int               `json:"bcrypt_cost"`
	FloodClients       int               `json:"flood_clients"`
	Quiet              *caseResult       `json:"quiet"`
	During             *caseResult       `json:"during_flood"`
	P50DuringOverQuiet float64           `json:"p50_during_over_quiet"`
	P99DuringOverQuiet float64           `json:"p99_during_over_quiet"`
	RPSDuringOverQuiet float64           `json:"rps_during_over_quiet"`
	Logins             uint64            `json:"logins"`
	LoginsPerSecond    float64           `json:"logins_per_second"`
	LoginP50ms         float64           `json:"login_p50_ms"`
	LoginP99ms         float64           `json:"login_p99_ms"`
	LoginStatuses      map[string]uint64 `json:"login_statuses"`
}

func (b *bench) floodMode(ctx context.Context, rep *report) error {
	res := &floodResult{LoginCost: b.gw.settings.bcryptCost, FloodClients: b.opt.floodConc}
	rep.Flood = res
	rep.Notes = append(rep.Notes,
		fmt.Sprintf("bcrypt_cost %d; max_login_failures lifted so every wrong-password POST /login reaches bcrypt (a distributed flood; from one address the throttle would answer 429 after 100 failures)", res.LoginCost),
		"cpu µs/req during the flood includes the logins' bcrypt work")
	var err error
	if res.Quiet, err = b.measure(ctx, b.spec("auth-quiet", b.gw.base+"/app", b.authHeader(), 200), "gateway", 0); err != nil {
		return err
	}
	res.Quiet.Name = "gateway-auth (quiet)"

	body := `{"email":"` + benchEmail + `","password":"wrong-password-1"}`
	flood := &loadSpec{
		name: "login-flood", method: http.MethodPost, url: b.gw.base + "/login",
		header: http.Header{"Content-Type": {"application/json"}}, body: body,
		expect: http.StatusUnauthorized, conc: b.opt.floodConc, timeout: 30 * time.Second,
	}
	floodFor := b.opt.warmup + b.opt.dur + 200*time.Millisecond
	floodClient := newClient(flood.conc, flood.timeout)
	defer floodClient.CloseIdleConnections()
	var floodStats *loadStats
	var floodErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		floodStats, floodErr = closedPhase(ctx, floodClient, flood, floodFor)
	}()
	res.During, err = b.measure(ctx, b.spec("auth-during-flood", b.gw.base+"/app", b.authHeader(), 200), "gateway", 0)
	<-done
	if err != nil {
		return err
	}
	if floodErr != nil {
		return floodErr
	}
	res.During.Name = fmt.Sprintf("gateway-auth (login flood x%d)", b.opt.floodConc)
	res.P50DuringOverQuiet = ratio(res.During.P50us, res.Quiet.P50us)
	res.P99DuringOverQuiet = ratio(res.During.P99us, res.Quiet.P99us)
	res.RPSDuringOverQuiet = ratio(res.During.RPS, res.Quiet.RPS)
	fl := fromStats("login-flood", "gateway", "closed", floodStats)
	res.Logins = fl.Requests
	res.LoginsPerSecond = fl.RPS
	res.LoginP50ms = fl.P50us / 1e3
	res.LoginP99ms = fl.P99us / 1e3
	res.LoginStatuses = fl.Statuses
	rep.Cases = append(rep.Cases, res.Quiet, res.During)
	rep.Failures = append(rep.Failures, wrongAnswers(rep.Cases)...)
	if fl.Errors > 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("login flood: %d answers other than 401: %v %v", fl.Errors, fl.Statuses, fl.ErrKinds))
	}
	return nil
}

// printModeSections prints what the non-ratio modes found.
func printModeSections(w io.Writer, rep *report) {
	if p := rep.Peers; p != nil {
		printPeers(w, p)
	}
	if c := rep.Conns; c != nil {
		fmt.Fprintf(w, "\nidle connections: %d open (%d failed) in %.1fs\n", c.Opened, c.Failed, c.OpenSeconds)
		fmt.Fprintf(w, "gateway RSS: before %.1f MB, with connections %.1f MB (%.1f kB/conn), after closing %.1f MB, peak %.1f MB\n",
			mb(c.RSSBeforeKB), mb(c.RSSOpenKB), c.KBPerConn, mb(c.RSSClosedKB), mb(c.PeakRSSKB))
		fmt.Fprintf(w, "gateway goroutines: before %d, with connections %d, after closing %d\n", c.GoroutinesBefore, c.GoroutinesOpen, c.GoroutinesClosed)
		fmt.Fprintf(w, "authenticated GET while open: status %d in %.1f ms\n", c.AuthWhileOpenStatus, c.AuthWhileOpenMs)
	}
	if s := rep.Sessions; s != nil {
		fmt.Fprintf(w, "\nsessions: %d loaded in %.1fs (%d keys); redis used_memory %.1f MB -> %.1f MB = %.0f bytes/session\n",
			s.Loaded, s.LoadSeconds, s.Keys, float64(s.UsedMemoryBefore)/(1<<20), float64(s.UsedMemoryAfter)/(1<<20), s.BytesPerSession)
		fmt.Fprintf(w, "full / empty store: throughput %.2f, p99 %.2f\n", s.RPSFullOverEmpty, s.P99FullOverEmpty)
	}
	if f := rep.Flood; f != nil {
		fmt.Fprintf(w, "\nlogin flood (bcrypt_cost %d, %d clients): %d logins, %.0f/s, login p50 %.0f ms p99 %.0f ms, statuses %v\n",
			f.LoginCost, f.FloodClients, f.Logins, f.LoginsPerSecond, f.LoginP50ms, f.LoginP99ms, f.LoginStatuses)
		fmt.Fprintf(w, "authenticated GET during / quiet: p50 %.1fx, p99 %.1fx, throughput %.2f\n", f.P50DuringOverQuiet, f.P99DuringOverQuiet, f.RPSDuringOverQuiet)
	}
	if f := rep.RegFlood; f != nil {
		printRegFlood(w, f)
	}
	if f := rep.Faults; f != nil {
		fmt.Fprintf(w, "\nfaults (client timeout %s):\n", f.ClientTimeout)
		tw := newTable(w)
		fmt.Fprintln(tw, "phase\tseconds\trecovery ms\tauth\tunauth\tpublic\tmax latency ms\t")
		for _, p := range f.Phases {
			maxLat := 0.0
			for _, oc := range p.Classes {
				maxLat = max(maxLat, oc.MaxLatencyMs)
			}
			fmt.Fprintf(tw, "%s\t%.1f\t%.0f\t%s\t%s\t%s\t%.0f\t\n", p.Name, p.Seconds, p.RecoveryMs,
				formatOutcomes(p.Classes["auth"].Outcomes), formatOutcomes(p.Classes["unauth"].Outcomes),
				formatOutcomes(p.Classes["public"].Outcomes), maxLat)
		}
		_ = tw.Flush()
		fmt.Fprintf(w, "gateway goroutines: baseline %d, after %d (allowed +%d)\n", f.GoroutinesBaseline, f.GoroutinesAfter, f.GoroutineSlack)
		for _, x := range f.Warnings {
			fmt.Fprintln(w, "warning:", x)
		}
	}
	if s := rep.Soak; s != nil {
		fmt.Fprintf(w, "\nsoak: %d requests, %d unexpected answers, samples every %s\n", s.Requests, s.Errors, s.Interval)
		tw := newTable(w)
		fmt.Fprintln(tw, "at s\treq/s\tunexpected\tgateway RSS MB\tgoroutines\tredis MB\t")
		for _, x := range s.Samples {
			fmt.Fprintf(tw, "%.0f\t%.0f\t%d\t%.1f\t%d\t%.1f\t\n", x.AtSeconds, x.RPS, x.Errors, mb(x.RSSKB), x.Goroutines, mb(x.RedisMemKB))
		}
		_ = tw.Flush()
		fmt.Fprintf(w, "slopes per minute: gateway RSS %+.0f kB, goroutines %+.1f, redis used_memory %+.0f kB\n",
			s.RSSSlopeKBPerMin, s.GoroutineSlopePerMin, s.RedisMemSlopeKBPerMin)
	}
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

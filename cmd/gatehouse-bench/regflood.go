package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// regFloodTimeout is a registering client's deadline: a registration that
// has not been answered by then counts as having waited past it.
const regFloodTimeout = 10 * time.Second

// regFloodResult is the regflood mode: a real user's login latency with and
// without a flood of registrations, each of a new email (so that every one
// of them would need a bcrypt hash).
type regFloodResult struct {
	LoginCost       int             `json:"bcrypt_cost"`
	FloodClients    int             `json:"flood_clients"`
	Quiet           *caseResult     `json:"login_quiet"`
	During          *caseResult     `json:"login_during_flood"`
	P99DuringOverQt float64         `json:"login_p99_during_over_quiet"`
	Registrations   *outcomeCounts  `json:"registrations"`
	DeadlineMs      float64         `json:"registration_deadline_ms"`
	Verdicts        map[string]bool `json:"verdicts"`
}

// regFloodMode measures logins of the bench user (the right password) alone,
// then while -flood-c clients register new accounts in closed loops. The
// gateway runs with max_registrations 0 (a distributed flood: from one
// address the throttle would answer 429 after 100) and -login-cost.
func (b *bench) regFloodMode(ctx context.Context, rep *report) error {
	res := &regFloodResult{LoginCost: b.gw.settings.bcryptCost, FloodClients: b.opt.floodConc,
		DeadlineMs: float64(regFloodTimeout.Milliseconds()), Verdicts: map[string]bool{}}
	rep.RegFlood = res
	rep.Notes = append(rep.Notes,
		fmt.Sprintf("bcrypt_cost %d; auth.max_registrations 0 so that every registration from the one bench address reaches the hash queue", res.LoginCost),
		"login: one client, POST /login with the right password, in a closed loop")

	body := `{"email":` + strconv.Quote(benchEmail) + `,"password":` + strconv.Quote(benchPassword) + `}`
	login := &loadSpec{
		name: "login", method: http.MethodPost, url: b.gw.base + "/login",
		header: http.Header{"Content-Type": {"application/json"}}, body: body,
		expect: http.StatusOK, conc: 1, timeout: regFloodTimeout,
	}
	loginFor := b.opt.warmup + b.opt.dur
	client := newClient(1, login.timeout)
	defer client.CloseIdleConnections()
	quiet, err := closedPhase(ctx, client, login, loginFor)
	if err != nil {
		return err
	}
	res.Quiet = fromStats("login (quiet)", "gateway", "closed", quiet)
	res.Quiet.Expect = http.StatusOK

	var n atomic.Uint64
	register := trafficClass{name: "register", workers: b.opt.floodConc,
		custom: func(ctx context.Context, c *http.Client) (int, error) {
			email := fmt.Sprintf("flood-%d@bench.example", n.Add(1))
			rb := `{"email":` + strconv.Quote(email) + `,"password":"flood-password-1"}`
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.gw.base+"/register", strings.NewReader(rb))
			if err != nil {
				return 0, err
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				return 0, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			return resp.StatusCode, nil
		}}
	flood := startMixed(ctx, []trafficClass{register}, regFloodTimeout)
	time.Sleep(b.opt.warmup) // the queue is full before the first login
	during, err := closedPhase(ctx, client, login, loginFor)
	counts := flood.stop()
	if err != nil {
		return err
	}
	res.During = fromStats(fmt.Sprintf("login (register flood x%d)", b.opt.floodConc), "gateway", "closed", during)
	res.During.Expect = http.StatusOK
	all := &outcomeCounts{Outcomes: map[string]uint64{}}
	for _, w := range counts {
		for _, oc := range w {
			all.merge(oc)
		}
	}
	res.Registrations = all
	res.P99DuringOverQt = ratio(res.During.P99us, res.Quiet.P99us)
	rep.Cases = append(rep.Cases, res.Quiet, res.During)
	rep.Failures = append(rep.Failures, wrongAnswers(rep.Cases)...)

	res.Verdicts["login_p99_within_2x_of_quiet"] = res.P99DuringOverQt <= 2
	res.Verdicts["no_registration_past_its_deadline"] = all.MaxLatencyMs < res.DeadlineMs && all.Outcomes["timeout"] == 0
	res.Verdicts["no_login_past_its_deadline"] = res.During.MaxUs/1e3 < res.DeadlineMs && res.During.Errors == 0
	for k, v := range all.Outcomes {
		if k != "201" && k != "503" {
			rep.Failures = append(rep.Failures, fmt.Sprintf("register flood: %d answers %s (want 201 or 503 overloaded)", v, k))
		}
	}
	for name, ok := range res.Verdicts {
		if !ok {
			rep.Failures = append(rep.Failures, "register flood: "+name+" does not hold")
		}
	}
	return nil
}

// printRegFlood prints what the regflood mode found.
func printRegFlood(w io.Writer, f *regFloodResult) {
	fmt.Fprintf(w, "\nregister flood (bcrypt_cost %d, %d clients): %d registrations, max %.0f ms (deadline %.0f ms), answers %v\n",
		f.LoginCost, f.FloodClients, f.Registrations.Requests, f.Registrations.MaxLatencyMs, f.DeadlineMs, f.Registrations.Outcomes)
	fmt.Fprintf(w, "real login quiet: p50 %.0f ms p99 %.0f ms max %.0f ms (%d logins)\n",
		f.Quiet.P50us/1e3, f.Quiet.P99us/1e3, f.Quiet.MaxUs/1e3, f.Quiet.Requests)
	fmt.Fprintf(w, "real login during: p50 %.0f ms p99 %.0f ms max %.0f ms (%d logins); p99 during / quiet %.2f\n",
		f.During.P50us/1e3, f.During.P99us/1e3, f.During.MaxUs/1e3, f.During.Requests, f.P99DuringOverQt)
	fmt.Fprintf(w, "verdicts: %v\n", f.Verdicts)
}

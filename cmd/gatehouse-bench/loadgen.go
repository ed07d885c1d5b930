package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// loadRole is the role name of the harness's own load generator when wrk
// is missing: the closed loop of the ratio mode, run in a process of its
// own so that, like wrk, it is none of the measured processes.
const loadRole = "load"

// selfGen runs the harness binary as the load generator.
type selfGen struct {
	conns   int
	timeout time.Duration
}

func (s *selfGen) name() string { return fmt.Sprintf("gatehouse-bench closed loop -c%d", s.conns) }

func (s *selfGen) run(ctx context.Context, url, cookie string, d time.Duration) (*loadResult, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "-url", url, "-cookie", cookie,
		"-c", strconv.Itoa(s.conns), "-d", d.String(), "-timeout", s.timeout.String())
	cmd.Env = append(os.Environ(), roleEnv+"="+loadRole)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("load generator %s: %w: %s", url, err, strings.TrimSpace(errOut.String()))
	}
	var res loadResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("load generator %s: %w", url, err)
	}
	res.CPUus = perRequestMicros(cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime(), res.Requests)
	return &res, nil
}

// runLoadRole is the load generator process: one closed-loop phase, its
// figures as JSON on stdout.
func runLoadRole(args []string) int {
	fs := flag.NewFlagSet(loadRole, flag.ContinueOnError)
	url := fs.String("url", "", "target")
	cookie := fs.String("cookie", "", "Cookie header value")
	conc := fs.Int("c", 50, "connections")
	d := fs.Duration("d", 8*time.Second, "duration")
	timeout := fs.Duration("timeout", 5*time.Second, "per request")
	if err := fs.Parse(args); err != nil || *url == "" || *conc < 1 {
		return 2
	}
	sp := &loadSpec{name: *url, url: *url, expect: -1, conc: *conc, dur: *d, timeout: *timeout}
	if *cookie != "" {
		sp.header = http.Header{"Cookie": {*cookie}}
	}
	client := newClient(*conc, *timeout)
	s, err := closedPhase(context.Background(), client, sp, *d)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(loadFromStats(s)); err != nil {
		return 1
	}
	return 0
}

// loadFromStats turns the closed loop's figures into wrk's terms.
func loadFromStats(s *loadStats) *loadResult {
	r := &loadResult{
		Requests: s.requests, Seconds: s.elapsed.Seconds(),
		P50us: micros(s.hist.percentile(0.50)), P99us: micros(s.hist.percentile(0.99)),
	}
	if s.elapsed > 0 {
		r.RPS = float64(s.requests) / s.elapsed.Seconds()
	}
	for code, n := range s.statuses {
		if code < 200 || code > 399 {
			r.Non2xx3xx += n
		}
	}
	for _, n := range s.errKinds {
		r.SocketErrors += n
	}
	return r
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// loadResult is what one run of the external load generator measured.
type loadResult struct {
	Requests uint64  `json:"requests"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	// Non2xx3xx are answers outside 200-399; the 401 row expects all of
	// its answers to be among them.
	Non2xx3xx uint64 `json:"non_2xx_3xx"`
	// SocketErrors are wrk's connect, read, write and timeout errors.
	SocketErrors uint64 `json:"socket_errors"`
	// CPUus is the load generator's own CPU per request: it shares the
	// cores with everything measured, so the report shows what it took.
	CPUus float64 `json:"loadgen_cpu_us_per_req"`
}

var errWrkOutput = errors.New("wrk output")

// loadGen runs one closed-loop load against a URL in a process of its own.
type loadGen interface {
	run(ctx context.Context, url, cookie string, d time.Duration) (*loadResult, error)
	name() string
}

// wrkGen is Debian's wrk: -t threads, -c connections, --latency. The
// session cookie goes in a plain -H header, so no Lua script runs per
// request.
type wrkGen struct {
	bin     string
	threads int
	conns   int
	timeout time.Duration
}

func (w *wrkGen) name() string { return fmt.Sprintf("wrk -t%d -c%d", w.threads, w.conns) }

// wrkArgs is wrk's command line for one run.
func (w *wrkGen) wrkArgs(url, cookie string, d time.Duration) []string {
	args := []string{
		"-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.conns),
		"-d", fmt.Sprintf("%ds", max(1, int(d.Round(time.Second)/time.Second))),
		"--timeout", fmt.Sprintf("%ds", max(1, int(w.timeout/time.Second))),
		"--latency",
	}
	if cookie != "" {
		args = append(args, "-H", "Cookie: "+cookie)
	}
	return append(args, url)
}

func (w *wrkGen) run(ctx context.Context, url, cookie string, d time.Duration) (*loadResult, error) {
	cmd := exec.CommandContext(ctx, w.bin, w.wrkArgs(url, cookie, d)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wrk %s: %w: %s", url, err, strings.TrimSpace(errOut.String()))
	}
	res, err := parseWrk(out.String())
	if err != nil {
		return nil, fmt.Errorf("wrk %s: %w\n%s", url, err, out.String())
	}
	res.CPUus = perRequestMicros(cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime(), res.Requests)
	return res, nil
}

// parseWrk reads the summary wrk 4 prints with --latency:
//
//	  Latency Distribution
//	     50%  812.00us
//	     99%   10.20ms
//	  321337 requests in 8.00s, 40.45MB read
//	  Non-2xx or 3xx responses: 321337
//	  Socket errors: connect 0, read 0, write 0, timeout 12
//	Requests/sec:  40166.21
func parseWrk(out string) (*loadResult, error) {
	r := &loadResult{}
	var seen struct{ p50, p99, reqs, rps bool }
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return nil, err
			}
			if f[0] == "50%" {
				r.P50us, seen.p50 = micros(d), true
			} else {
				r.P99us, seen.p99 = micros(d), true
			}
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: requests %q", errWrkOutput, f[0])
			}
			d, err := parseWrkDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return nil, err
			}
			r.Requests, r.Seconds, seen.reqs = n, d.Seconds(), true
		case strings.HasPrefix(line, "  Non-2xx or 3xx responses:"):
			n, err := strconv.ParseUint(f[len(f)-1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: non-2xx %q", errWrkOutput, f[len(f)-1])
			}
			r.Non2xx3xx = n
		case len(f) > 2 && f[0] == "Socket" && f[1] == "errors:":
			// "connect 0, read 0, write 0, timeout 12"
			for i := 2; i+1 < len(f); i += 2 {
				n, err := strconv.ParseUint(strings.TrimSuffix(f[i+1], ","), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("%w: socket errors %q", errWrkOutput, line)
				}
				r.SocketErrors += n
			}
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return nil, fmt.Errorf("%w: requests/sec %q", errWrkOutput, f[1])
			}
			r.RPS, seen.rps = v, true
		}
	}
	if !seen.p50 || !seen.p99 || !seen.reqs || !seen.rps {
		return nil, fmt.Errorf("%w: no latency distribution, request count or rate (run with --latency)", errWrkOutput)
	}
	return r, nil
}

// parseWrkDuration reads wrk's durations: "812.00us", "10.20ms", "8.00s",
// "1.00m", "1.00h".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || v < 0 {
			break
		}
		return time.Duration(v * float64(u.unit)), nil
	}
	return 0, fmt.Errorf("%w: duration %q", errWrkOutput, s)
}

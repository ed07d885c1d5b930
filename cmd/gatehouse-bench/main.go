// Command gatehouse-bench is Gatehouse's load harness. On one machine it
// starts its own redis-server, a fast upstream, a bare httputil.ReverseProxy
// (the ceiling a Go proxy reaches here) and the gateway built from this
// tree, then measures what the gateway costs over the bare proxy: requests
// per second, latency percentiles, CPU per request, memory and Redis
// commands per request. Other modes probe idle connections, a full session
// store, a login flood, store and upstream faults, and a soak; the peers
// mode puts the gateway beside nginx, Caddy and oauth2-proxy under wrk.
//
// Everything runs on loopback; every child process is killed on exit.
//
//	go run ./cmd/gatehouse-bench [-mode ratio|conns|sessions|flood|regflood|faults|soak|peers] [-c 32] [-d 5s] [-quick]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role, os.Args[1:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse-bench:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// options are the command-line flags.
type options struct {
	mode        string
	conc        int
	dur         time.Duration
	warmup      time.Duration
	quick       bool
	rate        float64
	openWorkers int
	out         string
	gatewayBin  string
	src         string
	redisBin    string
	noGateway   bool
	loginCost   int
	floodConc   int
	sessions    int
	conns       int
	timeout     time.Duration
	keep        bool
	jsonOut     bool
	// peers mode
	rounds         int
	threads        int
	loadGen        string
	wrkBin         string
	nginxBin       string
	caddyBin       string
	oauth2ProxyBin string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("gatehouse-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.mode, "mode", "ratio", "ratio | conns | sessions | flood | regflood | faults | soak | peers")
	fs.IntVar(&o.conc, "c", 32, "concurrent closed-loop clients (peers: wrk connections, default 50)")
	fs.DurationVar(&o.dur, "d", 5*time.Second, "measured duration per case (soak: whole run, default 60s; peers: per row and round, default 8s)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each case")
	fs.BoolVar(&o.quick, "quick", false, "a few seconds per case, small sizes (CI: checks the harness runs)")
	fs.Float64Var(&o.rate, "rate", 0, "open-loop rate in requests/s (0 = half the bare proxy's closed-loop rate)")
	fs.IntVar(&o.openWorkers, "open-workers", 256, "open loop: most requests in flight")
	fs.StringVar(&o.out, "out", filepath.Join("bench-results", "bench.json"), "JSON results file")
	fs.StringVar(&o.gatewayBin, "gateway", "", "prebuilt gateway binary (default: go build ./cmd/gatehouse from -src)")
	fs.StringVar(&o.src, "src", "", "module root to build the gateway from (default: the go.mod above the working directory)")
	fs.StringVar(&o.redisBin, "redis-server", "redis-server", "redis-server binary")
	fs.BoolVar(&o.noGateway, "no-gateway", false, "ratio mode: measure only the direct upstream and the bare proxy")
	fs.IntVar(&o.loginCost, "login-cost", 10, "flood and regflood modes: the gateway's bcrypt_cost")
	fs.IntVar(&o.floodConc, "flood-c", 64, "flood mode: concurrent wrong-password logins; regflood mode: concurrent registrations")
	fs.IntVar(&o.sessions, "sessions", 1_000_000, "sessions mode: sessions to load")
	fs.IntVar(&o.conns, "conns", 10_000, "conns mode: idle keep-alive connections")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "client timeout per request")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary folder (configuration, gateway, redis and upstream logs)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the results as JSON on stdout instead of the table (the -out file is written either way)")
	fs.IntVar(&o.rounds, "rounds", 3, "peers, and ratio's hot-path rows: interleaved rounds over every row")
	fs.IntVar(&o.threads, "t", 2, "peers: wrk threads")
	fs.StringVar(&o.loadGen, "loadgen", "wrk", "peers: wrk | self (the harness's own closed loop, in a process of its own; also used when wrk is missing)")
	fs.StringVar(&o.wrkBin, "wrk", "", "peers: wrk binary (default: wrk on the PATH)")
	fs.StringVar(&o.nginxBin, "nginx", "", "peers: nginx binary (default: nginx on the PATH or in /usr/sbin)")
	fs.StringVar(&o.caddyBin, "caddy", "", "peers: caddy binary (default: caddy on the PATH)")
	fs.StringVar(&o.oauth2ProxyBin, "oauth2-proxy", "", "peers: oauth2-proxy binary (default: go install "+oauth2ProxyModule+"@"+oauth2ProxyVersion+", cached)")
	if err := fs.Parse(args); err != nil {
		return nil, errUsage
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.mode == "soak" && !set["d"] {
		o.dur = 60 * time.Second
	}
	if o.mode == "peers" {
		if !set["d"] {
			o.dur = 8 * time.Second
		}
		if !set["c"] {
			o.conc = 50
		}
	}
	if o.quick {
		if !set["d"] {
			o.dur = time.Second
			if o.mode == "soak" {
				o.dur = 10 * time.Second
			}
		}
		if !set["warmup"] {
			o.warmup = 200 * time.Millisecond
		}
		if !set["sessions"] {
			o.sessions = 20_000
		}
		if !set["conns"] {
			o.conns = 1000
		}
		if !set["rounds"] {
			o.rounds = 1
		}
	}
	switch o.mode {
	case "ratio", "conns", "sessions", "flood", "regflood", "faults", "soak", "peers":
	default:
		return nil, fmt.Errorf("%w: unknown -mode %q", errUsage, o.mode)
	}
	if o.conc < 1 || o.dur <= 0 || o.openWorkers < 1 || o.loginCost < 4 || o.loginCost > 31 {
		return nil, fmt.Errorf("%w: -c, -d and -open-workers must be positive, -login-cost 4..31", errUsage)
	}
	if o.rounds < 1 || o.threads < 1 || o.threads > o.conc || (o.loadGen != "wrk" && o.loadGen != "self") {
		return nil, fmt.Errorf("%w: -rounds must be positive, -t between 1 and -c, -loadgen wrk or self", errUsage)
	}
	if o.noGateway && o.mode != "ratio" {
		return nil, fmt.Errorf("%w: -no-gateway is for -mode ratio", errUsage)
	}
	return o, nil
}

// report is the JSON file and the source of the printed table.
type report struct {
	Mode        string          `json:"mode"`
	Started     time.Time       `json:"started"`
	GoVersion   string          `json:"go_version"`
	NumCPU      int             `json:"num_cpu"`
	Concurrency int             `json:"concurrency"`
	Duration    string          `json:"duration_per_case"`
	Quick       bool            `json:"quick"`
	LoadStart   float64         `json:"loadavg_1m_start"`
	LoadEnd     float64         `json:"loadavg_1m_end"`
	Notes       []string        `json:"notes"`
	Cases       []*caseResult   `json:"cases,omitempty"`
	Ratios      *ratios         `json:"ratios,omitempty"`
	HotPath     *hotPathResult  `json:"hot_path,omitempty"`
	OpenLoop    []*caseResult   `json:"open_loop,omitempty"`
	Conns       *connsResult    `json:"conns,omitempty"`
	Sessions    *sessionsResult `json:"sessions,omitempty"`
	Flood       *floodResult    `json:"flood,omitempty"`
	RegFlood    *regFloodResult `json:"regflood,omitempty"`
	Faults      *faultsResult   `json:"faults,omitempty"`
	Soak        *soakResult     `json:"soak,omitempty"`
	Peers       *peersResult    `json:"peers,omitempty"`
	Failures    []string        `json:"failures,omitempty"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	rep := &report{
		Mode: o.mode, Started: time.Now().UTC(), GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
		Concurrency: o.conc, Duration: o.dur.String(), Quick: o.quick,
	}
	rep.LoadStart = loadAvg()
	rep.Notes = append(rep.Notes, fmt.Sprintf(
		"one machine, %d CPUs: load generator, gateway, bare proxy, upstream and redis share them; compare ratios, not absolute figures across machines",
		runtime.NumCPU()))
	b, err := newBench(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	// A signal cancels ctx; the deferred close still kills every child.
	switch o.mode {
	case "ratio":
		err = b.ratioMode(ctx, rep)
	case "conns":
		err = b.connsMode(ctx, rep)
	case "sessions":
		err = b.sessionsMode(ctx, rep)
	case "flood":
		err = b.floodMode(ctx, rep)
	case "regflood":
		err = b.regFloodMode(ctx, rep)
	case "faults":
		err = b.faultsMode(ctx, rep)
	case "soak":
		err = b.soakMode(ctx, rep)
	case "peers":
		err = b.peersMode(ctx, rep)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", o.mode, err)
	}
	rep.LoadEnd = loadAvg()
	if busy := max(rep.LoadStart, rep.LoadEnd); busy > float64(runtime.NumCPU()) {
		rep.Notes = append(rep.Notes, fmt.Sprintf(
			"BUSY MACHINE: 1-minute load average %.1f on %d CPUs: other work skewed these figures", busy, runtime.NumCPU()))
	}
	if o.jsonOut {
		if err := encodeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, rep)
	}
	if err := writeJSON(o.out, rep); err != nil {
		return err
	}
	if !o.jsonOut {
		fmt.Fprintf(stdout, "\nresults: %s\n", o.out)
	}
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d invariant(s) failed", len(rep.Failures))
	}
	return nil
}

// encodeJSON writes the report as indented JSON.
func encodeJSON(w io.Writer, rep *report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func writeJSON(path string, rep *report) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("results folder: %w", err)
		}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

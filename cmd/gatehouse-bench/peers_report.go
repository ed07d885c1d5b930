package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// peersResult is the peers mode's part of the report.
type peersResult struct {
	LoadGen     string       `json:"load_generator"`
	Rounds      int          `json:"rounds"`
	Connections int          `json:"connections"`
	Threads     int          `json:"threads"`
	Duration    string       `json:"duration_per_row"`
	Rows        []*peerRow   `json:"rows"`
	Ratios      []*peerRatio `json:"ratios"`
}

// peerRow is one target over every round, and its medians.
type peerRow struct {
	Name    string        `json:"name"`
	Label   string        `json:"label"`
	Expect  int           `json:"expected_status"`
	Skipped string        `json:"skipped,omitempty"`
	Rounds  []*peerSample `json:"rounds,omitempty"`
	// Median holds each figure's median over the rounds (figure by
	// figure, so its fields may come from different rounds).
	Median *peerSample `json:"median,omitempty"`
	// OverDirect is the median over the rounds of this row's throughput
	// divided by the direct row's in the same round.
	OverDirect float64 `json:"rps_over_direct,omitempty"`
}

// peerSample is one measured run of one row.
type peerSample struct {
	Round int `json:"round"`
	loadResult
	// Errors are answers other than the expected kind plus socket errors.
	Errors uint64 `json:"errors"`
	// ProxyCPUus is the CPU of the process under test (with its child
	// processes: nginx's workers) per request; 0 for the direct row.
	ProxyCPUus    float64 `json:"proxy_cpu_us_per_req"`
	UpstreamCPUus float64 `json:"upstream_cpu_us_per_req"`
	RedisCPUus    float64 `json:"redis_cpu_us_per_req"`
	RedisCmds     float64 `json:"redis_cmds_per_req"`
	// UpstreamConns are the connections the upstream accepted per
	// request: 0 for a proxy that keeps its connections alive.
	UpstreamConns float64 `json:"upstream_new_conns_per_req"`
}

// newPeerSample does a row's arithmetic: every cost per request.
func newPeerSample(lr *loadResult, expect int, proxyCPU, upCPU, redisCPU time.Duration, redisCmds, accepts uint64) *peerSample {
	s := &peerSample{loadResult: *lr}
	n := lr.Requests
	if expect >= 200 && expect <= 399 {
		s.Errors = lr.Non2xx3xx
	} else {
		s.Errors = n - min(n, lr.Non2xx3xx)
	}
	s.Errors += lr.SocketErrors
	s.ProxyCPUus = perRequestMicros(proxyCPU, n)
	s.UpstreamCPUus = perRequestMicros(upCPU, n)
	s.RedisCPUus = perRequestMicros(redisCPU, n)
	s.RedisCmds = ratio(float64(redisCmds), float64(n))
	s.UpstreamConns = ratio(float64(accepts), float64(n))
	return s
}

// peerRatio is one comparison, per round (both rows measured in the same
// round) and its median.
type peerRatio struct {
	Name     string    `json:"name"`
	PerRound []float64 `json:"per_round"`
	Median   float64   `json:"median"`
}

// peerComparisons are the ratios the report prints: numerator row,
// denominator row, and whether it compares throughput or CPU per request.
var peerComparisons = []struct {
	num, den string
	cpu      bool
}{
	{"gatehouse-session", "oauth2-proxy", false},
	{"gatehouse-session", "oauth2-proxy-log", false},
	{"gatehouse-session", "oauth2-proxy", true},
	{"gatehouse-session", "oauth2-proxy-log", true},
	{"gatehouse-session", "bare-proxy", false},
	{"gatehouse-session", "bare-proxy", true},
	{"gatehouse-public", "bare-proxy", false},
	{"gatehouse-session", "nginx", false},
	{"gatehouse-session", "caddy", false},
}

// summarize fills each row's medians and its ratio to the direct row, and
// the comparisons between rows, from the rounds measured.
func (p *peersResult) summarize() {
	byName := map[string]*peerRow{}
	for _, r := range p.Rows {
		byName[r.Name] = r
		if len(r.Rounds) > 0 {
			r.Median = medianSample(r.Rounds)
		}
	}
	if d := byName["direct"]; d != nil {
		for _, r := range p.Rows {
			if len(r.Rounds) > 0 {
				r.OverDirect = median(pairRatios(r, d, false))
			}
		}
	}
	p.Ratios = nil
	for _, c := range peerComparisons {
		num, den := byName[c.num], byName[c.den]
		if num == nil || den == nil || len(num.Rounds) == 0 || len(den.Rounds) == 0 {
			continue
		}
		name := fmt.Sprintf("%s / %s throughput", c.num, c.den)
		if c.cpu {
			name = fmt.Sprintf("%s / %s proxy CPU per request", c.num, c.den)
		}
		pr := pairRatios(num, den, c.cpu)
		p.Ratios = append(p.Ratios, &peerRatio{Name: name, PerRound: pr, Median: median(pr)})
	}
}

// pairRatios divides num's figure by den's, round by round.
func pairRatios(num, den *peerRow, cpu bool) []float64 {
	var out []float64
	for _, a := range num.Rounds {
		for _, b := range den.Rounds {
			if a.Round != b.Round {
				continue
			}
			if cpu {
				out = append(out, ratio(a.ProxyCPUus, b.ProxyCPUus))
			} else {
				out = append(out, ratio(a.RPS, b.RPS))
			}
		}
	}
	return out
}

// medianSample takes each figure's median over the rounds.
func medianSample(rounds []*peerSample) *peerSample {
	pick := func(f func(*peerSample) float64) float64 {
		v := make([]float64, len(rounds))
		for i, s := range rounds {
			v[i] = f(s)
		}
		return median(v)
	}
	m := &peerSample{}
	m.RPS = pick(func(s *peerSample) float64 { return s.RPS })
	m.P50us = pick(func(s *peerSample) float64 { return s.P50us })
	m.P99us = pick(func(s *peerSample) float64 { return s.P99us })
	m.ProxyCPUus = pick(func(s *peerSample) float64 { return s.ProxyCPUus })
	m.UpstreamCPUus = pick(func(s *peerSample) float64 { return s.UpstreamCPUus })
	m.RedisCPUus = pick(func(s *peerSample) float64 { return s.RedisCPUus })
	m.RedisCmds = pick(func(s *peerSample) float64 { return s.RedisCmds })
	m.UpstreamConns = pick(func(s *peerSample) float64 { return s.UpstreamConns })
	m.CPUus = pick(func(s *peerSample) float64 { return s.CPUus })
	for _, s := range rounds {
		m.Requests += s.Requests
		m.Errors += s.Errors
		m.Seconds += s.Seconds
	}
	return m
}

// median of v; the mean of the middle two for an even count, 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// printPeers writes the peers table: medians over the rounds, and each
// round's throughput so the spread shows.
func printPeers(w io.Writer, p *peersResult) {
	fmt.Fprintf(w, "\npeers: %s, %s per row, %d interleaved rounds; medians over the rounds\n", p.LoadGen, p.Duration, p.Rounds)
	tw := newTable(w)
	fmt.Fprintln(tw, "row\treq/s\treq/s per round\tp50 ms\tp99 ms\tproxy µs/req\tupstream µs/req\tredis µs/req\tredis cmd/req\tupstream conns/req\t/ direct\terrors (all rounds)\t")
	for _, r := range p.Rows {
		if r.Median == nil {
			fmt.Fprintf(tw, "%s\tskipped\t\t\t\t\t\t\t\t\t\t\t\n", r.Name)
			continue
		}
		m := r.Median
		per := make([]string, len(r.Rounds))
		for i, s := range r.Rounds {
			per[i] = fmt.Sprintf("%.0f", s.RPS)
		}
		proxy := "-"
		if r.Name != "direct" {
			proxy = fmt.Sprintf("%.1f", m.ProxyCPUus)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.2f\t%.2f\t%s\t%.1f\t%.1f\t%.2f\t%.4f\t%.2f\t%d\t\n",
			r.Name, m.RPS, strings.Join(per, " / "), m.P50us/1e3, m.P99us/1e3, proxy, m.UpstreamCPUus,
			m.RedisCPUus, m.RedisCmds, m.UpstreamConns, r.OverDirect, m.Errors)
	}
	_ = tw.Flush()
	if len(p.Ratios) > 0 {
		fmt.Fprintln(w)
	}
	for _, r := range p.Ratios {
		per := make([]string, len(r.PerRound))
		for i, v := range r.PerRound {
			per[i] = fmt.Sprintf("%.2f", v)
		}
		fmt.Fprintf(w, "%-62s %5.2f  (rounds: %s)\n", r.Name+":", r.Median, strings.Join(per, ", "))
	}
	fmt.Fprintf(w, "\nas markdown:\n\n%s", markdownPeers(p))
}

// markdownPeers renders the table for the README: one line per row.
func markdownPeers(p *peersResult) string {
	var b strings.Builder
	b.WriteString("| target | req/s (median; rounds) | p50 ms | p99 ms | CPU/req of the proxy | upstream CPU/req | Redis CPU/req | Redis cmds/req | new upstream conns/req | / direct |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range p.Rows {
		if r.Median == nil {
			fmt.Fprintf(&b, "| %s | skipped | | | | | | | | |\n", r.Label)
			continue
		}
		m := r.Median
		per := make([]string, len(r.Rounds))
		for i, s := range r.Rounds {
			per[i] = fmt.Sprintf("%.0f", s.RPS)
		}
		proxy := "-"
		if r.Name != "direct" {
			proxy = fmt.Sprintf("%.0f µs", m.ProxyCPUus)
		}
		fmt.Fprintf(&b, "| %s | %.0f (%s) | %.2f | %.2f | %s | %.0f µs | %.0f µs | %.2f | %.3f | %.2f |\n",
			r.Label, m.RPS, strings.Join(per, ", "), m.P50us/1e3, m.P99us/1e3, proxy, m.UpstreamCPUus,
			m.RedisCPUus, m.RedisCmds, m.UpstreamConns, r.OverDirect)
	}
	return b.String()
}

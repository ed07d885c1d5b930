package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// hotPathResult is the ratio mode's Part 2 rows: gateway-auth and each
// feature on the authenticated request, over interleaved rounds.
type hotPathResult struct {
	Rounds int           `json:"rounds"`
	Rows   []*hotPathRow `json:"rows"`
	// Noise is how far gateway-auth's own rounds strayed from their
	// median throughput, as a fraction of it (0 with one round): a row
	// whose ratio to gateway-auth is no further below 1 than this is
	// within noise.
	Noise float64 `json:"gateway_auth_rps_noise"`
}

// hotPathRow is one row over every round.
type hotPathRow struct {
	Name   string        `json:"name"`
	Label  string        `json:"label"`
	Rounds []*caseResult `json:"rounds"`
	// Median holds each figure's median over the rounds (figure by
	// figure); counts are summed.
	Median *caseResult `json:"median,omitempty"`
	// RPSOverAuth and CPUOverAuth divide this row's throughput and
	// gateway CPU per request by gateway-auth's of the same round.
	RPSOverAuth       []float64 `json:"rps_over_gateway_auth_per_round,omitempty"`
	RPSOverAuthMedian float64   `json:"rps_over_gateway_auth,omitempty"`
	CPUOverAuth       []float64 `json:"cpu_over_gateway_auth_per_round,omitempty"`
	CPUOverAuthMedian float64   `json:"cpu_over_gateway_auth,omitempty"`
	Goal              string    `json:"goal,omitempty"`
	// Verdict is "met", "not met", or why there is none.
	Verdict string `json:"verdict,omitempty"`
}

// summarize fills the medians, the ratios to gateway-auth round by round,
// the noise and each row's verdict.
func (hp *hotPathResult) summarize() {
	var auth *hotPathRow
	for _, r := range hp.Rows {
		if len(r.Rounds) > 0 {
			r.Median = medianCase(r.Rounds)
		}
		if r.Name == rowAuth {
			auth = r
		}
	}
	if auth == nil || auth.Median == nil {
		return
	}
	hp.Noise = 0
	if len(auth.Rounds) > 1 && auth.Median.RPS > 0 {
		for _, c := range auth.Rounds {
			hp.Noise = math.Max(hp.Noise, math.Abs(c.RPS/auth.Median.RPS-1))
		}
	}
	for _, r := range hp.Rows {
		if r == auth || r.Median == nil {
			continue
		}
		r.RPSOverAuth, r.CPUOverAuth = nil, nil
		for _, c := range r.Rounds {
			for _, a := range auth.Rounds {
				if a.Round == c.Round {
					r.RPSOverAuth = append(r.RPSOverAuth, ratio(c.RPS, a.RPS))
					r.CPUOverAuth = append(r.CPUOverAuth, ratio(c.ServerCPUus, a.ServerCPUus))
				}
			}
		}
		r.RPSOverAuthMedian = median(r.RPSOverAuth)
		r.CPUOverAuthMedian = median(r.CPUOverAuth)
		r.Goal, r.Verdict = hp.verdict(r)
	}
}

// verdict checks a row's throughput ratio against its issue's goal: the
// assertion at least 0.9x, groups and tokens within noise (faster counts).
func (hp *hotPathResult) verdict(r *hotPathRow) (goal, verdict string) {
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}
	if r.Name == rowAssertion {
		return fmt.Sprintf(">= %.2fx", minAssertionRatio), met(r.RPSOverAuthMedian >= minAssertionRatio)
	}
	if hp.Rounds < 2 || len(r.RPSOverAuth) < 2 {
		return "within noise", "no noise estimate (one round)"
	}
	low := 1 - hp.Noise
	return fmt.Sprintf("within noise (>= %.2fx)", low), met(r.RPSOverAuthMedian >= low)
}

// medianCase takes each figure's median over the rounds; counts are summed
// and the max is the largest seen.
func medianCase(rounds []*caseResult) *caseResult {
	pick := func(f func(*caseResult) float64) float64 {
		v := make([]float64, len(rounds))
		for i, c := range rounds {
			v[i] = f(c)
		}
		return median(v)
	}
	first := rounds[0]
	m := &caseResult{
		Name: first.Name, Target: first.Target, Loop: first.Loop, Expect: first.Expect,
		Statuses:    map[string]uint64{},
		RPS:         pick(func(c *caseResult) float64 { return c.RPS }),
		P50us:       pick(func(c *caseResult) float64 { return c.P50us }),
		P90us:       pick(func(c *caseResult) float64 { return c.P90us }),
		P99us:       pick(func(c *caseResult) float64 { return c.P99us }),
		MeanUs:      pick(func(c *caseResult) float64 { return c.MeanUs }),
		ServerCPUus: pick(func(c *caseResult) float64 { return c.ServerCPUus }),
		RedisCPUus:  pick(func(c *caseResult) float64 { return c.RedisCPUus }),
		RedisCmds:   pick(func(c *caseResult) float64 { return c.RedisCmds }),
	}
	for _, c := range rounds {
		m.Requests += c.Requests
		m.Errors += c.Errors
		m.Seconds += c.Seconds
		m.MaxUs = math.Max(m.MaxUs, c.MaxUs)
		for k, n := range c.Statuses {
			m.Statuses[k] += n
		}
		for k, n := range c.ErrKinds {
			if m.ErrKinds == nil {
				m.ErrKinds = map[string]uint64{}
			}
			m.ErrKinds[k] += n
		}
		for k, n := range c.RedisCalls {
			if m.RedisCalls == nil {
				m.RedisCalls = map[string]uint64{}
			}
			m.RedisCalls[k] += n
		}
		if c.Gateway != nil {
			m.Gateway = c.Gateway
		}
	}
	return m
}

// budgetFailures lists every round of a row that did not cost exactly one
// Redis command per request (to two decimals, as the table prints it):
// groups, tokens and the assertion must add none to the session's one.
func budgetFailures(hp *hotPathResult) []string {
	var out []string
	for _, r := range hp.Rows {
		for _, c := range r.Rounds {
			if got := fmt.Sprintf("%.2f", c.RedisCmds); got != "1.00" {
				out = append(out, fmt.Sprintf("%s round %d: %s Redis commands per request, want 1.00 (%s)",
					r.Name, c.Round, got, formatCalls(c.RedisCalls, c.Requests)))
			}
		}
	}
	return out
}

// printHotPath writes the hot-path table, the ratios and the markdown.
func printHotPath(w io.Writer, hp *hotPathResult) {
	fmt.Fprintf(w, "\nPart 2 features on the hot path: %d interleaved round(s), medians; gateway-auth's rounds within ±%.1f%% of their median\n",
		hp.Rounds, hp.Noise*100)
	tw := newTable(w)
	fmt.Fprintln(tw, "row\treq/s\treq/s per round\tp50 µs\tp99 µs\tgateway µs/req\tredis cmd/req\t/ auth req/s\tper round\t/ auth CPU\tgoal\tverdict\t")
	for _, r := range hp.Rows {
		m := r.Median
		if m == nil {
			continue
		}
		over, per, cpu := "-", "-", "-"
		if r.Name != rowAuth {
			over = fmt.Sprintf("%.2f", r.RPSOverAuthMedian)
			per = joinFloats(r.RPSOverAuth, "%.2f", " / ")
			cpu = fmt.Sprintf("%.2f", r.CPUOverAuthMedian)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.0f\t%.0f\t%.1f\t%.2f\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Name, m.RPS, joinFloats(roundRPS(r), "%.0f", " / "), m.P50us, m.P99us, m.ServerCPUus, m.RedisCmds,
			over, per, cpu, dash(r.Goal), dash(r.Verdict))
	}
	_ = tw.Flush()
	for _, r := range hp.Rows {
		if r.Median != nil && r.Median.RedisCalls != nil {
			fmt.Fprintf(w, "redis commands on %s: %s\n", r.Name, formatCalls(r.Median.RedisCalls, r.Median.Requests))
		}
	}
	fmt.Fprintf(w, "\nas markdown:\n\n%s", markdownHotPath(hp))
}

// markdownHotPath renders the hot-path table for the README.
func markdownHotPath(hp *hotPathResult) string {
	var b strings.Builder
	b.WriteString("| row | what it runs | req/s (median; rounds) | p50 ms | p99 ms | gateway CPU/req | Redis cmds/req | / gateway-auth req/s (median; rounds) | / gateway-auth CPU/req |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range hp.Rows {
		m := r.Median
		if m == nil {
			continue
		}
		over, cpu := "1.00", "1.00"
		if r.Name != rowAuth {
			over = fmt.Sprintf("%.2f (%s)", r.RPSOverAuthMedian, joinFloats(r.RPSOverAuth, "%.2f", ", "))
			cpu = fmt.Sprintf("%.2f", r.CPUOverAuthMedian)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %.0f (%s) | %.2f | %.2f | %.0f µs | %.2f | %s | %s |\n",
			r.Name, r.Label, m.RPS, joinFloats(roundRPS(r), "%.0f", ", "), m.P50us/1e3, m.P99us/1e3,
			m.ServerCPUus, m.RedisCmds, over, cpu)
	}
	return b.String()
}

func roundRPS(r *hotPathRow) []float64 {
	v := make([]float64, len(r.Rounds))
	for i, c := range r.Rounds {
		v[i] = c.RPS
	}
	return v
}

func joinFloats(v []float64, format, sep string) string {
	parts := make([]string, len(v))
	for i, f := range v {
		parts[i] = fmt.Sprintf(format, f)
	}
	return strings.Join(parts, sep)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

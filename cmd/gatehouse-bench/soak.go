package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// soakResult is the soak's samples and trends.
type soakResult struct {
	Interval string       `json:"sample_interval"`
	Samples  []soakSample `json:"samples"`
	// Slopes are least-squares fits over the samples after the first
	// (which includes start-up), per minute.
	RSSSlopeKBPerMin      float64 `json:"rss_slope_kb_per_min"`
	GoroutineSlopePerMin  float64 `json:"goroutine_slope_per_min"`
	RedisMemSlopeKBPerMin float64 `json:"redis_used_memory_slope_kb_per_min"`
	Errors                uint64  `json:"unexpected_answers"`
	Requests              uint64  `json:"requests"`
}

// soakSample is one interval of the soak.
type soakSample struct {
	AtSeconds  float64                   `json:"at_s"`
	Requests   uint64                    `json:"requests"`
	RPS        float64                   `json:"rps"`
	Errors     uint64                    `json:"unexpected_answers"`
	RSSKB      int64                     `json:"gateway_rss_kb"`
	Goroutines int                       `json:"gateway_goroutines"`
	RedisMemKB int64                     `json:"redis_used_memory_kb"`
	Classes    map[string]*outcomeCounts `json:"classes"`
}

// soakExpected is the one answer each soak class must get.
var soakExpected = map[string]string{"auth": "200", "unauth": "401", "public": "200", "login-cycle": "200"}

func (b *bench) soakMode(ctx context.Context, rep *report) error {
	interval := 5 * time.Second
	if b.opt.quick {
		interval = 2 * time.Second
	}
	res := &soakResult{Interval: interval.String()}
	rep.Soak = res
	rep.Notes = append(rep.Notes, "mixed load: authenticated, unauthenticated (401) and public GETs, plus one client looping login, /me, logout (bcrypt_cost 4)")
	n := max(b.opt.conc/4, 1)
	classes := []trafficClass{
		{name: "auth", workers: 2*n - 1, method: http.MethodGet, url: b.gw.base + "/app", header: b.authHeader()},
		{name: "unauth", workers: n, method: http.MethodGet, url: b.gw.base + "/app"},
		{name: "public", workers: n, method: http.MethodGet, url: b.gw.base + "/public/x"},
		{name: "login-cycle", workers: 1, custom: loginCycle(b.gw.base, benchEmail, benchPassword)},
	}
	if classes[0].workers < 1 {
		classes[0].workers = 1
	}
	start := time.Now()
	load := startMixed(ctx, classes, b.opt.timeout)
	stopped := false
	defer func() {
		if !stopped {
			load.stop()
		}
	}()
	var marks []time.Time
	var mems []int64
	var gor []int
	var rmem []int64
	windows := max(int(b.opt.dur/interval), 1)
	for i := range windows {
		if err := sleepCtx(ctx, interval); err != nil {
			return err
		}
		if i+1 < windows {
			load.next()
		}
		marks = append(marks, time.Now())
		mems = append(mems, b.gw.mem().RSSKB)
		g, _ := b.gw.goroutines(ctx)
		gor = append(gor, g)
		um, _ := b.redis.infoField(ctx, "memory", "used_memory")
		rmem = append(rmem, um/1024)
		b.gw.truncateLog() // a long soak must not fill the disk with request logs
		fmt.Fprintf(b.log, "  %3.0fs  rss %d kB  goroutines %d\n", time.Since(start).Seconds(), mems[i], g)
	}
	counts := load.stop()
	stopped = true
	prev := start
	var xs, rss, gs, rm []float64
	for i := range windows {
		s := soakSample{
			AtSeconds: marks[i].Sub(start).Seconds(), RSSKB: mems[i], Goroutines: gor[i], RedisMemKB: rmem[i],
			Classes: load.byClass(counts[i]),
		}
		for name, oc := range s.Classes {
			s.Requests += oc.Requests
			for k, c := range oc.Outcomes {
				if k != soakExpected[name] {
					s.Errors += c
				}
			}
		}
		s.RPS = float64(s.Requests) / marks[i].Sub(prev).Seconds()
		prev = marks[i]
		res.Samples = append(res.Samples, s)
		res.Errors += s.Errors
		res.Requests += s.Requests
		if i > 0 || windows == 1 {
			xs = append(xs, s.AtSeconds/60)
			rss = append(rss, float64(s.RSSKB))
			gs = append(gs, float64(s.Goroutines))
			rm = append(rm, float64(s.RedisMemKB))
		}
	}
	res.RSSSlopeKBPerMin = slope(xs, rss)
	res.GoroutineSlopePerMin = slope(xs, gs)
	res.RedisMemSlopeKBPerMin = slope(xs, rm)
	if res.Errors > 0 {
		for i, s := range res.Samples {
			for name, oc := range s.Classes {
				if len(oc.Outcomes) > 1 || (len(oc.Outcomes) == 1 && oc.Outcomes[soakExpected[name]] == 0) {
					rep.Failures = append(rep.Failures, fmt.Sprintf("sample %d %s: %s", i, name, formatOutcomes(oc.Outcomes)))
				}
			}
		}
	}
	return nil
}

// slope is the least-squares slope of y over x (0 with fewer than two
// distinct x).
func slope(x, y []float64) float64 {
	n := float64(len(x))
	if len(x) < 2 || len(x) != len(y) {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
		sxx += x[i] * x[i]
		sxy += x[i] * y[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// histogram records latencies in nanoseconds in log-linear buckets: exact
// below 128 ns, then 64 buckets per power of two, so a reported percentile
// is at most 1/64 (1.6%) above the true value. Like HdrHistogram with two
// significant digits, it has a fixed size however long a run lasts, and one
// per worker merges without locks.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits // buckets per power of two
	histBuckets = 58 * histSub     // enough for any positive int64
)

func histIndex(v int64) int {
	if v < 2*histSub {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - (histSubBits + 1)
	return e*histSub + int(v>>e)
}

// histHigh is the largest value that lands in bucket i.
func histHigh(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	e := i/histSub - 1
	m := int64(i - e*histSub)
	return (m+1)<<e - 1
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	h.counts[histIndex(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// percentile returns the nearest-rank q-quantile (0 < q <= 1), rounded up to
// its bucket's upper edge and capped at the largest value seen.
func (h *histogram) percentile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := nearestRank(q, h.n)
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			return time.Duration(min(histHigh(i), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// nearestRank is the 1-based rank of the q-quantile among n sorted values.
func nearestRank(q float64, n uint64) uint64 {
	r := uint64(math.Ceil(q * float64(n)))
	return min(max(r, 1), n)
}

// exactPercentile is the nearest-rank q-quantile of a sample; it is what the
// histogram approximates, and what the tests compare it with.
func exactPercentile(sample []time.Duration, q float64) time.Duration {
	if len(sample) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), sample...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[nearestRank(q, uint64(len(s)))-1]
}

// ratio is a/b, or 0 when b is 0 (a case that did not run).
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// loadSpec is one load case: a request sent over and over.
type loadSpec struct {
	name    string
	method  string
	url     string
	header  http.Header
	body    string
	expect  int // the status that counts as success
	conc    int
	warmup  time.Duration
	dur     time.Duration
	timeout time.Duration // per request
}

// loadStats is what one run of a loadSpec measured.
type loadStats struct {
	hist     histogram
	requests uint64
	errors   uint64 // transport errors and unexpected statuses
	statuses map[int]uint64
	errKinds map[string]uint64
	elapsed  time.Duration
}

// newClient returns a keep-alive client with one idle connection per worker,
// so the closed loop never opens a connection after warm-up.
func newClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
		Timeout: timeout,
		// A redirect is an answer to measure, not to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type workerStats struct {
	hist     histogram
	statuses [600]uint64
	errKinds map[string]uint64
}

// do sends req once and records the answer; it reports whether the request
// failed without an answer (a transport error or timeout).
func (w *workerStats) do(client *http.Client, req *http.Request, body string, start time.Time) bool {
	if body != "" {
		req.Body = io.NopCloser(strings.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	resp, err := client.Do(req)
	if err != nil {
		w.hist.record(time.Since(start))
		if w.errKinds == nil {
			w.errKinds = map[string]uint64{}
		}
		w.errKinds[errKind(err)]++
		return true
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	w.hist.record(time.Since(start))
	if resp.StatusCode > 0 && resp.StatusCode < len(w.statuses) {
		w.statuses[resp.StatusCode]++
	}
	return false
}

func mergeWorkers(ws []*workerStats, expect int, elapsed time.Duration) *loadStats {
	s := &loadStats{statuses: map[int]uint64{}, errKinds: map[string]uint64{}, elapsed: elapsed}
	for _, w := range ws {
		s.hist.merge(&w.hist)
		for code, c := range w.statuses {
			if c == 0 {
				continue
			}
			s.statuses[code] += c
			s.requests += c
			if code != expect {
				s.errors += c
			}
		}
		for k, c := range w.errKinds {
			s.errKinds[k] += c
			s.requests += c
			s.errors += c
		}
	}
	return s
}

func newRequest(ctx context.Context, sp *loadSpec) (*http.Request, error) {
	method := sp.method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, sp.url, nil)
	if err != nil {
		return nil, fmt.Errorf("request for %s: %w", sp.name, err)
	}
	for k, v := range sp.header {
		req.Header[k] = v
	}
	return req, nil
}

// runClosed drives a closed loop: sp.conc workers each send the next request
// as soon as the previous answer is read. The warm-up is run and thrown away
// first; then before (if any) runs, the measured phase runs, and after runs.
func runClosed(ctx context.Context, client *http.Client, sp *loadSpec, before func()) (*loadStats, error) {
	if sp.warmup > 0 {
		if _, err := closedPhase(ctx, client, sp, sp.warmup); err != nil {
			return nil, err
		}
	}
	if before != nil {
		before()
	}
	return closedPhase(ctx, client, sp, sp.dur)
}

func closedPhase(ctx context.Context, client *http.Client, sp *loadSpec, d time.Duration) (*loadStats, error) {
	ws := make([]*workerStats, sp.conc)
	reqs := make([]*http.Request, sp.conc)
	for i := range ws {
		ws[i] = &workerStats{}
		r, err := newRequest(ctx, sp)
		if err != nil {
			return nil, err
		}
		reqs[i] = r
	}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Go(func() {
			w, req := ws[i], reqs[i]
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				if w.do(client, req, sp.body, t0) {
					// Do not spin on a refused connection.
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return mergeWorkers(ws, sp.expect, time.Since(start)), nil
}

// runOpen sends at a fixed rate whatever the answers do: request i is due at
// start + i/rate, and its latency is counted from that due time, so a stall
// shows up in every request it delayed (no coordinated omission). workers
// bounds the requests in flight; when all are busy, the next one starts late
// and its latency says so.
// Like runClosed, it runs a thrown-away warm-up first, then before.
func runOpen(ctx context.Context, client *http.Client, sp *loadSpec, rate float64, workers int, before func()) (*loadStats, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("open loop %s: rate must be positive", sp.name)
	}
	if sp.warmup > 0 {
		w := *sp
		w.warmup = 0
		w.dur = sp.warmup
		if _, err := openPhase(ctx, client, &w, rate, workers); err != nil {
			return nil, err
		}
	}
	if before != nil {
		before()
	}
	return openPhase(ctx, client, sp, rate, workers)
}

func openPhase(ctx context.Context, client *http.Client, sp *loadSpec, rate float64, workers int) (*loadStats, error) {
	interval := float64(time.Second) / rate
	total := int64(sp.dur.Seconds() * rate)
	var next atomic.Int64
	ws := make([]*workerStats, workers)
	reqs := make([]*http.Request, workers)
	for i := range ws {
		ws[i] = &workerStats{}
		r, err := newRequest(ctx, sp)
		if err != nil {
			return nil, err
		}
		reqs[i] = r
	}
	start := time.Now().Add(5 * time.Millisecond)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Go(func() {
			w, req := ws[i], reqs[i]
			for ctx.Err() == nil {
				k := next.Add(1) - 1
				if k >= total {
					return
				}
				due := start.Add(time.Duration(float64(k) * interval))
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				w.do(client, req, sp.body, due)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return mergeWorkers(ws, sp.expect, time.Since(start)), nil
}

// errKind names a transport error for the report without its variable text
// (addresses, ports), so equal failures count together.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "other transport error"
	}
}

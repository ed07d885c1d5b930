package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// trafficClass is one kind of client in a mixed load (faults, soak).
type trafficClass struct {
	name    string
	workers int
	method  string
	url     string
	header  http.Header
	// custom, when set, replaces the single request: it returns the first
	// unexpected status it met (or the expected one) or a transport error.
	custom func(ctx context.Context, c *http.Client) (int, error)
}

// outcomeCounts is what one class got in one window.
type outcomeCounts struct {
	Requests      uint64            `json:"requests"`
	Outcomes      map[string]uint64 `json:"outcomes"` // status code or transport error kind
	MaxLatencyMs  float64           `json:"max_latency_ms"`
	CookieCleared uint64            `json:"session_cookie_cleared,omitempty"`
}

func (o *outcomeCounts) add(key string, lat time.Duration, cleared bool) {
	if o.Outcomes == nil {
		o.Outcomes = map[string]uint64{}
	}
	o.Requests++
	o.Outcomes[key]++
	if ms := float64(lat.Microseconds()) / 1e3; ms > o.MaxLatencyMs {
		o.MaxLatencyMs = ms
	}
	if cleared {
		o.CookieCleared++
	}
}

func (o *outcomeCounts) merge(p *outcomeCounts) {
	for k, n := range p.Outcomes {
		if o.Outcomes == nil {
			o.Outcomes = map[string]uint64{}
		}
		o.Outcomes[k] += n
	}
	o.Requests += p.Requests
	o.MaxLatencyMs = max(o.MaxLatencyMs, p.MaxLatencyMs)
	o.CookieCleared += p.CookieCleared
}

// mixedLoad runs every class's workers in closed loops and files each
// answer under the window (fault phase, soak interval) current when it
// arrived.
type mixedLoad struct {
	classes []trafficClass
	client  *http.Client
	window  atomic.Int32
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	// counts[window][class]
	counts []map[int]*outcomeCounts
}

func startMixed(ctx context.Context, classes []trafficClass, timeout time.Duration) *mixedLoad {
	total := 0
	for _, c := range classes {
		total += c.workers
	}
	m := &mixedLoad{classes: classes, client: newClient(total, timeout)}
	ctx, m.cancel = context.WithCancel(ctx)
	for ci := range classes {
		for range classes[ci].workers {
			m.wg.Go(func() { m.worker(ctx, ci) })
		}
	}
	return m
}

func (m *mixedLoad) worker(ctx context.Context, ci int) {
	cl := &m.classes[ci]
	local := map[int]*outcomeCounts{}
	defer func() {
		m.mu.Lock()
		for w, oc := range local {
			for len(m.counts) <= w {
				m.counts = append(m.counts, map[int]*outcomeCounts{})
			}
			if m.counts[w][ci] == nil {
				m.counts[w][ci] = &outcomeCounts{}
			}
			m.counts[w][ci].merge(oc)
		}
		m.mu.Unlock()
	}()
	for ctx.Err() == nil {
		start := time.Now()
		status, cleared, err := m.send(ctx, cl)
		lat := time.Since(start)
		if ctx.Err() != nil {
			return // stopped by us: the answer was cut off, not the gateway's doing
		}
		// Filed under the window current when the answer came: a request
		// in flight when a fault began met that fault.
		w := int(m.window.Load())
		oc := local[w]
		if oc == nil {
			oc = &outcomeCounts{}
			local[w] = oc
		}
		if err != nil {
			oc.add(errKind(err), lat, false)
			time.Sleep(5 * time.Millisecond) // no spinning on a refused connection
			continue
		}
		oc.add(strconv.Itoa(status), lat, cleared)
	}
}

func (m *mixedLoad) send(ctx context.Context, cl *trafficClass) (status int, cookieCleared bool, err error) {
	if cl.custom != nil {
		s, err := cl.custom(ctx, m.client)
		return s, false, err
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, cl.url, nil)
	if err != nil {
		return 0, false, err
	}
	for k, v := range cl.header {
		req.Header[k] = v
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, false, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, clearsSessionCookie(resp), nil
}

// clearsSessionCookie reports whether an answer deletes the session cookie.
func clearsSessionCookie(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if c.Name == cookieName && (c.MaxAge < 0 || c.Value == "") {
			return true
		}
	}
	return false
}

// next moves the load to a new window and returns its index.
func (m *mixedLoad) next() int { return int(m.window.Add(1)) }

// stop ends every worker and returns counts[window][class].
func (m *mixedLoad) stop() []map[int]*outcomeCounts {
	m.cancel()
	m.wg.Wait()
	m.client.CloseIdleConnections()
	for len(m.counts) <= int(m.window.Load()) {
		m.counts = append(m.counts, map[int]*outcomeCounts{})
	}
	return m.counts
}

// byClass turns one window's counts into a map by class name.
func (m *mixedLoad) byClass(w map[int]*outcomeCounts) map[string]*outcomeCounts {
	out := map[string]*outcomeCounts{}
	for ci, cl := range m.classes {
		oc := w[ci]
		if oc == nil {
			oc = &outcomeCounts{Outcomes: map[string]uint64{}}
		}
		out[cl.name] = oc
	}
	return out
}

// loginCycle is the soak's session churn: log in, read /me, log out.
func loginCycle(base, email, password string) func(ctx context.Context, c *http.Client) (int, error) {
	body := `{"email":` + strconv.Quote(email) + `,"password":` + strconv.Quote(password) + `}`
	return func(ctx context.Context, c *http.Client) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/login", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, nil
		}
		var cookie string
		for _, ck := range resp.Cookies() {
			if ck.Name == cookieName {
				cookie = ck.Name + "=" + ck.Value
			}
		}
		for _, step := range []struct {
			method, path string
			want         int
		}{{http.MethodGet, "/me", http.StatusOK}, {http.MethodPost, "/logout", http.StatusNoContent}} {
			req, _ := http.NewRequestWithContext(ctx, step.method, base+step.path, nil)
			req.Header.Set("Cookie", cookie)
			req.Header.Set("Accept", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				return 0, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != step.want {
				return resp.StatusCode, nil
			}
		}
		return http.StatusOK, nil
	}
}

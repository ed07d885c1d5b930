package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/redistest"
)

// Helpers of the high-availability tests in ha_test.go.

const (
	// haClientTimeout is far above the gateway's ~1s store deadlines: a
	// request that hits it means the gateway hung, which is what these
	// tests are there to catch.
	haClientTimeout = 10 * time.Second
	// haRecoverWait bounds how long a store may take to serve again after
	// it is back (failover done, server resumed or restarted).
	haRecoverWait = 15 * time.Second
	haPassword    = "correct horse battery"
)

// haConfig is a gateway on the given redis: block (indented under
// "redis:") with a public /public/ route, everything else authenticated,
// and the builtin echo upstream.
func haConfig(redisBlock, keyPrefix string) string {
	return fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
redis:
  key_prefix: %q
%s
upstreams:
  demo: builtin:echo
routes:
  - path: /public/
    policy: public
  - path: /
    policy: authenticated
auth:
  registration: open
  bcrypt_cost: 4
session:
  cookie_secure: false
`, keyPrefix, redisBlock)
}

// yamlList renders addrs as a YAML flow sequence.
func yamlList(addrs []string) string {
	q := make([]string, len(addrs))
	for i, a := range addrs {
		q[i] = fmt.Sprintf("%q", a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// plainClient has no cookie jar (each request names its cookie), does not
// follow redirects and gives up after haClientTimeout.
func plainClient() *http.Client {
	return &http.Client{
		Timeout: haClientTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// haResult is one answer of the gateway.
type haResult struct {
	status     int
	setCookies []string
	body       string
	elapsed    time.Duration
}

// get sends GET url with cookie ("" = none). It returns an error instead of
// failing the test so that traffic goroutines can use it.
func get(c *http.Client, url, cookie string) (haResult, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return haResult{}, err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return haResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return haResult{}, err
	}
	return haResult{status: resp.StatusCode, setCookies: resp.Header.Values("Set-Cookie"), body: string(b), elapsed: time.Since(start)}, nil
}

// mustGet is get that fails the test on a transport error (a hang included).
func mustGet(t *testing.T, c *http.Client, url, cookie string) haResult {
	t.Helper()
	r, err := get(c, url, cookie)
	if err != nil {
		t.Fatalf("GET %s: %v (the gateway must answer within %v)", url, err, haClientTimeout)
	}
	return r
}

// touchesCookie reports a Set-Cookie for the session cookie (a clearing one
// above all): a request that carried a valid session must never get one
// from a proxied route.
func touchesCookie(setCookies []string) bool {
	for _, sc := range setCookies {
		if strings.HasPrefix(sc, "gatehouse_session=") {
			return true
		}
	}
	return false
}

// registerCookie registers email through the gateway and returns the
// session cookie as "name=value", and the user id.
func registerCookie(t *testing.T, g *testGateway, email string) (cookie, userID string) {
	t.Helper()
	st, h, body := do(t, plainClient(), "POST", g.public+"/register", "application/json",
		`{"email":"`+email+`","password":"`+haPassword+`"}`)
	if st != http.StatusCreated {
		t.Fatalf("register %s = %d %s", email, st, body)
	}
	return sessionCookie(t, h), decodeUserID(t, body)
}

// loginCookie logs email in through the gateway and returns the session
// cookie as "name=value".
func loginCookie(t *testing.T, g *testGateway, email string) string {
	t.Helper()
	st, h, body := do(t, plainClient(), "POST", g.public+"/login", "application/json",
		`{"email":"`+email+`","password":"`+haPassword+`"}`)
	if st != http.StatusOK {
		t.Fatalf("login %s = %d %s", email, st, body)
	}
	return sessionCookie(t, h)
}

func sessionCookie(t *testing.T, h http.Header) string {
	t.Helper()
	for _, sc := range h.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(sc)
		if err == nil && c.Name == "gatehouse_session" && c.Value != "" && c.MaxAge > 0 {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no session cookie in %q", h.Values("Set-Cookie"))
	return ""
}

func decodeUserID(t *testing.T, body string) string {
	t.Helper()
	const key = `"id":"`
	i := strings.Index(body, key)
	if i < 0 {
		t.Fatalf("no user id in %s", body)
	}
	id := body[i+len(key):]
	return id[:strings.IndexByte(id, '"')]
}

// wantIdentity asserts a 200 from the echo upstream that saw userID.
func wantIdentity(t *testing.T, r haResult, userID string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status = %d %s, want 200", r.status, r.body)
	}
	if got := decodeEcho(t, r.body).Headers["X-User-Id"]; len(got) != 1 || got[0] != userID {
		t.Fatalf("upstream X-User-Id = %q, want [%s]", got, userID)
	}
}

// waitCookieStatus polls GET url with cookie until it answers want, for at
// most limit, and returns the answer and how long it took.
func waitCookieStatus(t *testing.T, url, cookie string, want int, limit time.Duration) (haResult, time.Duration) {
	t.Helper()
	c := plainClient()
	start := time.Now()
	var last haResult
	var lastErr error
	for time.Since(start) < limit {
		last, lastErr = get(c, url, cookie)
		if lastErr == nil && last.status == want {
			return last, time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: no %d within %v; last %d %s (err %v)", url, want, limit, last.status, last.body, lastErr)
	return haResult{}, 0
}

// waitMetric polls the admin /metrics until it has the line want.
func waitMetric(t *testing.T, g *testGateway, want string) time.Duration {
	t.Helper()
	c := plainClient()
	start := time.Now()
	for time.Since(start) < haRecoverWait {
		r, err := get(c, g.admin+"/metrics", "")
		if err == nil && r.status == http.StatusOK && hasLine(r.body, want) {
			return time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("/metrics: no line %q within %v", want, haRecoverWait)
	return 0
}

func hasLine(body, line string) bool {
	for l := range strings.Lines(body) {
		if strings.TrimRight(l, "\n") == line {
			return true
		}
	}
	return false
}

// trafficStats counts the answers of one kind of traffic goroutine and
// keeps the first few unexpected ones.
type trafficStats struct {
	mu     sync.Mutex
	total  int
	status map[int]int // -1: transport error
	bad    []string
}

func (s *trafficStats) record(r haResult, err error, ok func(haResult) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	if s.status == nil {
		s.status = map[int]int{}
	}
	switch {
	case err != nil:
		s.status[-1]++
		if len(s.bad) < 10 {
			s.bad = append(s.bad, "transport error: "+err.Error())
		}
	default:
		s.status[r.status]++
		if !ok(r) && len(s.bad) < 10 {
			s.bad = append(s.bad, fmt.Sprintf("%d Set-Cookie %q %.200s", r.status, r.setCookies, r.body))
		}
	}
}

func (s *trafficStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%d requests %v", s.total, s.status)
}

// traffic loops GET /app/x on g: 4 goroutines with a valid session cookie,
// 2 without, until stop is called or trafficLimit passes (bounded even if
// the test goroutine is stuck in a topology wait). stop waits for them,
// then checks every answer: with the cookie only 200 or 503 and never a
// Set-Cookie for the session (a 401 or a cleared cookie would log a user
// out because Redis moved); without it only 401 (never let in). It returns
// how many 503s the cookie traffic met.
func traffic(t *testing.T, g *testGateway, cookie string) (stop func() (unavailable int)) {
	t.Helper()
	const (
		withCookie    = 4
		withoutCookie = 2
		trafficLimit  = 20 * time.Second
	)
	var authed, anon trafficStats
	okAuthed := func(r haResult) bool {
		return (r.status == http.StatusOK || r.status == http.StatusServiceUnavailable) && !touchesCookie(r.setCookies)
	}
	okAnon := func(r haResult) bool { return r.status == http.StatusUnauthorized }
	done := make(chan struct{})
	var wg sync.WaitGroup
	limit := time.Now().Add(trafficLimit)
	loop := func(cookie string, st *trafficStats, ok func(haResult) bool) {
		c := plainClient()
		for time.Now().Before(limit) {
			select {
			case <-done:
				return
			default:
			}
			r, err := get(c, g.public+"/app/x", cookie)
			st.record(r, err, ok)
			time.Sleep(5 * time.Millisecond)
		}
	}
	for range withCookie {
		wg.Go(func() { loop(cookie, &authed, okAuthed) })
	}
	for range withoutCookie {
		wg.Go(func() { loop("", &anon, okAnon) })
	}
	var once sync.Once
	halt := func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(halt) // when the test fails before stop
	return func() int {
		t.Helper()
		halt()
		t.Logf("traffic with a valid cookie: %v; without: %v", &authed, &anon)
		if len(authed.bad) > 0 {
			t.Errorf("requests with a valid cookie got other answers than 200/503 without Set-Cookie (first %d):\n%s",
				len(authed.bad), strings.Join(authed.bad, "\n"))
		}
		if len(anon.bad) > 0 {
			t.Errorf("requests without a cookie got other answers than 401 (first %d):\n%s",
				len(anon.bad), strings.Join(anon.bad, "\n"))
		}
		if authed.status[http.StatusOK] == 0 || anon.status[http.StatusUnauthorized] == 0 {
			t.Errorf("traffic did not run: with cookie %v, without %v", authed.status, anon.status)
		}
		return authed.status[http.StatusServiceUnavailable]
	}
}

// newSentinelGateway starts Sentinel and a gateway on it, and registers
// ann@example.com through the gateway.
func newSentinelGateway(t *testing.T) (s *redistest.SentinelInstance, g *testGateway, cookie, userID string) {
	t.Helper()
	s = redistest.Sentinel(t)
	block := fmt.Sprintf("  sentinel:\n    master: %q\n    addrs: %s", s.MasterName, yamlList(s.SentinelAddrs))
	g = newTestGateway(t, haConfig(block, s.Master.KeyPrefix), nil)
	cookie, userID = registerCookie(t, g, "ann@example.com")
	wantIdentity(t, mustGet(t, plainClient(), g.public+"/app/x", cookie), userID)
	return s, g, cookie, userID
}

// wantWritesWork checks, after a failover, that logins and registrations
// (writes) reach the new master and that the old cookie still works.
func wantWritesWork(t *testing.T, g *testGateway, cookie, userID string) {
	t.Helper()
	c2 := loginCookie(t, g, "ann@example.com")
	wantIdentity(t, mustGet(t, plainClient(), g.public+"/app/x", c2), userID)
	if st, _, body := do(t, plainClient(), "GET", g.public+"/me", "", "", "Cookie", c2); st != http.StatusOK || !strings.Contains(body, userID) {
		t.Fatalf("/me with the post-failover session = %d %s", st, body)
	}
	c3, id3 := registerCookie(t, g, "bob-"+strconv.FormatInt(time.Now().UnixNano(), 36)+"@example.com")
	wantIdentity(t, mustGet(t, plainClient(), g.public+"/app/x", c3), id3)
	wantIdentity(t, mustGet(t, plainClient(), g.public+"/app/x", cookie), userID)
}

// TestSentinelFailoverUnderTraffic: while requests flow, the sentinels fail
// the master over to the replica (SENTINEL FAILOVER). A valid session may
// meet 503 while the client finds the new master, but never 401 and never a
// cleared cookie; a request without a session is 401 throughout; afterwards
// the same cookie works again and logins write to the new master, without a
// restart.

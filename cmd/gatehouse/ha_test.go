package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/redistest"
)

// High-availability tests (helpers in ha_helpers_test.go): the whole gateway, run through run(), on real
// Redis topologies (Sentinel with a failover, Cluster, a single server that
// hangs, crashes and comes back). They take seconds each and are skipped in
// -short mode. Every wait is bounded.

func TestSentinelFailoverUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis with Sentinel and fails it over; skipped in -short mode")
	}
	s, g, cookie, userID := newSentinelGateway(t)
	stop := traffic(t, g, cookie)
	time.Sleep(500 * time.Millisecond) // traffic on the old master first
	oldMaster := s.Master.Addr
	start := time.Now()
	s.Failover(t)
	failover := time.Since(start)
	if s.Master.Addr == oldMaster {
		t.Fatalf("master is still %s after Failover", oldMaster)
	}
	// The same cookie, no restart: bounded recovery.
	r, recovered := waitCookieStatus(t, g.public+"/app/x", cookie, http.StatusOK, haRecoverWait)
	wantIdentity(t, r, userID)
	time.Sleep(2 * time.Second) // traffic on the new master too
	n503 := stop()
	t.Logf("failover took %v; cookie served again %v after it; 503s with a valid cookie: %d",
		failover.Round(time.Millisecond), recovered.Round(time.Millisecond), n503)
	wantWritesWork(t, g, cookie, userID)
}

// TestSentinelMasterHangUnderTraffic: the master hangs (SIGSTOP) under
// traffic and the sentinels fail over on their own (down-after 1s). Requests
// with a valid session get 503 until the client follows the new master,
// never 401; the same cookie then works again without a restart.
func TestSentinelMasterHangUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis with Sentinel and hangs its master; skipped in -short mode")
	}
	s, g, cookie, userID := newSentinelGateway(t)
	// The replica must have the session before its master hangs, or the
	// promotion would lose it (that is Redis' asynchronous replication,
	// not the gateway's doing).
	waitReplicated(t, s.Master)
	stop := traffic(t, g, cookie)
	time.Sleep(500 * time.Millisecond)
	s.Master.Pause(t)
	t.Cleanup(func() { s.Master.Resume(t) }) // killed in its own Cleanup anyway
	// Detection (down-after 1s), agreement and promotion take a few
	// seconds; a split leader vote is retried after 2 x failover-timeout
	// (10s), so allow for one.
	r, recovered := waitCookieStatus(t, g.public+"/app/x", cookie, http.StatusOK, 2*haRecoverWait)
	wantIdentity(t, r, userID)
	time.Sleep(2 * time.Second)
	n503 := stop()
	t.Logf("master hung; cookie served again %v later; 503s with a valid cookie: %d",
		recovered.Round(time.Millisecond), n503)
	if n503 == 0 {
		t.Errorf("no 503 while the master hung and before the failover: the outage was not observed")
	}
	wantWritesWork(t, g, cookie, userID)
}

// waitReplicated waits until a replica acknowledged every write the master
// accepted so far (PUBLISH is replicated; WAIT counts the acknowledgements
// of this connection's last write).
func waitReplicated(t *testing.T, master *redistest.Instance) {
	t.Helper()
	conn := master.Client(t).Conn()
	defer conn.Close()
	ctx := t.Context()
	if err := conn.Publish(ctx, "gatehouse-test:sync", "1").Err(); err != nil {
		t.Fatalf("PUBLISH: %v", err)
	}
	if n, err := conn.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n < 1 {
		t.Fatalf("WAIT 1 = %d, %v: the replica did not catch up", n, err)
	}
}

// TestClusterGateway: the whole flow on a three-master Redis Cluster:
// register, /me, a proxied request with the identity, logout, logout of
// every session, and 401 afterwards.
func TestClusterGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node Redis Cluster; skipped in -short mode")
	}
	cl := redistest.Cluster(t)
	block := "  cluster:\n    addrs: " + yamlList(cl.Addrs)
	g := newTestGateway(t, haConfig(block, cl.Nodes[0].KeyPrefix), nil)
	c := plainClient()

	cookie, userID := registerCookie(t, g, "ann@example.com")
	if st, _, body := do(t, c, "GET", g.public+"/me", "", "", "Cookie", cookie); st != http.StatusOK || !strings.Contains(body, `"email":"ann@example.com"`) || !strings.Contains(body, userID) {
		t.Fatalf("/me = %d %s", st, body)
	}
	r := mustGet(t, c, g.public+"/app/x?q=1", cookie)
	wantIdentity(t, r, userID)
	if got := decodeEcho(t, r.body).Headers["X-User-Email"]; len(got) != 1 || got[0] != "ann@example.com" {
		t.Errorf("upstream X-User-Email = %q", got)
	}
	if strings.Contains(r.body, strings.TrimPrefix(cookie, "gatehouse_session=")) {
		t.Errorf("the session token reached the upstream")
	}
	// A public route without a session: forwarded without identity.
	if r := mustGet(t, c, g.public+"/public/x", ""); r.status != http.StatusOK || decodeEcho(t, r.body).Headers["X-User-Id"] != nil {
		t.Errorf("public route = %d %s", r.status, r.body)
	}

	// Logout ends this session only.
	other := loginCookie(t, g, "ann@example.com")
	st, h, body := do(t, c, "POST", g.public+"/logout", "", "", "Cookie", cookie)
	if st != http.StatusNoContent || !strings.Contains(h.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout = %d %q %s", st, h.Get("Set-Cookie"), body)
	}
	if r := mustGet(t, c, g.public+"/app/x", cookie); r.status != http.StatusUnauthorized {
		t.Fatalf("after logout = %d, want 401", r.status)
	}
	wantIdentity(t, mustGet(t, c, g.public+"/app/x", other), userID)

	// Logout ?all=1 across two sessions (and a second user is untouched).
	second := loginCookie(t, g, "ann@example.com")
	bob, bobID := registerCookie(t, g, "bob@example.com")
	for _, ck := range []string{other, second} {
		wantIdentity(t, mustGet(t, c, g.public+"/app/x", ck), userID)
	}
	if st, _, body := do(t, c, "POST", g.public+"/logout?all=1", "", "", "Cookie", second); st != http.StatusNoContent {
		t.Fatalf("logout ?all=1 = %d %s", st, body)
	}
	for _, ck := range []string{other, second} {
		if r := mustGet(t, c, g.public+"/app/x", ck); r.status != http.StatusUnauthorized || !touchesCookie(r.setCookies) {
			t.Errorf("after logout ?all=1 = %d Set-Cookie %q, want 401 clearing the cookie", r.status, r.setCookies)
		}
		if st, _, _ := do(t, c, "GET", g.public+"/me", "", "", "Cookie", ck); st != http.StatusUnauthorized {
			t.Errorf("/me after logout ?all=1 = %d, want 401", st)
		}
	}
	wantIdentity(t, mustGet(t, c, g.public+"/app/x", bob), bobID)
	// The account itself still works.
	wantIdentity(t, mustGet(t, c, g.public+"/app/x", loginCookie(t, g, "ann@example.com")), userID)
}

// TestStoreOutageFailsClosed: a hung Redis (SIGSTOP) turns requests that
// need a session into a quick 503 store_unavailable without clearing the
// cookie, while public routes and anonymous 401s keep working and readiness
// stays up (gatehouse_store_up shows the outage). When Redis continues, the
// same cookie works again; after a crash and restart with AOF too.
func TestStoreOutageFailsClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("pauses, kills and restarts a redis-server; skipped in -short mode")
	}
	r := redistest.Server(t, redistest.WithAOF())
	g := newTestGateway(t, haConfig(fmt.Sprintf("  url: %q", r.URL), r.KeyPrefix), nil)
	c := plainClient()
	cookie, userID := registerCookie(t, g, "ann@example.com")
	wantIdentity(t, mustGet(t, c, g.public+"/app/x", cookie), userID)
	waitMetric(t, g, "gatehouse_store_up 1")

	// wantUnavailable asserts the fail-closed answer to a valid cookie.
	wantUnavailable := func(what, path string) {
		t.Helper()
		r := mustGet(t, c, g.public+path, cookie)
		if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, `"store_unavailable"`) {
			t.Errorf("%s: GET %s with a valid cookie = %d %s, want 503 store_unavailable", what, path, r.status, r.body)
		}
		if len(r.setCookies) > 0 {
			t.Errorf("%s: GET %s: Set-Cookie %q while the store is down, want none (the cookie is kept)", what, path, r.setCookies)
		}
		t.Logf("%s: GET %s answered %d in %v", what, path, r.status, r.elapsed.Round(time.Millisecond))
	}

	r.Pause(t)
	paused := true
	t.Cleanup(func() {
		if paused {
			r.Resume(t)
		}
	})
	wantUnavailable("paused", "/app/x")
	wantUnavailable("paused", "/app/x") // again, on a fresh connection of the pool
	wantUnavailable("paused", "/me")
	for _, ck := range []string{cookie, ""} {
		pr := mustGet(t, c, g.public+"/public/x", ck)
		if pr.status != http.StatusOK || decodeEcho(t, pr.body).Headers["X-User-Id"] != nil || len(pr.setCookies) > 0 {
			t.Errorf("paused: public route (cookie %v) = %d Set-Cookie %q %s, want 200 without identity", ck != "", pr.status, pr.setCookies, pr.body)
		}
	}
	if ar := mustGet(t, c, g.public+"/app/x", ""); ar.status != http.StatusUnauthorized {
		t.Errorf("paused: no cookie = %d %s, want 401", ar.status, ar.body)
	}
	if rr := mustGet(t, c, g.admin+"/readyz", ""); rr.status != http.StatusOK {
		t.Errorf("paused: /readyz = %d %s, want 200 (a store outage must not pull the replica)", rr.status, rr.body)
	}
	down := waitMetric(t, g, "gatehouse_store_up 0")
	t.Logf("gatehouse_store_up turned 0 after %v more", down.Round(time.Millisecond))
	if rr := mustGet(t, c, g.admin+"/readyz", ""); rr.status != http.StatusOK {
		t.Errorf("paused, store_up 0: /readyz = %d, want 200", rr.status)
	}

	r.Resume(t)
	paused = false
	res, took := waitCookieStatus(t, g.public+"/app/x", cookie, http.StatusOK, haRecoverWait)
	wantIdentity(t, res, userID)
	t.Logf("resumed: cookie served again after %v", took.Round(time.Millisecond))
	waitMetric(t, g, "gatehouse_store_up 1")

	// A crash: nothing is answered, not even a TCP connection.
	r.Kill()
	wantUnavailable("killed", "/app/x")
	if ar := mustGet(t, c, g.public+"/app/x", ""); ar.status != http.StatusUnauthorized {
		t.Errorf("killed: no cookie = %d, want 401", ar.status)
	}
	r.Restart(t)
	res, took = waitCookieStatus(t, g.public+"/app/x", cookie, http.StatusOK, haRecoverWait)
	wantIdentity(t, res, userID)
	t.Logf("restarted from AOF: cookie served again after %v", took.Round(time.Millisecond))
	// Writes work on the restarted server as well.
	wantIdentity(t, mustGet(t, c, g.public+"/app/x", loginCookie(t, g, "ann@example.com")), userID)
}

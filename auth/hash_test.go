package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// waitFor polls cond until it holds; the test's own deadline bounds it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(time.Millisecond):
		}
	}
}

// TestHashQueueBounded: with every slot for new hashes busy and its queue
// full, a registration is refused at once with ErrOverloaded (503
// overloaded, Retry-After: 1) instead of waiting without end, and a login
// is not held up by it: logins have slots of their own.
func TestHashQueueBounded(t *testing.T) {
	lim := NewHashLimiter(1)
	g := newTestGateway(t, nil)
	g.svc.hashes = lim // before any request: the handlers hold g.svc
	g.register("ann@example.com", "password1")

	lim.create.slots <- struct{}{} // the one slot for new hashes is busy
	depth := int(lim.create.depth)
	var wg sync.WaitGroup
	results := make([]error, depth)
	ctx, cancel := context.WithCancel(context.Background())
	for i := range depth {
		wg.Go(func() {
			_, _, results[i] = g.svc.RegisterFrom(ctx, fmt.Sprintf("q%d@example.com", i), "password1", "192.0.2.9", "")
		})
	}
	waitFor(t, "the queue to fill", func() bool { return lim.create.waiting.Load() == int64(depth) })

	if _, _, err := g.svc.Register(context.Background(), "late@example.com", "password1"); !errors.Is(err, ErrOverloaded) {
		t.Errorf("Register with the queue full = %v, want ErrOverloaded", err)
	}
	res := g.do(request{method: "POST", path: "/register", contentType: jsonType, body: credsJSON("late2@example.com", "password1")})
	checkError(t, res, apierror.Overloaded)
	if ra := res.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1", ra)
	}
	if res.status != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", res.status)
	}
	// A login meanwhile is served: it does not queue behind registrations.
	g.login("ann@example.com", "password1")

	cancel()
	wg.Wait()
	<-lim.create.slots
	for i, err := range results {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("queued registration %d = %v, want context.Canceled", i, err)
		}
	}
	if n := lim.create.waiting.Load(); n != 0 {
		t.Errorf("waiting = %d after the queue drained, want 0", n)
	}
}

// TestLoginHashQueueBounded: logins have a bounded queue too.
func TestLoginHashQueueBounded(t *testing.T) {
	lim := NewHashLimiter(1)
	e := newMiniEnv(t, nil)
	svc, err := NewService(e.store, e.cfg, ServiceOptions{Hashes: lim})
	if err != nil {
		t.Fatal(err)
	}
	e.register(t, "ann@example.com", "password1")
	lim.login.waiting.Store(lim.login.depth) // as if the queue were full
	lim.login.slots <- struct{}{}
	_, _, err = svc.Login(context.Background(), "ann@example.com", "password1", "192.0.2.1", "")
	if !errors.Is(err, ErrOverloaded) {
		t.Errorf("Login with the login queue full = %v, want ErrOverloaded", err)
	}
	<-lim.login.slots
	lim.login.waiting.Store(0)
	if _, _, err := svc.Login(context.Background(), "ann@example.com", "password1", "192.0.2.1", ""); err != nil {
		t.Errorf("Login with a free slot: %v", err)
	}
	// The refused attempt gave its throttle reservation back.
	for _, k := range e.store.throttleKeys("ann@example.com", "192.0.2.1") {
		if n, _ := e.rdb.Get(context.Background(), k).Int(); n > 0 {
			t.Errorf("counter %s = %d, want none", k, n)
		}
	}
}

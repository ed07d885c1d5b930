package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
)

// login is Login without a previous token.
func (e *testEnv) login(email, password, ip string) error {
	_, _, err := e.svc.Login(context.Background(), email, password, ip, "")
	return err
}

// wantThrottled asserts a *ThrottledError whose RetryAfter is whole seconds
// in [1s, max].
func wantThrottled(t testing.TB, err error, max time.Duration) *ThrottledError {
	t.Helper()
	var te *ThrottledError
	if !errors.As(err, &te) || !errors.Is(err, ErrTooManyAttempts) {
		t.Fatalf("err = %v, want *ThrottledError", err)
	}
	if te.RetryAfter < time.Second || te.RetryAfter > max || te.RetryAfter%time.Second != 0 {
		t.Fatalf("RetryAfter = %v, want whole seconds in [1s, %v]", te.RetryAfter, max)
	}
	return te
}

func wantInvalid(t testing.TB, err error) {
	t.Helper()
	if err != ErrInvalidCredentials {
		t.Fatalf("err = %v, want ErrInvalidCredentials", err)
	}
}

// TestThrottleLimit: after max_login_failures (3) failures the next attempt
// is refused before bcrypt, even with the right password, with Retry-After
// the rest of the window.
func TestThrottleLimit(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		e.register(t, "ann@example.com", "password1")
		for range 3 {
			wantInvalid(t, e.login("ann@example.com", "wrong-password", "192.0.2.1"))
		}
		te := wantThrottled(t, e.login("ann@example.com", "password1", "192.0.2.1"), 15*time.Minute)
		if te.RetryAfter < 14*time.Minute {
			t.Errorf("RetryAfter = %v, want about the 15m window", te.RetryAfter)
		}
		if te.Seconds() != int(te.RetryAfter/time.Second) {
			t.Errorf("Seconds() = %d, want %d", te.Seconds(), int(te.RetryAfter/time.Second))
		}
		// Other addresses and other emails are not affected.
		if err := e.login("ann@example.com", "password1", "192.0.2.2"); err != nil {
			t.Errorf("login from another address: %v", err)
		}
		if got := e.counterValue(t, "gatehouse_login_attempts_total", "result", "too_many_attempts"); got != 1 {
			t.Errorf("login_attempts{throttled} = %v, want 1", got)
		}
	})
}

// TestThrottleWindowEnds: the refusal lasts until the window that began at
// the first failure ends, then attempts are allowed again.
func TestThrottleWindowEnds(t *testing.T) {
	t.Parallel() // it sleeps on a real server
	tune := func(cfg *config.Config) { cfg.Auth.LoginFailureWindow = config.Duration(4 * time.Second) }
	forEachStore(t, tune, func(t *testing.T, e *testEnv) {
		e.register(t, "ann@example.com", "password1")
		for range 3 {
			wantInvalid(t, e.login("ann@example.com", "wrong-password", "192.0.2.1"))
		}
		wantThrottled(t, e.login("ann@example.com", "password1", "192.0.2.1"), 4*time.Second)
		e.advance(2500 * time.Millisecond)
		// At most 1.5s left: Retry-After counts down, rounded up.
		wantThrottled(t, e.login("ann@example.com", "password1", "192.0.2.1"), 2*time.Second)
		e.advance(1600 * time.Millisecond)
		if err := e.login("ann@example.com", "password1", "192.0.2.1"); err != nil {
			t.Fatalf("login after the window: %v", err)
		}
	})
}

// TestThrottleResetOnSuccess: a successful login resets the email-and-
// address count.
func TestThrottleResetOnSuccess(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		e.register(t, "ann@example.com", "password1")
		for range 2 {
			wantInvalid(t, e.login("ann@example.com", "wrong-password", "192.0.2.1"))
		}
		if err := e.login("ann@example.com", "password1", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			wantInvalid(t, e.login("ann@example.com", "wrong-password", "192.0.2.1"))
		}
		wantThrottled(t, e.login("ann@example.com", "password1", "192.0.2.1"), 15*time.Minute)
	})
}

// TestThrottleUnknownEmail: failures for an email without an account count
// the same (and answer the same).
func TestThrottleUnknownEmail(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		for range 3 {
			wantInvalid(t, e.login("nobody@example.com", "whatever1", "192.0.2.1"))
		}
		wantThrottled(t, e.login("nobody@example.com", "whatever1", "192.0.2.1"), 15*time.Minute)
	})
}

// TestThrottlePerEmail: failures for one email from many addresses are
// limited at 10x max_login_failures; a fresh address is then refused too.
func TestThrottlePerEmail(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		e.register(t, "ann@example.com", "password1")
		for i := range 30 { // 15 addresses, 2 failures each: under 3 per pair
			wantInvalid(t, e.login("ann@example.com", "wrong-password", fmt.Sprintf("198.51.100.%d", i/2)))
		}
		wantThrottled(t, e.login("ann@example.com", "password1", "203.0.113.9"), 15*time.Minute)
		// The limit is the email's: another account from that address works.
		e.register(t, "bob@example.com", "password1")
		if err := e.login("bob@example.com", "password1", "203.0.113.9"); err != nil {
			t.Errorf("another email from the fresh address: %v", err)
		}
	})
}

// TestThrottlePerAddress: failures from one address over many emails are
// limited at 10x max_login_failures.
func TestThrottlePerAddress(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		e.register(t, "ann@example.com", "password1")
		for i := range 30 { // 15 emails, 2 failures each
			wantInvalid(t, e.login(fmt.Sprintf("user%d@example.com", i/2), "wrong-password", "192.0.2.1"))
		}
		wantThrottled(t, e.login("ann@example.com", "password1", "192.0.2.1"), 15*time.Minute)
		if err := e.login("ann@example.com", "password1", "192.0.2.2"); err != nil {
			t.Errorf("the same email from another address: %v", err)
		}
	})
}

// TestThrottleRefusalsDoNotCount: refused attempts add nothing, so one
// address hammering a locked pair cannot push the email over its own limit
// and lock its owner out everywhere.
func TestThrottleRefusalsDoNotCount(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		e.register(t, "ann@example.com", "password1")
		for range 3 {
			wantInvalid(t, e.login("ann@example.com", "wrong-password", "192.0.2.66"))
		}
		for range 40 {
			wantThrottled(t, e.login("ann@example.com", "wrong-password", "192.0.2.66"), 15*time.Minute)
		}
		if err := e.login("ann@example.com", "password1", "198.51.100.1"); err != nil {
			t.Fatalf("owner from another address: %v", err)
		}
	})
}

// TestThrottleSuccessesDoNotCount: only failures count toward the
// per-address limit (a NAT of many users, a benchmark logging in).
func TestThrottleSuccessesDoNotCount(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		e.register(t, "ann@example.com", "password1")
		for i := range 35 { // more than the per-address limit of 30
			if err := e.login("ann@example.com", "password1", "192.0.2.1"); err != nil {
				t.Fatalf("login %d: %v", i, err)
			}
		}
	})
}

// TestThrottleConcurrentBurst: parallel wrong guesses cannot overrun the
// limit; exactly max_login_failures reach the password check.
func TestThrottleConcurrentBurst(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		e.register(t, "ann@example.com", "password1")
		const n = 30
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = e.login("ann@example.com", "wrong-password", "192.0.2.1") })
		}
		wg.Wait()
		invalid, throttled := 0, 0
		for _, err := range errs {
			switch {
			case err == ErrInvalidCredentials:
				invalid++
			case errors.Is(err, ErrTooManyAttempts):
				throttled++
			default:
				t.Errorf("unexpected error %v", err)
			}
		}
		if invalid != 3 || throttled != n-3 {
			t.Errorf("%d checked, %d throttled; want 3 and %d", invalid, throttled, n-3)
		}
	})
}

// TestThrottleIPv6Prefix: an IPv6 client counts as its /64.
func TestThrottleIPv6Prefix(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		for i := range 3 {
			wantInvalid(t, e.login("ann@example.com", "wrong-password", fmt.Sprintf("2001:db8:1:2::%x", i+1)))
		}
		wantThrottled(t, e.login("ann@example.com", "wrong-password", "2001:db8:1:2:ffff::1"), 15*time.Minute)
		wantInvalid(t, e.login("ann@example.com", "wrong-password", "2001:db8:1:3::1"))
	})
}

func TestAddrKey(t *testing.T) {
	cases := map[string]string{
		"192.0.2.1":             "192.0.2.1",
		"::ffff:192.0.2.1":      "192.0.2.1",
		"192.0.2.1:4711":        "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":  "2001:db8:1:2::/64",
		"[2001:db8:1:2::9]:443": "2001:db8:1:2::/64",
		"fe80::1%eth0":          "fe80::/64",
	}
	for in, want := range cases {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
	}
	if a, b := addrKey("garbage"), addrKey(""); a == b || len(a) != len("h:")+64 {
		t.Errorf("unparsable addresses: %q, %q; want distinct hashes", a, b)
	}
}

// TestThrottleHealsCounterWithoutExpiry: a counter at its limit that lost
// its PEXPIRE (connection dropped between INCR and PEXPIRE) would refuse its
// owner for ever; it gets a window instead.
func TestThrottleHealsCounterWithoutExpiry(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		k := e.store.throttleKeys("ann@example.com", "192.0.2.1")
		if err := e.rdb.Set(ctx, k[0], 3, 0).Err(); err != nil {
			t.Fatal(err)
		}
		te := wantThrottled(t, e.login("ann@example.com", "password1", "192.0.2.1"), 15*time.Minute)
		if te.RetryAfter != 15*time.Minute {
			t.Errorf("RetryAfter = %v, want a whole new 15m window", te.RetryAfter)
		}
		if ttl := e.rdb.PTTL(ctx, k[0]).Val(); ttl <= 0 {
			t.Errorf("counter PTTL = %v, want a window", ttl)
		}
	})
}

// TestLoginHashSlotTimeout: a login that cannot get a bcrypt slot before
// its context ends fails with the context's error and gives its throttle
// reservation back.
func TestLoginHashSlotTimeout(t *testing.T) {
	e := newMiniEnv(t, nil)
	lim := NewHashLimiter(1)
	// Two Services (a hot reload builds a second one) sharing the limiter
	// share its cap.
	var svcs []*Service
	for range 2 {
		svc, err := NewService(e.store, e.cfg, ServiceOptions{Hashes: lim, Metrics: e.metrics})
		if err != nil {
			t.Fatal(err)
		}
		svcs = append(svcs, svc)
	}
	e.register(t, "ann@example.com", "password1")
	lim.login.slots <- struct{}{} // every login slot busy
	for i, svc := range svcs {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, _, err := svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", "")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("service %d: Login with no free hash slot = %v, want context.DeadlineExceeded", i, err)
		}
	}
	for _, k := range e.store.throttleKeys("ann@example.com", "192.0.2.1") {
		if n, _ := e.rdb.Get(context.Background(), k).Int(); n != 0 {
			t.Errorf("counter %s = %d after an attempt that never checked a password, want 0", k, n)
		}
	}
	<-lim.login.slots
	if _, _, err := svcs[1].Login(context.Background(), "ann@example.com", "password1", "192.0.2.1", ""); err != nil {
		t.Fatalf("Login with a free slot: %v", err)
	}
}

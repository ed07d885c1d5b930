package auth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// TestRegisterThrottled: one address gets auth.max_registrations attempts
// per window (successes, taken emails and all), then 429
// too_many_attempts with Retry-After; another address is not affected; the
// window's end lifts the limit.
func TestRegisterThrottled(t *testing.T) {
	g := newTestGateway(t, func(c *config.Config) { c.Auth.MaxRegistrations = 3 })
	reg := func(email, ip string) result {
		return g.do(request{method: "POST", path: "/register", contentType: jsonType,
			body: credsJSON(email, "password1"), header: []string{testClientIPHeader, ip}})
	}
	for i, want := range []int{201, 409, 201} {
		email := fmt.Sprintf("u%d@example.com", i)
		if i == 1 {
			email = "u0@example.com"
		}
		if res := reg(email, "203.0.113.5"); res.status != want {
			t.Fatalf("attempt %d: status = %d, want %d (%s)", i, res.status, want, res.body)
		}
	}
	res := reg("u9@example.com", "203.0.113.5")
	checkError(t, res, apierror.TooManyAttempts)
	if s, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || s < 1 || s > 15*60 {
		t.Errorf("Retry-After = %q, want 1..900 seconds", res.header.Get("Retry-After"))
	}
	// Taken or not, a throttled address learns nothing about the email.
	checkError(t, reg("u0@example.com", "203.0.113.5"), apierror.TooManyAttempts)
	if res := reg("u9@example.com", "203.0.113.6"); res.status != 201 {
		t.Errorf("another address: status = %d, want 201", res.status)
	}
	g.mr.FastForward(16 * time.Minute)
	if res := reg("u10@example.com", "203.0.113.5"); res.status != 201 {
		t.Errorf("after the window: status = %d, want 201", res.status)
	}
}

// TestRegisterUnthrottledWithZero: max_registrations 0 means no limit.
func TestRegisterUnthrottledWithZero(t *testing.T) {
	e := newMiniEnv(t, func(c *config.Config) { c.Auth.MaxRegistrations = 0 })
	for i := range 150 {
		if _, _, err := e.svc.RegisterFrom(context.Background(), fmt.Sprintf("u%d@example.com", i), "password1", "203.0.113.5", ""); err != nil {
			t.Fatalf("registration %d: %v", i, err)
		}
	}
}

// TestRegisterTakenBeforeHashing: an email that has an account is answered
// ErrEmailTaken without any bcrypt work: with the one slot for new hashes
// busy, it is still answered, while a free email waits for the slot until
// its context ends (the old code hashed first, so the taken email waited
// too).
func TestRegisterTakenBeforeHashing(t *testing.T) {
	e := newMiniEnv(t, nil)
	lim := NewHashLimiter(1)
	e.svc.hashes = lim
	e.register(t, "ann@example.com", "password1")
	lim.create.slots <- struct{}{}
	defer func() { <-lim.create.slots }()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	for _, spelling := range []string{"ann@example.com", "ANN@Example.com"} {
		if _, _, err := e.svc.RegisterFrom(ctx, spelling, "password2", "203.0.113.5", ""); !errors.Is(err, ErrEmailTaken) {
			t.Errorf("Register(%q) = %v, want ErrEmailTaken before any hashing", spelling, err)
		}
	}
	if _, _, err := e.svc.Register(ctx, "bob@example.com", "password2"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Register of a free email = %v, want it to wait for the hash slot until its deadline", err)
	}
}

// TestRegisterShedsLoadFirst: with the queue for new hashes full, a
// registration is refused before it costs a store round trip.
func TestRegisterShedsLoadFirst(t *testing.T) {
	e := newMiniEnv(t, nil)
	lim := NewHashLimiter(1)
	e.svc.hashes = lim
	lim.create.slots <- struct{}{}
	lim.create.waiting.Store(lim.create.depth)
	defer func() { <-lim.create.slots; lim.create.waiting.Store(0) }()
	before := e.mr.CommandCount()
	if _, _, err := e.svc.RegisterFrom(context.Background(), "bob@example.com", "password2", "203.0.113.5", ""); !errors.Is(err, ErrOverloaded) {
		t.Errorf("Register = %v, want ErrOverloaded", err)
	}
	if n := e.mr.CommandCount() - before; n != 0 {
		t.Errorf("a shed registration sent %d store commands, want 0", n)
	}
}

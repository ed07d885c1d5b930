package auth

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
)

// ErrOverloaded is returned when the queue for password hashing is full:
// the request is refused at once (503 overloaded, Retry-After: 1) instead
// of waiting behind work that would outlast any client's patience.
var ErrOverloaded = errors.New("auth: password hashing overloaded")

// Queue depths, per slot. A waiter waits at most depth/slots hashes, so at
// the default cost 12 (about 0.3 s a hash on a small machine) a login
// waits at most about 2.4 s for its turn and a registration about 0.6 s:
// a real user under a login flood gets an answer (a success or "try again
// in a second") well within a browser's patience, and a flood cannot build
// a backlog that stays long after it stops. Registrations get the shorter
// queue: they are the cheap way to make the gateway hash (no account, no
// throttle history needed), so they are the first to be told "later".
const (
	loginQueuePerSlot    = 8
	registerQueuePerSlot = 2
)

// HashLimiter caps how many password hashes run at once, and how many wait.
// Password checks of logins and new hashes (registration, users add, the
// rehash after a cost change) have pools of their own, so a registration
// flood cannot make a login wait behind it: a login waits only for other
// logins.
type HashLimiter struct {
	login, create hashPool
}

// hashPool is a number of slots and a bounded queue in front of them.
type hashPool struct {
	slots   chan struct{}
	waiting atomic.Int64
	depth   int64
}

// NewHashLimiter allows n login hashes at once; n <= 0 means half the CPUs
// (at least one): a login flood can then take at most half the machine's
// cores from proxied traffic, and runs at a lower priority even there (see
// runHash). New hashes get max(1, n/2) slots of their own, so hashing as a
// whole uses at most n + max(1, n/2) threads, all at lowered priority.
// Each pool queues at most a few hashes per slot (see loginQueuePerSlot);
// past that a hash is refused with ErrOverloaded.
func NewHashLimiter(n int) *HashLimiter {
	if n <= 0 {
		n = max(1, runtime.GOMAXPROCS(0)/2)
	}
	c := max(1, n/2)
	l := &HashLimiter{}
	l.login.init(n, loginQueuePerSlot*n)
	l.create.init(c, registerQueuePerSlot*c)
	return l
}

func (p *hashPool) init(slots, depth int) {
	p.slots = make(chan struct{}, slots)
	p.depth = int64(depth)
}

// full reports whether a hash asked for now would be refused: every slot
// busy and the queue at its depth. It lets a request that would only end
// in ErrOverloaded be refused before it costs a store round trip.
func (p *hashPool) full() bool {
	return len(p.slots) == cap(p.slots) && p.waiting.Load() >= p.depth
}

// acquire takes a slot at once if one is free, else waits in the queue for
// one (or for ctx); when the queue is full it returns ErrOverloaded without
// waiting.
func (p *hashPool) acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("auth: waiting for a hash slot: %w", err)
	}
	release = func() { <-p.slots }
	select {
	case p.slots <- struct{}{}:
		return release, nil
	default:
	}
	if p.waiting.Add(1) > p.depth {
		p.waiting.Add(-1)
		return nil, ErrOverloaded
	}
	defer p.waiting.Add(-1)
	select {
	case p.slots <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("auth: waiting for a hash slot: %w", ctx.Err())
	}
}

// runHash runs fn, the bcrypt compare of a login, once a login hash slot
// is free (see runIn).
func (s *Service) runHash(ctx context.Context, fn func()) error {
	return runIn(ctx, &s.hashes.login, fn)
}

// runNewHash runs fn, a bcrypt hash of a new password, once a slot of the
// pool for new hashes is free (see runIn).
func (s *Service) runNewHash(ctx context.Context, fn func()) error {
	return runIn(ctx, &s.hashes.create, fn)
}

// runIn runs fn (a bcrypt hash or compare) once a slot of p is free. fn
// runs on an OS thread of its own whose scheduling priority is lowered
// (Linux: nice +10), so that when the CPUs are contended the kernel serves
// the proxy's threads first and a login flood slows logins, not every
// proxied request. The goroutine never unlocks its thread: Go then ends the
// thread with the goroutine, and the lowered priority with it, instead of
// reusing a niced thread for proxy work.
func runIn(ctx context.Context, p *hashPool, fn func()) error {
	release, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		lowerThreadPriority()
		fn()
		close(done)
	}()
	// bcrypt cannot be interrupted; waiting for it keeps the slot count
	// true even when the client has gone.
	<-done
	return nil
}

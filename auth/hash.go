package auth

import (
	"context"
	"fmt"
	"runtime"
)

// HashLimiter caps how many password hashes run at once.
type HashLimiter struct {
	slots chan struct{}
}

// NewHashLimiter allows n hashes at once; n <= 0 means half the CPUs (at
// least one): a login flood can then take at most half the machine's cores
// from proxied traffic, and runs at a lower priority even there (see
// runHash).
func NewHashLimiter(n int) *HashLimiter {
	if n <= 0 {
		n = max(1, runtime.GOMAXPROCS(0)/2)
	}
	return &HashLimiter{slots: make(chan struct{}, n)}
}

// acquire waits for a slot, or for ctx.
func (l *HashLimiter) acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("auth: waiting for a hash slot: %w", err)
	}
	select {
	case l.slots <- struct{}{}:
		return func() { <-l.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("auth: waiting for a hash slot: %w", ctx.Err())
	}
}

// runHash runs fn (a bcrypt hash or compare) once a hash slot is free. fn
// runs on an OS thread of its own whose scheduling priority is lowered
// (Linux: nice +10), so that when the CPUs are contended the kernel serves
// the proxy's threads first and a login flood slows logins, not every
// proxied request. The goroutine never unlocks its thread: Go then ends the
// thread with the goroutine, and the lowered priority with it, instead of
// reusing a niced thread for proxy work.
func (s *Service) runHash(ctx context.Context, fn func()) error {
	release, err := s.hashes.acquire(ctx)
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

package auth

import (
	"context"
	"runtime"
)

// defaultHashConcurrency is half the CPUs (at least one): a login flood
// can then take at most half the machine's cores from proxied traffic, and
// runs at a lower priority even there (see runHash).
func defaultHashConcurrency() int {
	return max(1, runtime.GOMAXPROCS(0)/2)
}

// runHash runs fn (a bcrypt hash or compare) once a hash slot is free. fn
// runs on an OS thread of its own whose scheduling priority is lowered
// (Linux: nice +10), so that when the CPUs are contended the kernel serves
// the proxy's threads first and a login flood slows logins, not every
// proxied request. The goroutine never unlocks its thread: Go then ends the
// thread with the goroutine, and the lowered priority with it, instead of
// reusing a niced thread for proxy work.
func (s *Service) runHash(ctx context.Context, fn func()) error {
	release, err := s.hashSlot(ctx)
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

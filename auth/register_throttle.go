package auth

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Registration throttling: every registration attempt from one client
// address counts in a fixed window of login_failure_window (INCR, then
// PEXPIRE NX, as the login counters), whatever its outcome, up to
// auth.max_registrations. It bounds both the bcrypt work one address can
// cause and how fast it can ask "is this email taken?". Key:
//
//	Pthrottle:r:<address, IPv6 as its /64>   counter

// registrationAllowed counts one registration attempt of clientIP and
// returns a *ThrottledError when it is over the limit. clientIP "" (the
// operator's own tools) and a limit of 0 are not counted.
func (s *Service) registrationAllowed(ctx context.Context, clientIP string) error {
	if s.maxRegistrations <= 0 || clientIP == "" {
		return nil
	}
	wait, err := s.store.registrationAttempt(ctx, clientIP, s.maxRegistrations, s.window)
	if err != nil {
		return err
	}
	if wait > 0 {
		return &ThrottledError{RetryAfter: wait}
	}
	return nil
}

// registrationAttempt counts an attempt in the address's window and returns
// how long the address must wait (0: it may go on). Refused attempts count
// too, but the window does not move: it ends where its first attempt put it.
func (s *Store) registrationAttempt(ctx context.Context, clientIP string, limit int64, window time.Duration) (time.Duration, error) {
	key := s.prefix + "throttle:r:" + addrKey(clientIP)
	var incr *redis.IntCmd
	var ttl *redis.DurationCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, key)
		pexpire(ctx, p, key, window, "nx")
		ttl = p.PTTL(ctx, key)
		return nil
	})
	if err != nil {
		return 0, storeErr("throttle", err)
	}
	if incr.Val() <= limit {
		return 0, nil
	}
	return retryAfter(max(ttl.Val(), time.Millisecond)), nil
}

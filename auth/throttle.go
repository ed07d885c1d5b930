package auth

// Login throttling (README "Configuration reference", auth.max_login_failures).
//
// Failed logins are counted in three fixed windows: per (email, client
// address) up to max_login_failures, per email over all addresses and per
// address over all emails up to 10x that. A window starts at the first
// failure (INCR, then PEXPIRE NX) and lasts login_failure_window; the
// attempt after the limit is refused until the window ends, before any
// bcrypt work and even with the right password.
//
// Why a hand-rolled counter and not go-redis/redis_rate: redis_rate is GCRA,
// which refills continuously, so a client locked out after N failures would
// get a fresh attempt every window/N instead of being refused "until the
// window ends" as documented, and the Retry-After it reports would be
// the time to the next token, not to the end of the window. A fixed window
// is also one INCR per key, cheap and easy to reason about.
//
// Concurrency: a check alone would let a burst of parallel attempts all pass
// before any of them failed and counted. So an attempt that passes the check
// reserves its slot (INCR) before bcrypt; if that pushed a counter over its
// limit, the reservation is undone and the attempt refused. After bcrypt a
// failure keeps the reservation (that is the "increment on failure"), a
// success gives it back (DEL of the email-and-address counter, DECR of the
// other two, since only failures count), and an attempt that never reached
// bcrypt gives all of it back. Refused attempts never count, so one
// attacker's address cannot use them to lock an account out everywhere.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"time"

	"github.com/redis/go-redis/v9"
)

// throttleKeys are the three counters of one attempt: email and address,
// email, address.
type throttleKeys [3]string

// throttleLimits are the limits of the counters in throttleKeys' order.
type throttleLimits [3]int64

func (s *Store) throttleKeys(email, clientIP string) throttleKeys {
	addr := addrKey(clientIP)
	return throttleKeys{
		s.prefix + "throttle:ei:" + sha256Hex(email+"|"+addr),
		s.prefix + "throttle:e:" + sha256Hex(email),
		s.prefix + "throttle:i:" + addr,
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// addrKey is the client address as a counter key. IPv4-mapped IPv6 counts
// as IPv4; an IPv6 address counts as its /64, which one client typically
// owns whole, so that walking through it does not reset the count. What
// does not parse (it should not happen: the proxy passes an IP) is hashed,
// keeping key names short and printable.
func addrKey(clientIP string) string {
	a, err := netip.ParseAddr(clientIP)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(clientIP)
		if err2 != nil {
			return "h:" + sha256Hex(clientIP)
		}
		a = ap.Addr()
	}
	a = a.WithZone("").Unmap()
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// retryAfter is the Retry-After of a window with pttl milliseconds left:
// whole seconds, rounded up, at least one.
func retryAfter(pttl time.Duration) time.Duration {
	d := (pttl + time.Second - 1).Truncate(time.Second)
	if d < time.Second {
		d = time.Second
	}
	return d
}

// throttleCheck reads the three counters in one pipelined round trip and
// returns how long the attempt must wait (0: it may go on).
func (s *Store) throttleCheck(ctx context.Context, k throttleKeys, lim throttleLimits, window time.Duration) (time.Duration, error) {
	var gets [3]*redis.StringCmd
	var ttls [3]*redis.DurationCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range k {
			gets[i] = p.Get(ctx, k[i])
			ttls[i] = p.PTTL(ctx, k[i])
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return 0, storeErr("throttle", err)
	}
	// Pipelined reports only the first error, which may be a GET's
	// redis.Nil hiding a broken connection behind it.
	for i := range k {
		for _, cerr := range []error{gets[i].Err(), ttls[i].Err()} {
			if cerr != nil && cerr != redis.Nil {
				return 0, storeErr("throttle", cerr)
			}
		}
	}
	var wait time.Duration
	for i := range k {
		n, err := gets[i].Int64()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			// A counter that is not a number is damage, not an outage;
			// count it as full so nobody gets unlimited attempts.
			n = lim[i]
		}
		if n < lim[i] {
			continue
		}
		d, err := s.windowLeft(ctx, k[i], ttls[i].Val(), window)
		if err != nil {
			return 0, err
		}
		wait = max(wait, d)
	}
	return wait, nil
}

// windowLeft turns a PTTL reply into the time left in the window. A counter
// without expiry (INCR applied, PEXPIRE lost to a dropped connection) would
// lock its owner out for ever; it gets its window now.
func (s *Store) windowLeft(ctx context.Context, key string, pttl, window time.Duration) (time.Duration, error) {
	switch {
	case pttl > 0:
		return retryAfter(pttl), nil
	case pttl == -1:
		if err := pexpire(ctx, s.rdb, key, window, "nx").Err(); err != nil {
			return 0, storeErr("throttle", err)
		}
		return retryAfter(window), nil
	default: // -2: expired just now
		return 0, nil
	}
}

// throttleReserve counts the attempt in all three windows before the
// password is checked. When that pushes a counter over its limit, another
// attempt took the last slot: the reservation is undone and the wait
// returned.
func (s *Store) throttleReserve(ctx context.Context, k throttleKeys, lim throttleLimits, window time.Duration) (time.Duration, error) {
	var incrs [3]*redis.IntCmd
	var ttls [3]*redis.DurationCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range k {
			incrs[i] = p.Incr(ctx, k[i])
			pexpire(ctx, p, k[i], window, "nx")
			ttls[i] = p.PTTL(ctx, k[i])
		}
		return nil
	})
	if err != nil {
		return 0, storeErr("throttle", err)
	}
	var wait time.Duration
	for i := range k {
		if incrs[i].Val() > lim[i] {
			wait = max(wait, retryAfter(max(ttls[i].Val(), time.Millisecond)))
		}
	}
	if wait > 0 {
		if err := s.throttleRelease(ctx, k, false); err != nil {
			return 0, err
		}
	}
	return wait, nil
}

// throttleRelease gives a reservation back: after a successful login
// (success: the email-and-address window is reset, the other two lose the
// reservation) or when the attempt never reached the password check.
func (s *Store) throttleRelease(ctx context.Context, k throttleKeys, success bool) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range k {
			if i == 0 && success {
				p.Del(ctx, k[i])
				continue
			}
			p.Decr(ctx, k[i])
			// If the window ended since the reservation, DECR just made a
			// new key; give it a window rather than let it live for ever.
			pexpire(ctx, p, k[i], windowOfRecreated, "nx")
		}
		return nil
	})
	if err != nil {
		return storeErr("throttle", err)
	}
	return nil
}

// windowOfRecreated is the lifetime of a counter that a DECR recreated (at
// -1) after its window ended: short, since it only grants one spare attempt.
const windowOfRecreated = time.Minute

// throttleLimitsFor derives the three limits from max_login_failures.
func throttleLimitsFor(maxFailures int) throttleLimits {
	n := int64(maxFailures)
	return throttleLimits{n, 10 * n, 10 * n}
}

// pexpire sends PEXPIRE key ms mode (mode "nx" or "gt", Redis 7.0+), which
// go-redis has no typed method for.
func pexpire(ctx context.Context, c interface {
	Do(context.Context, ...any) *redis.Cmd
}, key string, d time.Duration, mode string) *redis.Cmd {
	return c.Do(ctx, "pexpire", key, d.Milliseconds(), mode)
}

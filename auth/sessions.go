package auth

// Redis layout (version 1). P is redis.key_prefix ("gatehouse:" by default),
// put in front of each name as is: gatehouse:user:ann@example.com.
//
//	P{u:<userID>}:s:<hex sha256(token)>   string, see sessionValue
//	    (user id, email, the account's groups, second factor, method,
//	    created, client address, user agent).
//	    One session. Created with SET ... PX min(idle, end-now); checked and
//	    refreshed with the single command GETEX key PX min(idle, end-now),
//	    where end is the absolute end carried by the token itself. Its TTL
//	    is therefore never later than the absolute end, and a token whose
//	    end has passed is refused without asking Redis. Changing the end in
//	    a token changes its hash, so the altered token finds nothing.
//
//	P{u:<userID>}:sessions                sorted set, member hex sha256(token), score end (Unix ms)
//	    The user's sessions, for "log out everywhere", users delete and
//	    sessions revoke. Written in the same MULTI/EXEC as the session key:
//	    the hash tag {u:<userID>} puts both in one Cluster slot. Members
//	    whose absolute end passed are trimmed (ZREMRANGEBYSCORE) at every
//	    login; members whose key expired early (idle) stay until their end,
//	    and deleting them is harmless. The set expires with its latest
//	    member (PEXPIRE NX, then PEXPIRE GT).
//
//	P{u:<userID>}:account                 string, JSON {"email","groups","disabled"}
//	    What access decisions depend on, in the slot of the sessions: see
//	    accountRecord. A change to it rewrites or deletes the user's session
//	    and token values in the same transaction.
//
//	P{u:<userID>}:t:<hex sha256(token)>   string, see sessionValue (an API token)
//	P{u:<userID>}:tokens                  sorted set, member hex sha256(token), score end
//	    API tokens: like sessions, without an idle timer (see apitokens.go).
//
//	Puser:<email>                        string, JSON {"id","email","hash","created"}
//	    The account; email is normalised (NormalizeEmail). Created with
//	    SET NX, so one email has one account even under concurrent
//	    registration. hash is bcrypt.
//
//	Pthrottle:ei:<hex sha256(email "|" address)>   counter
//	Pthrottle:e:<hex sha256(email)>                 counter
//	Pthrottle:i:<address, IPv6 as its /64>          counter
//	    Failed logins in a fixed window starting at the first failure:
//	    INCR + PEXPIRE NX. See throttle.go.
//	Pthrottle:r:<address>                            counter
//	    Registrations per client address (auth.max_registrations).
//	Pthrottle:d:<hex sha256(nonce)>, Pdevice_key      see device.go
//	    Device cookies: a browser that signed in before is counted on its
//	    own instead of in the per-email counter over all addresses.
//
//	P{u:<userID>}:totp, :totp:pending, :passkeys, Pwebauthn:<id>
//	    Second factors: see totp.go and passkey.go.
//
// The store never holds a raw token or a password: only SHA-256 of tokens
// and bcrypt of passwords. Emails are hashed in throttle keys so that an
// address book of attempted logins cannot be read off the key names.
//
// Redis 7.0 or later is required (GETEX, PEXPIRE NX/GT).

import (
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

// revokeBatch bounds the keys of one DEL during a revocation, so a user
// with very many sessions does not produce one huge command.
const revokeBatch = 256

func (s *Store) indexKey(userID string) string {
	return s.prefix + "{u:" + userID + "}:sessions"
}

// sessionKeyHash is the key of the session whose token hashes to h.
func (s *Store) sessionKeyHash(userID, h string) string {
	return s.prefix + "{u:" + userID + "}:s:" + h
}

// sessionKey builds P{u:<userID>}:s:<hex sha256(tok)> with one allocation:
// it runs on every authenticated request.
func (s *Store) sessionKey(userID, tok string) string {
	var hx [2 * sha256.Size]byte
	appendTokenHash(hx[:0], tok)
	var b strings.Builder
	b.Grow(len(s.prefix) + len("{u:}:s:") + len(userID) + len(hx))
	b.WriteString(s.prefix)
	b.WriteString("{u:")
	b.WriteString(userID)
	b.WriteString("}:s:")
	b.Write(hx[:])
	return b.String()
}

// sessionTTL is how long a session key may live from now: the idle timeout,
// capped at the absolute end (left). idle 0 means no idle limit.
func sessionTTL(idle, left time.Duration) time.Duration {
	ttl := left
	if idle > 0 && idle < ttl {
		ttl = idle
	}
	// Redis takes whole milliseconds; rounding down keeps the key from
	// outliving the absolute end.
	return ttl.Truncate(time.Millisecond)
}

// newSessionMeta is what a new session records besides its user.
type newSessionMeta struct {
	MFA bool
	// Factor is what passed the second factor (credential.FactorOTP or
	// FactorHardwareKey); with MFA and no Factor, a one-time code.
	Factor    string
	Method    credential.Method
	IP        string
	UserAgent string
}

// createSession stores a new session for u that ends at end (whole
// seconds) and returns its token. The account record is WATCHed while the
// session is written: a group change or a disable that lands between
// reading the record and writing the session makes the write fail and
// retry, so a login racing a change never walks away with the old grant.
// A disabled account gets ErrInvalidCredentials.
func (s *Store) createSession(ctx context.Context, u User, end, now time.Time, idle time.Duration, meta newSessionMeta) (string, error) {
	left := end.Sub(now)
	ttl := sessionTTL(idle, left)
	if ttl < time.Millisecond {
		return "", errors.New("auth: session would end before it starts")
	}
	tok, err := newToken(u.ID, end)
	if err != nil {
		return "", err
	}
	h := tokenHash(tok)
	idx := s.indexKey(u.ID)
	acct := s.accountKey(u.ID)
	if meta.Method == "" {
		meta.Method = credential.MethodPassword
	}
	for range maxTxRetries {
		var refused error
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			a, err := readAccount(ctx, tx, acct)
			if err != nil {
				refused = err
				return err
			}
			if a.Disabled {
				refused = ErrInvalidCredentials
				return refused
			}
			v := sessionValue{UserID: u.ID, Email: u.Email, Groups: joinGroups(a.Groups), MFA: meta.MFA,
				Factor: meta.Factor, Method: meta.Method, Created: now, IP: meta.IP, UserAgent: meta.UserAgent}
			// Relative PEXPIRE rather than PEXPIREAT: Redis and the gateway
			// may not agree on the wall clock, but they agree on durations.
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, s.sessionKeyHash(u.ID, h), v.decision().encode(), ttl)
				s.index(ctx, p, idx, s.infoKey(idx), h, v, end, now)
				return nil
			})
			return err
		}, acct)
		switch {
		case err == nil:
			return tok, nil
		case refused != nil:
			if errors.Is(refused, errCorruptUser) {
				return "", refused
			}
			if errors.Is(refused, ErrInvalidCredentials) {
				return "", refused
			}
			return "", storeErr("session_create", refused)
		case errors.Is(err, redis.TxFailedErr):
			continue
		default:
			return "", storeErr("session_create", err)
		}
	}
	return "", storeErr("session_create", errors.New("account changed during the login, retries exhausted"))
}

// infoKey is the info hash of an index (see sessionValue).
func (s *Store) infoKey(idx string) string { return idx + ":info" }

// index queues, in a MULTI, the index entry and the info of a new session
// or token h (full value v) ending at end, trims entries whose end has
// passed, and lets the index and the info hash expire with their latest
// member.
func (s *Store) index(ctx context.Context, p redis.Pipeliner, idx, info, h string, v sessionValue, end, now time.Time) {
	left := end.Sub(now)
	nowMS := strconv.FormatInt(now.UnixMilli(), 10)
	p.ZAdd(ctx, idx, redis.Z{Score: float64(end.UnixMilli()), Member: h})
	p.HSet(ctx, info, h, v.encode())
	p.ZRemRangeByScore(ctx, idx, "-inf", nowMS)
	for _, k := range []string{idx, info} {
		pexpire(ctx, p, k, left, "nx")
		pexpire(ctx, p, k, left, "gt")
	}
}

// touchSession is the hot path: one GETEX that reads the session and
// restarts its idle timer (ttl, already capped at the absolute end). ok is
// false when there is no such session. sid is the session's handle, a
// substring of the key (no allocation). No pipeline, no script: INFO
// commandstats counts exactly one command.
func (s *Store) touchSession(ctx context.Context, userID, tok string, ttl time.Duration) (sv sessionValue, sid string, ok bool, err error) {
	key := s.sessionKey(userID, tok)
	v, err := s.rdb.GetEx(ctx, key, ttl).Result()
	if err != nil {
		if err == redis.Nil {
			return sv, "", false, nil
		}
		return sv, "", false, storeErr("authenticate", err)
	}
	sv, ok = decodeSession(v, userID)
	return sv, handleOfKey(key), ok, nil
}

// handleLen is the length of a session's or token's handle: the first 32
// hex characters (128 bits) of the SHA-256 of its token. The hash cannot be
// turned back into the token, and the handle is not even the whole hash.
const handleLen = 32

// handleOfKey returns the handle of a session or token key, whose name
// ends in the 64 hex characters of its token's hash.
func handleOfKey(key string) string {
	return key[len(key)-2*sha256.Size : len(key)-2*sha256.Size+handleLen]
}

// handleOfHash returns the handle of a token hash (an index member).
func handleOfHash(h string) string { return h[:handleLen] }

// getSession reads a session without touching its timer.
func (s *Store) getSession(ctx context.Context, userID, tok string) (sv sessionValue, ok bool, err error) {
	v, err := s.rdb.Get(ctx, s.sessionKey(userID, tok)).Result()
	if err != nil {
		if err == redis.Nil {
			return sv, false, nil
		}
		return sv, false, storeErr("session_get", err)
	}
	sv, ok = decodeSession(v, userID)
	return sv, ok, nil
}

// deleteSession removes one session and its index entry. It reports
// whether a live session was deleted.
func (s *Store) deleteSession(ctx context.Context, userID, tok string) (bool, error) {
	return s.deleteSessionHash(ctx, userID, tokenHash(tok))
}

// findHash returns the member of the index idx whose handle is id, or
// ErrNotFound.
func (s *Store) findHash(ctx context.Context, idx, id string) (string, error) {
	if len(id) != handleLen {
		return "", ErrNotFound
	}
	members, err := s.rdb.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return "", storeErr("session_get", err)
	}
	for _, h := range members {
		if handleOfHash(h) == id {
			return h, nil
		}
	}
	return "", ErrNotFound
}

// deleteSessionHash removes the session whose token hashes to h; it
// reports whether a live session was deleted.
func (s *Store) deleteSessionHash(ctx context.Context, userID, h string) (bool, error) {
	idx := s.indexKey(userID)
	var del *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, s.sessionKeyHash(userID, h))
		p.ZRem(ctx, idx, h)
		p.HDel(ctx, s.infoKey(idx), h)
		return nil
	})
	if err != nil {
		return false, storeErr("session_delete", err)
	}
	return del.Val() > 0, nil
}

// revokeAll deletes every session in the user's index and returns how many
// were alive. Members are removed one by one (ZREM, not DEL of the set), so
// a session created concurrently stays indexed and can still be revoked.
func (s *Store) revokeAll(ctx context.Context, userID string) (int, error) {
	return s.revokeIndex(ctx, userID, s.indexKey(userID), s.sessionKeyHash, "")
}

// revokeIndex deletes the keys (keyOf) of every member of the index idx but
// the one whose hash is keep, and returns how many were alive.
func (s *Store) revokeIndex(ctx context.Context, userID, idx string, keyOf func(userID, h string) string, keep string) (int, error) {
	members, err := s.rdb.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return 0, storeErr("revoke", err)
	}
	n := 0
	for len(members) > 0 {
		chunk := members[:min(len(members), revokeBatch)]
		members = members[len(chunk):]
		keys := make([]string, 0, len(chunk))
		rem := make([]any, 0, len(chunk))
		for _, h := range chunk {
			if h == keep {
				continue
			}
			keys = append(keys, keyOf(userID, h))
			rem = append(rem, h)
		}
		if len(keys) == 0 {
			continue
		}
		var del *redis.IntCmd
		_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			del = p.Del(ctx, keys...)
			p.ZRem(ctx, idx, rem...)
			fields := make([]string, len(rem))
			for i, h := range rem {
				fields[i] = h.(string)
			}
			p.HDel(ctx, s.infoKey(idx), fields...)
			return nil
		})
		if err != nil {
			return n, storeErr("revoke", err)
		}
		n += int(del.Val())
	}
	return n, nil
}

package auth

// Redis layout (version 1). P is redis.key_prefix ("gatehouse:" by default),
// put in front of each name as is: gatehouse:user:ann@example.com.
//
//	P{u:<userID>}:s:<hex sha256(token)>   string "<userID>\n<email>"
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

// createSession stores a new session for u that ends at end (whole
// seconds) and returns its token.
func (s *Store) createSession(ctx context.Context, u User, end, now time.Time, idle time.Duration) (string, error) {
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
	// Relative PEXPIRE rather than PEXPIREAT: Redis and the gateway may not
	// agree on the wall clock, but they agree on durations.
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.sessionKeyHash(u.ID, h), u.ID+"\n"+u.Email, ttl)
		p.ZAdd(ctx, idx, redis.Z{Score: float64(end.UnixMilli()), Member: h})
		p.ZRemRangeByScore(ctx, idx, "-inf", strconv.FormatInt(now.UnixMilli(), 10))
		pexpire(ctx, p, idx, left, "nx")
		pexpire(ctx, p, idx, left, "gt")
		return nil
	})
	if err != nil {
		return "", storeErr("session_create", err)
	}
	return tok, nil
}

// touchSession is the hot path: one GETEX that reads the session and
// restarts its idle timer (ttl, already capped at the absolute end). It
// returns the email, or ok false when there is no such session. No
// pipeline, no script: INFO commandstats counts exactly one command.
func (s *Store) touchSession(ctx context.Context, userID, tok string, ttl time.Duration) (email string, ok bool, err error) {
	v, err := s.rdb.GetEx(ctx, s.sessionKey(userID, tok), ttl).Result()
	if err != nil {
		if err == redis.Nil {
			return "", false, nil
		}
		return "", false, storeErr("authenticate", err)
	}
	email, ok = sessionEmail(v, userID)
	return email, ok, nil
}

// getSession reads a session without touching its timer.
func (s *Store) getSession(ctx context.Context, userID, tok string) (email string, ok bool, err error) {
	v, err := s.rdb.Get(ctx, s.sessionKey(userID, tok)).Result()
	if err != nil {
		if err == redis.Nil {
			return "", false, nil
		}
		return "", false, storeErr("session_get", err)
	}
	email, ok = sessionEmail(v, userID)
	return email, ok, nil
}

// sessionEmail parses "<userID>\n<email>". A value of another user (which
// SHA-256 makes impossible short of a bug) counts as no session.
func sessionEmail(v, userID string) (string, bool) {
	if len(v) <= len(userID) || v[len(userID)] != '\n' || v[:len(userID)] != userID {
		return "", false
	}
	return v[len(userID)+1:], true
}

// deleteSession removes one session and its index entry. It reports
// whether a live session was deleted.
func (s *Store) deleteSession(ctx context.Context, userID, tok string) (bool, error) {
	h := tokenHash(tok)
	var del *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, s.sessionKeyHash(userID, h))
		p.ZRem(ctx, s.indexKey(userID), h)
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
	idx := s.indexKey(userID)
	members, err := s.rdb.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return 0, storeErr("revoke", err)
	}
	n := 0
	for len(members) > 0 {
		chunk := members[:min(len(members), revokeBatch)]
		members = members[len(chunk):]
		keys := make([]string, len(chunk))
		rem := make([]any, len(chunk))
		for i, h := range chunk {
			keys[i] = s.sessionKeyHash(userID, h)
			rem[i] = h
		}
		var del *redis.IntCmd
		_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			del = p.Del(ctx, keys...)
			p.ZRem(ctx, idx, rem...)
			return nil
		})
		if err != nil {
			return n, storeErr("revoke", err)
		}
		n += int(del.Val())
	}
	return n, nil
}

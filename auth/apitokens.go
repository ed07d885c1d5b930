package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

// API tokens are sessions for scripts: the same value and the same one
// command per request (GET, since a token has no idle timer), a key of
// their own (P{u:<id>}:t:<hash>, indexed in P{u:<id>}:tokens), an absolute
// end carried in the token, and a prefix of their own so that the shape
// alone tells one from a session token. They are never accepted as the
// cookie, never pass a second factor, and end when the account's password
// changes or the account is disabled.

// maxTokenName bounds a token's name; maxTokensPerUser bounds how many live
// tokens one account may hold (a listing reads them all).
const (
	maxTokenName     = 64
	maxTokensPerUser = 100
)

// Errors of the token operations.
var (
	// ErrInvalidTokenRequest: an empty, too long or duplicate name, or a
	// lifetime outside 1s..auth.tokens.max_ttl.
	ErrInvalidTokenRequest = errors.New("invalid token request")
	// ErrNotFound: no such token, session or passkey of this user (also one
	// of another user's).
	ErrNotFound = errors.New("not found")
)

// TokenInfo is an API token as listings show it: never the token itself.
type TokenInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	LastUsed  *time.Time `json:"last_used_at"`
}

func (s *Store) tokenIndexKey(userID string) string {
	return s.prefix + "{u:" + userID + "}:tokens"
}

func (s *Store) tokenKeyHash(userID, h string) string {
	return s.prefix + "{u:" + userID + "}:t:" + h
}

// createToken stores a new API token named name for u, ending at end, and
// returns it with its info. Like createSession it WATCHes the account (a
// disabled account gets ErrInvalidCredentials) and the token index (names
// are unique among live tokens). creator is the handle of the session that
// asks ("" for the operator): its index is WATCHed too and the session must
// still exist inside the transaction, so that a token minted while a
// password change or an account deletion sweeps the user's sessions and
// tokens either exists before the token sweep or is refused
// (ErrSessionNotFound), never outlives it.
func (s *Store) createToken(ctx context.Context, u User, name string, end, now time.Time, creator string) (string, TokenInfo, error) {
	tok, err := newAPIToken(u.ID, end)
	if err != nil {
		return "", TokenInfo{}, err
	}
	h := tokenHash(tok)
	acct, idx, sidx := s.accountKey(u.ID), s.tokenIndexKey(u.ID), s.indexKey(u.ID)
	watched := []string{acct, idx}
	if creator != "" {
		watched = append(watched, sidx)
	}
	left := end.Sub(now)
	for range maxTxRetries {
		var refused error
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			a, err := readAccount(ctx, tx, acct)
			if err != nil {
				refused = err
				return err
			}
			if creator != "" {
				alive, err := s.sessionAlive(ctx, tx, u.ID, sidx, creator)
				if err != nil {
					return err
				}
				if !alive {
					refused = ErrSessionNotFound
					return refused
				}
			}
			if a.Disabled {
				refused = ErrInvalidCredentials
				return refused
			}
			live, err := s.listTokens(ctx, tx, u.ID, now)
			if err != nil {
				return err
			}
			if len(live) >= maxTokensPerUser {
				refused = fmt.Errorf("%w: at most %d tokens", ErrInvalidTokenRequest, maxTokensPerUser)
				return refused
			}
			if slices.ContainsFunc(live, func(t TokenInfo) bool { return t.Name == name }) {
				refused = fmt.Errorf("%w: a token named %q exists", ErrInvalidTokenRequest, name)
				return refused
			}
			v := sessionValue{UserID: u.ID, Email: u.Email, Groups: joinGroups(a.Groups),
				Method: credential.MethodToken, Created: now, Name: name}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, s.tokenKeyHash(u.ID, h), v.decision().encode(), left.Truncate(time.Millisecond))
				s.index(ctx, p, idx, s.infoKey(idx), h, v, end, now)
				return nil
			})
			return err
		}, watched...)
		switch {
		case err == nil:
			return tok, TokenInfo{ID: handleOfHash(h), Name: name, CreatedAt: now.UTC().Truncate(time.Second), ExpiresAt: end.UTC()}, nil
		case refused != nil:
			if errors.Is(refused, ErrInvalidCredentials) || errors.Is(refused, ErrInvalidTokenRequest) || errors.Is(refused, errCorruptUser) ||
				errors.Is(refused, ErrSessionNotFound) {
				return "", TokenInfo{}, refused
			}
			return "", TokenInfo{}, storeErr("session_create", refused)
		case errors.Is(err, redis.TxFailedErr):
			continue
		default:
			return "", TokenInfo{}, storeErr("session_create", err)
		}
	}
	return "", TokenInfo{}, storeErr("session_create", errors.New("tokens changed during the update, retries exhausted"))
}

// sessionAlive reports whether the user's session whose handle is sid is
// still indexed and its key still exists (read inside a WATCH of the
// index, which every revocation changes).
func (s *Store) sessionAlive(ctx context.Context, c redis.Cmdable, userID, sidx, sid string) (bool, error) {
	members, err := c.ZRange(ctx, sidx, 0, -1).Result()
	if err != nil {
		return false, err
	}
	for _, h := range members {
		if handleOfHash(h) == sid {
			n, err := c.Exists(ctx, s.sessionKeyHash(userID, h)).Result()
			return n == 1, err
		}
	}
	return false, nil
}

// getToken is the hot path of an API token: one GET.
func (s *Store) getToken(ctx context.Context, userID, tok string) (sv sessionValue, sid string, ok bool, err error) {
	var hx [64]byte
	key := s.tokenKeyHash(userID, string(appendTokenHash(hx[:0], tok)))
	v, err := s.rdb.Get(ctx, key).Result()
	if err != nil {
		if err == redis.Nil {
			return sv, "", false, nil
		}
		return sv, "", false, storeErr("authenticate", err)
	}
	sv, ok = decodeSession(v, userID)
	return sv, handleOfKey(key), ok && sv.Method == credential.MethodToken, nil
}

// listTokens returns the user's live tokens, newest first.
func (s *Store) listTokens(ctx context.Context, c redis.Cmdable, userID string, now time.Time) ([]TokenInfo, error) {
	entries, err := s.listIndex(ctx, c, userID, s.tokenIndexKey(userID), s.tokenKeyHash, now)
	if err != nil {
		return nil, err
	}
	out := make([]TokenInfo, len(entries))
	for i, e := range entries {
		out[i] = TokenInfo{ID: handleOfHash(e.hash), Name: e.v.Name, CreatedAt: e.v.Created.UTC(), ExpiresAt: e.end, LastUsed: e.lastUsed}
		// Writing the key at creation starts its idle time: a token whose
		// last use is its creation has not been used (within that second).
		if e.lastUsed != nil && !e.lastUsed.After(e.v.Created) {
			out[i].LastUsed = nil
		}
	}
	return out, nil
}

// revokeToken deletes the user's token whose handle is id.
func (s *Store) revokeToken(ctx context.Context, userID, id string) error {
	idx := s.tokenIndexKey(userID)
	members, err := s.rdb.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return storeErr("revoke", err)
	}
	for _, h := range members {
		if len(id) == handleLen && handleOfHash(h) == id {
			var del *redis.IntCmd
			_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				del = p.Del(ctx, s.tokenKeyHash(userID, h))
				p.ZRem(ctx, idx, h)
				p.HDel(ctx, s.infoKey(idx), h)
				return nil
			})
			if err != nil {
				return storeErr("revoke", err)
			}
			if del.Val() == 0 {
				return ErrNotFound
			}
			return nil
		}
	}
	return ErrNotFound
}

// revokeTokens deletes every API token of the user.
func (s *Store) revokeTokens(ctx context.Context, userID string) (int, error) {
	return s.revokeIndex(ctx, userID, s.tokenIndexKey(userID), s.tokenKeyHash, "")
}

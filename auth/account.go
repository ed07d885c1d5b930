package auth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// accountRecord is the part of an account that access decisions depend on,
// stored at P{u:<userID>}:account, in the Cluster slot of the user's
// sessions and tokens: a change to it and the rewrite of every session and
// token value it affects are one transaction. An account registered before
// this record existed has none, which reads as no groups, not disabled.
type accountRecord struct {
	Email    string   `json:"email"`
	Groups   []string `json:"groups,omitempty"` // sorted, distinct
	Disabled bool     `json:"disabled,omitempty"`
}

func (s *Store) accountKey(userID string) string {
	return s.prefix + "{u:" + userID + "}:account"
}

// maxTxRetries bounds the optimistic retries of a WATCHed transaction.
const maxTxRetries = 16

func decodeAccount(b []byte) (*accountRecord, error) {
	var a accountRecord
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, errCorruptUser
	}
	return &a, nil
}

// readAccount reads the account record inside a WATCH (tx) or outside it
// (a plain client); a missing record is the zero record.
func readAccount(ctx context.Context, c redis.Cmdable, key string) (*accountRecord, error) {
	b, err := c.Get(ctx, key).Bytes()
	if err == redis.Nil {
		return &accountRecord{}, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeAccount(b)
}

// getAccount returns the account record of userID.
func (s *Store) getAccount(ctx context.Context, userID string) (*accountRecord, error) {
	a, err := readAccount(ctx, s.rdb, s.accountKey(userID))
	if err != nil && !errors.Is(err, errCorruptUser) {
		return nil, storeErr("user_get", err)
	}
	return a, err
}

// putAccount writes a new account's record (registration).
func (s *Store) putAccount(ctx context.Context, userID string, a *accountRecord) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.accountKey(userID), b, 0).Err(); err != nil {
		return storeErr("user_update", err)
	}
	return nil
}

// deleteAccount removes the account record and the info hashes of userID
// (users delete, after its sessions and tokens were swept).
func (s *Store) deleteAccount(ctx context.Context, userID string) error {
	err := s.rdb.Del(ctx, s.accountKey(userID), s.infoKey(s.indexKey(userID)), s.infoKey(s.tokenIndexKey(userID))).Err()
	if err != nil {
		return storeErr("user_delete", err)
	}
	return nil
}

// changeAccount applies change to userID's account record and, in the same
// MULTI, with rewrite set, writes the record's groups into the stored value
// of every live session and API token of the user, or with revoke deletes
// them all. WATCH on the record and both indexes makes it one step
// with any concurrent login (which WATCHes the record while it creates a
// session): either the login sees the change, or the change sees the
// login's session. The keys share the user's hash tag, so this holds on a
// Cluster too.
func (s *Store) changeAccount(ctx context.Context, userID string, change func(*accountRecord) error,
	rewrite, revoke bool) (*accountRecord, error) {
	acct, sidx, tidx := s.accountKey(userID), s.indexKey(userID), s.tokenIndexKey(userID)
	var result *accountRecord
	for range maxTxRetries {
		var changeErr error
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			a, err := readAccount(ctx, tx, acct)
			if err != nil {
				changeErr = err
				return err
			}
			if err := change(a); err != nil {
				changeErr = err
				return err
			}
			b, err := json.Marshal(a)
			if err != nil {
				return err
			}
			keys, err := s.liveKeys(ctx, tx, userID, sidx, tidx)
			if err != nil {
				return err
			}
			var sinfo, tinfo map[string]string
			if rewrite && !revoke {
				if sinfo, err = tx.HGetAll(ctx, s.infoKey(sidx)).Result(); err != nil {
					return err
				}
				if tinfo, err = tx.HGetAll(ctx, s.infoKey(tidx)).Result(); err != nil {
					return err
				}
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, acct, b, 0)
				switch {
				case revoke:
					if len(keys) > 0 {
						p.Del(ctx, keys...)
					}
					p.Del(ctx, sidx, tidx, s.infoKey(sidx), s.infoKey(tidx))
				case rewrite:
					groups := joinGroups(a.Groups)
					for _, set := range []struct {
						info  map[string]string
						ikey  string
						keyOf func(userID, h string) string
					}{{sinfo, s.infoKey(sidx), s.sessionKeyHash}, {tinfo, s.infoKey(tidx), s.tokenKeyHash}} {
						for h, raw := range set.info {
							sv, ok := decodeSession(raw, userID)
							if !ok {
								continue
							}
							sv.Groups = groups
							// XX: never resurrect a key that expired
							// meanwhile; KEEPTTL: a rewrite neither extends
							// nor shortens it.
							p.SetArgs(ctx, set.keyOf(userID, h), sv.decision().encode(), redis.SetArgs{Mode: "XX", KeepTTL: true})
							p.HSet(ctx, set.ikey, h, sv.encode())
						}
					}
				}
				return nil
			})
			result = a
			return err
		}, acct, sidx, tidx)
		switch {
		case err == nil:
			return result, nil
		case changeErr != nil:
			return nil, changeErr
		case errors.Is(err, redis.TxFailedErr):
			continue
		default:
			return nil, storeErr("user_update", err)
		}
	}
	return nil, storeErr("user_update", errors.New("account changed during the update, retries exhausted"))
}

// liveKeys lists the keys of the user's indexed sessions and tokens.
func (s *Store) liveKeys(ctx context.Context, c redis.Cmdable, userID, sidx, tidx string) ([]string, error) {
	sess, err := c.ZRange(ctx, sidx, 0, -1).Result()
	if err != nil {
		return nil, err
	}
	toks, err := c.ZRange(ctx, tidx, 0, -1).Result()
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(sess)+len(toks))
	for _, h := range sess {
		keys = append(keys, s.sessionKeyHash(userID, h))
	}
	for _, h := range toks {
		keys = append(keys, s.tokenKeyHash(userID, h))
	}
	return keys, nil
}

// applyGroups returns groups with add added and remove removed, sorted and
// distinct.
func applyGroups(groups, add, remove []string) []string {
	out := slices.Clone(groups)
	for _, g := range add {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	out = slices.DeleteFunc(out, func(g string) bool { return slices.Contains(remove, g) })
	slices.Sort(out)
	return slices.Compact(out)
}

// joinGroups is the stored and header form of a sorted group list.
func joinGroups(groups []string) string { return strings.Join(groups, ",") }

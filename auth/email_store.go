package auth

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/redis/go-redis/v9"
)

// Accounts made before NormalizeEmail used PRECIS and IDNA are stored
// under legacyEmailKey of what their owner typed (strings.ToLower). Where
// that differs from the new form ("ς@x.com" is now "σ@x.com", a Unicode
// domain is now its xn-- form), the account is found by its old key when
// the new one has none, and moved under the new key on that first
// sign-in. The move copies the record (SET NX: an account already under
// the new key always wins) and then deletes the old key only if it still
// holds the same account and hash. Both keys are never two accounts: the
// copy keeps the user id, and sessions, the index and everything else hang
// off the id. The two keys may be in different Redis Cluster slots, so the
// move is two steps, not one MULTI; in between, both keys name the same
// account.

// getUserOrLegacy returns the account of the normalised email, or when it
// has none and legacy (legacyEmailKey of the input) differs, the account
// stored under legacy, moved under email. ErrUserNotFound when neither has
// one.
func (s *Store) getUserOrLegacy(ctx context.Context, email, legacy string) (*userRecord, error) {
	rec, err := s.getUser(ctx, email)
	if !errors.Is(err, ErrUserNotFound) || legacy == email || legacy == "" {
		return rec, err
	}
	old, err := s.getUser(ctx, legacy)
	if err != nil {
		return nil, err
	}
	return s.migrateUser(ctx, old, email)
}

// migrateUser moves old (read from its legacy key) under the key of email
// and returns the account that key holds afterwards: old's copy, or the
// account that was there first (another sign-in moved it meanwhile, or an
// account was made under the new form), which then wins and old stays
// where it is.
func (s *Store) migrateUser(ctx context.Context, old *userRecord, email string) (*userRecord, error) {
	next := *old
	next.Email = email
	b, err := json.Marshal(&next)
	if err != nil {
		return nil, err
	}
	ok, err := s.rdb.SetNX(ctx, s.userKey(email), b, 0).Result()
	if err != nil {
		return nil, storeErr("user_migrate", err)
	}
	if !ok {
		return s.getUser(ctx, email)
	}
	// Only the very account copied: if its hash changed in between (a
	// rehash), the old key stays, holding the newer hash; the new key is
	// what every lookup finds from now on. A failed delete is not the
	// sign-in's failure: the copy is in place and is the account from now
	// on, and a legacy key left behind is found by nothing and costs only
	// its bytes.
	_ = s.updateUser(ctx, "user_migrate", old.Email, old.ID, func(p redis.Pipeliner, key string, cur *userRecord) error {
		if cur.Hash != old.Hash {
			return errUserChanged
		}
		p.Del(ctx, key)
		return nil
	})
	return &next, nil
}

// emailTaken returns ErrEmailTaken when the normalised email, or its
// legacy key, already has an account. It is the cheap early answer that
// spares a bcrypt hash; createUser's SET NX still decides a race.
func (s *Store) emailTaken(ctx context.Context, email, legacy string) error {
	keys := []string{s.userKey(email)}
	if legacy != email && legacy != "" {
		keys = append(keys, s.userKey(legacy))
	}
	// One EXISTS per key: in a Redis Cluster the two keys are in different
	// slots, and a multi-key EXISTS would be refused.
	var cmds []*redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			cmds = append(cmds, p.Exists(ctx, k))
		}
		return nil
	})
	if err != nil {
		return storeErr("user_get", err)
	}
	for _, c := range cmds {
		if c.Val() > 0 {
			return ErrEmailTaken
		}
	}
	return nil
}

package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// maxPasswordBytes is bcrypt's limit. A longer password is refused at
// registration and at login: bcrypt.CompareHashAndPassword ignores bytes
// past 72, so accepting a longer one at login would let a stored 72-byte
// password match any extension of it.
const maxPasswordBytes = 72

// emailDomainAllowed reports whether the domain of a normalised email is
// in allowed (empty: any). An entry ".example.com" allows its subdomains
// only, as auth.allowed_redirect_hosts does; a leading "@" is ignored.
func emailDomainAllowed(email string, allowed []string) bool {
	if len(allowed) == 0 {
		return true
	}
	domain := email[strings.LastIndexByte(email, '@')+1:]
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(a), "@"))
		if a == "" {
			continue
		}
		if strings.HasPrefix(a, ".") {
			if strings.HasSuffix(domain, a) && len(domain) > len(a) {
				return true
			}
			continue
		}
		if domain == a {
			return true
		}
	}
	return false
}

// checkPassword enforces the registration rules: at least minRunes
// characters, at most 72 bytes (never cut), and checkLoginPassword's.
func checkPassword(pw string, minRunes int) error {
	if err := checkLoginPassword(pw); err != nil {
		return err
	}
	if pw == "" || utf8.RuneCountInString(pw) < minRunes {
		return fmt.Errorf("%w: shorter than %d characters", ErrWeakPassword, minRunes)
	}
	return nil
}

// checkLoginPassword is what a password must be even at login: at most 72
// bytes, and valid UTF-8 without U+FFFD. encoding/json turns a lone
// surrogate ("\ud800") and any invalid byte into U+FFFD without a word,
// so a password holding one is not what its owner typed: several
// different inputs would all be the same password. A form post can carry
// the raw invalid bytes, which are refused alike.
func checkLoginPassword(pw string) error {
	if len(pw) > maxPasswordBytes {
		return fmt.Errorf("%w: longer than %d bytes", ErrWeakPassword, maxPasswordBytes)
	}
	if !utf8.ValidString(pw) || strings.ContainsRune(pw, utf8.RuneError) {
		return fmt.Errorf("%w: holds U+FFFD or invalid UTF-8", ErrWeakPassword)
	}
	return nil
}

// userRecord is the stored account.
type userRecord struct {
	ID      string    `json:"id"`
	Email   string    `json:"email"`
	Hash    string    `json:"hash"`
	Created time.Time `json:"created"`
}

func (r *userRecord) user() User { return User{ID: r.ID, Email: r.Email} }

func (s *Store) userKey(email string) string { return s.prefix + "user:" + email }

// getUser returns the account of a normalised email, or ErrUserNotFound.
func (s *Store) getUser(ctx context.Context, email string) (*userRecord, error) {
	v, err := s.rdb.Get(ctx, s.userKey(email)).Bytes()
	if err != nil {
		if err == redis.Nil {
			return nil, ErrUserNotFound
		}
		return nil, storeErr("user_get", err)
	}
	return decodeUser(v)
}

// errCorruptUser is an account that does not decode. It is neither a store
// outage nor "no such user": the caller answers 500 rather than guess.
var errCorruptUser = errors.New("auth: corrupt user record")

func decodeUser(v []byte) (*userRecord, error) {
	var r userRecord
	if err := json.Unmarshal(v, &r); err != nil || !isUserID(r.ID) || r.Hash == "" {
		return nil, errCorruptUser
	}
	return &r, nil
}

// createUser stores r if its email has no account yet (SET NX), else
// returns ErrEmailTaken.
func (s *Store) createUser(ctx context.Context, r *userRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ok, err := s.rdb.SetNX(ctx, s.userKey(r.Email), b, 0).Result()
	if err != nil {
		return storeErr("user_create", err)
	}
	if !ok {
		return ErrEmailTaken
	}
	return nil
}

// deleteUser deletes the account of a normalised email if it is still the
// one with id, else returns ErrUserNotFound (gone, or deleted and
// registered again: another person's account, which stays). WATCH makes the
// check and the delete one step.
func (s *Store) deleteUser(ctx context.Context, email, id string) error {
	return s.updateUser(ctx, "user_delete", email, id, func(p redis.Pipeliner, key string, _ *userRecord) error {
		p.Del(ctx, key)
		return nil
	})
}

// replaceUserHash stores hash as the password hash of rec's account, if
// the account still is rec (same id and hash); if it is gone or changed, it
// does nothing and returns nil: whoever changed it wins.
func (s *Store) replaceUserHash(ctx context.Context, rec *userRecord, hash string) error {
	err := s.updateUser(ctx, "user_update", rec.Email, rec.ID, func(p redis.Pipeliner, key string, cur *userRecord) error {
		if cur.Hash != rec.Hash {
			return errUserChanged
		}
		next := *cur
		next.Hash = hash
		b, err := json.Marshal(&next)
		if err != nil {
			return err
		}
		p.Set(ctx, key, b, redis.KeepTTL)
		return nil
	})
	if errors.Is(err, ErrUserNotFound) || errors.Is(err, errUserChanged) {
		return nil
	}
	return err
}

// setUserHash stores hash as the password hash of rec's account if it
// still has rec's id (ErrUserNotFound otherwise).
func (s *Store) setUserHash(ctx context.Context, rec *userRecord, hash string) error {
	return s.updateUser(ctx, "user_update", rec.Email, rec.ID, func(p redis.Pipeliner, key string, cur *userRecord) error {
		next := *cur
		next.Hash = hash
		b, err := json.Marshal(&next)
		if err != nil {
			return err
		}
		p.Set(ctx, key, b, redis.KeepTTL)
		return nil
	})
}

// errUserChanged stops an update whose record is no longer the one read.
var errUserChanged = errors.New("auth: account changed")

// updateUser runs queue in a MULTI on the account of a normalised email if
// its id is id, retrying when the account changes between the read and the
// MULTI (WATCH). It returns ErrUserNotFound when there is no such account or
// it has another id, and errCorruptUser or queue's own error unwrapped; a
// Redis failure is a store error of op.
func (s *Store) updateUser(ctx context.Context, op, email, id string, queue func(p redis.Pipeliner, key string, cur *userRecord) error) error {
	key := s.userKey(email)
	var queueErr error
	for range 5 {
		queueErr = nil
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			v, err := tx.Get(ctx, key).Bytes()
			if err != nil {
				return err
			}
			cur, err := decodeUser(v)
			if err != nil {
				queueErr = err
				return err
			}
			if cur.ID != id {
				queueErr = ErrUserNotFound
				return queueErr
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				if err := queue(p, key, cur); err != nil {
					queueErr = err
					return err
				}
				return nil
			})
			return err
		}, key)
		switch {
		case err == nil:
			return nil
		case queueErr != nil:
			return queueErr
		case err == redis.Nil:
			return ErrUserNotFound
		case errors.Is(err, redis.TxFailedErr):
			continue
		default:
			return storeErr(op, err)
		}
	}
	return storeErr(op, errors.New("account changed during the update, retries exhausted"))
}

package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Limits of an email address (RFC 5321: 64 octets of local part, 254 of
// path in practice).
const (
	maxEmailBytes = 254
	maxLocalBytes = 64
)

// maxPasswordBytes is bcrypt's limit. A longer password is refused at
// registration and at login: bcrypt.CompareHashAndPassword ignores bytes
// past 72, so accepting a longer one at login would let a stored 72-byte
// password match any extension of it.
const maxPasswordBytes = 72

// NormalizeEmail returns the canonical form of an email address: trimmed
// and lower-cased. It refuses (ErrInvalidEmail) anything that could make two
// different-looking addresses the same, or one address look like another:
// control, format and other invisible characters (zero-width, bidi
// controls, variation selectors, Hangul fillers), spaces, the characters
// RFC 5322 allows only in quoted local parts, invalid UTF-8, more or less
// than one "@", an empty part, a domain that is neither "localhost" nor has
// a dot between non-empty labels, and more than 254 bytes.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || len(s) > maxEmailBytes || !utf8.ValidString(s) {
		return "", ErrInvalidEmail
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.IndexByte(s[at+1:], '@') >= 0 || at > maxLocalBytes {
		return "", ErrInvalidEmail
	}
	for _, r := range s {
		if !emailRune(r) {
			return "", ErrInvalidEmail
		}
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return "", ErrInvalidEmail
	}
	if domain != "localhost" {
		labels := strings.Split(domain, ".")
		if len(labels) < 2 {
			return "", ErrInvalidEmail
		}
		for _, l := range labels {
			if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
				return "", ErrInvalidEmail
			}
		}
	}
	return s, nil
}

// emailRune reports whether r may appear in a normalised email address.
func emailRune(r rune) bool {
	if r < utf8.RuneSelf {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			return true
		case r <= ' ' || r == 0x7f:
			return false
		}
		// RFC 5322 "specials" are only valid quoted; nobody needs them and
		// they confuse every parser downstream.
		return !strings.ContainsRune(`"(),:;<>[\]`, r)
	}
	// Letters, marks, numbers, punctuation and symbols only: no spaces,
	// controls, format characters (zero-width, bidi), private use or
	// unassigned code points.
	if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S) {
		return false
	}
	// Invisible characters that are letters or marks by category.
	if unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) {
		return false
	}
	switch r {
	case 0x115F, 0x1160, 0x3164, 0xFFA0, // Hangul fillers
		0x034F,         // combining grapheme joiner
		0x17B4, 0x17B5, // Khmer inherent vowels
		0x180B, 0x180C, 0x180D, 0x180F, // Mongolian free variation selectors
		utf8.RuneError:
		return false
	}
	return true
}

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
// characters, at most 72 bytes (never cut).
func checkPassword(pw string, minRunes int) error {
	if len(pw) > maxPasswordBytes {
		return fmt.Errorf("%w: longer than %d bytes", ErrWeakPassword, maxPasswordBytes)
	}
	if pw == "" || utf8.RuneCountInString(pw) < minRunes {
		return fmt.Errorf("%w: shorter than %d characters", ErrWeakPassword, minRunes)
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

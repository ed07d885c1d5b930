package auth

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store is the Redis layout of accounts, sessions and login throttling (see
// sessions.go for the keys). It holds no state of its own besides the client,
// so any number of gateway replicas can share one Redis.
//
// Every error it returns other than "not there" wraps ErrStoreUnavailable:
// a Redis that cannot be asked must never look like a missing session.
type Store struct {
	rdb    redis.UniversalClient
	prefix string

	// Now is the store's clock; nil means time.Now. Tests set it together
	// with miniredis FastForward.
	Now func() time.Time
}

// NewStore returns a Store that puts every key under keyPrefix (for
// example "gatehouse:"). keyPrefix should not contain "{" or "}": the
// session keys rely on their own hash tag to share a Cluster slot.
func NewStore(rdb redis.UniversalClient, keyPrefix string) *Store {
	return &Store{rdb: rdb, prefix: keyPrefix}
}

// Ping reports whether the store answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return storeErr("ping", err)
	}
	return nil
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// storeError is a failed store operation. It is ErrStoreUnavailable for
// errors.Is and keeps the Redis error for logs (never for clients).
type storeError struct {
	op  string
	err error
}

func (e *storeError) Error() string { return "auth: store " + e.op + ": " + e.err.Error() }

func (e *storeError) Unwrap() []error { return []error{ErrStoreUnavailable, e.err} }

// storeErr wraps a Redis error; op names the operation in metrics
// (gatehouse_session_store_errors_total{op}).
func storeErr(op string, err error) error {
	return &storeError{op: op, err: err}
}

// storeOp returns the op of a store error, or "".
func storeOp(err error) string {
	var se *storeError
	if errors.As(err, &se) {
		return se.op
	}
	return ""
}

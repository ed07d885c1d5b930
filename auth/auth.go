// Package auth owns accounts and sessions: registration, login, logout,
// password hashing, brute-force throttling, the Redis layout that stores
// them, and the HTTP handlers and HTML pages of the gateway's own endpoints
// (/login, /register, /logout, /me and the self-service endpoints below it,
// the account page).
//
// It must never store or log a raw session token or a password, never keep a
// token a client brought to a login, and never treat "the store could not be
// asked" as "no session". It does not import package proxy's gateway.
package auth

import (
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

// User is an account as the API shows it.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// Sentinel errors that callers branch on with errors.Is.
var (
	ErrInvalidEmail       = errors.New("invalid email")
	ErrWeakPassword       = errors.New("weak password")
	ErrRegistrationClosed = errors.New("registration closed")
	ErrEmailTaken         = errors.New("email taken")
	ErrInvalidCredentials = errors.New("invalid credentials")
	ErrUserNotFound       = errors.New("user not found")
	// ErrSessionNotFound and ErrStoreUnavailable are package credential's,
	// so that the proxy branches on what Authenticate returns as it is.
	ErrSessionNotFound  = credential.ErrNoSession
	ErrStoreUnavailable = credential.ErrStoreUnavailable
)

// ThrottledError is returned by Login when too many attempts failed; it
// matches ErrTooManyAttempts with errors.Is.
type ThrottledError struct {
	RetryAfter time.Duration
}

// ErrTooManyAttempts is what a ThrottledError is.
var ErrTooManyAttempts = errors.New("too many attempts")

func (e *ThrottledError) Error() string        { return "too many attempts" }
func (e *ThrottledError) Is(target error) bool { return target == ErrTooManyAttempts }

// Seconds is the Retry-After header value: whole seconds, at least 1.
func (e *ThrottledError) Seconds() int {
	return int(retryAfter(e.RetryAfter) / time.Second)
}

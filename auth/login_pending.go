package auth

// Redis layout of the HTML sign-in's second step (same prefix P as
// sessions.go).
//
//	Pmfa:<hex sha256(pending id)>   string, JSON {"user_id","email"}, TTL 5 minutes
//	    A right password for an account with a second factor, waiting for
//	    its code or passkey. The pending id is 32 random bytes (base64url)
//	    that live only in the browser's HttpOnly cookie; the store keeps
//	    its hash, like a session's. It is not a session: it has no gh1.
//	    shape, no session key, and nothing but the second step reads it.
//	    Wrong codes are counted by the login throttle of (email, client
//	    address), so a stolen password cannot be used to try codes without
//	    end; the state is deleted (GETDEL) by the step that succeeds, so it
//	    makes at most one session.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

// PendingTTL is how long the second step of a sign-in waits for its code
// after the password: the Max-Age of its cookie.
const PendingTTL = 5 * time.Minute

// errPendingGone is a second step whose pending state expired, was used,
// or never existed: the user must give the password again.
var errPendingGone = errors.New("sign-in expired")

// pendingLogin is the stored state of a second step.
type pendingLogin struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	// Password is the SHA-256 of the password hash the first step
	// checked: a password changed or set meanwhile voids the second step.
	Password string `json:"password"`
}

func (s *Store) pendingKey(id string) string { return s.prefix + "mfa:" + sha256Hex(id) }

// beginPending stores the pending state of u, whose password (hash) the
// first step checked, and returns its id.
func (s *Service) beginPending(ctx context.Context, u User, hash string) (string, error) {
	var b [stateIDBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: pending sign-in id: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	v, err := json.Marshal(pendingLogin{UserID: u.ID, Email: u.Email, Password: sha256Hex(hash)})
	if err != nil {
		return "", err
	}
	if err := s.store.rdb.Set(ctx, s.store.pendingKey(id), v, PendingTTL).Err(); err != nil {
		err = storeErr("factors", err)
		s.metrics.storeError(err)
		return "", err
	}
	return id, nil
}

// pending returns the state of the pending id, or errPendingGone.
func (s *Service) pending(ctx context.Context, id string) (*pendingLogin, error) {
	if !isStateID(id) {
		return nil, errPendingGone
	}
	v, err := s.store.rdb.Get(ctx, s.store.pendingKey(id)).Bytes()
	if err == redis.Nil {
		return nil, errPendingGone
	}
	if err != nil {
		return nil, storeErr("factors", err)
	}
	var p pendingLogin
	if json.Unmarshal(v, &p) != nil || !isUserID(p.UserID) {
		return nil, errPendingGone
	}
	return &p, nil
}

// takePending deletes the pending state of id, and reports errPendingGone
// when another request took it first: one pending state, one session.
func (s *Service) takePending(ctx context.Context, id string) error {
	n, err := s.store.rdb.Del(ctx, s.store.pendingKey(id)).Result()
	if err != nil {
		return storeErr("factors", err)
	}
	if n == 0 {
		return errPendingGone
	}
	return nil
}

// pendingFactors returns a pending sign-in and its user's second factors,
// for its page to offer them; errPendingGone without one.
func (s *Service) pendingFactors(ctx context.Context, id string) (*pendingLogin, []string, error) {
	p, err := s.pending(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	f, err := s.factors.Factors(ctx, p.UserID)
	if err != nil {
		return nil, nil, err
	}
	return p, f, nil
}

// secondStepCode ends the pending sign-in id with a TOTP or recovery code
// and returns the user and a new session with MFA set (method password).
// The attempt goes through the login throttle of the user's email and the
// client address exactly as a password does: refused when over the limit,
// a wrong code kept as a failure. Errors: errPendingGone,
// ErrInvalidCredentials (a wrong code), *ThrottledError,
// ErrStoreUnavailable.
func (s *Service) secondStepCode(ctx context.Context, id, code string, req LoginRequest) (u User, tok string, err error) {
	defer func() {
		s.metrics.login(err)
		s.metrics.storeError(err)
	}()
	p, err := s.pending(ctx, id)
	if err != nil {
		return User{}, "", err
	}
	keys, limits := s.loginThrottle(ctx, p.Email, req.ClientIP, req.Devices)
	wait, err := s.store.throttleCheck(ctx, keys, limits, s.window)
	if err != nil {
		return User{}, "", err
	}
	if wait == 0 {
		if wait, err = s.store.throttleReserve(ctx, keys, limits, s.window); err != nil {
			return User{}, "", err
		}
	}
	if wait > 0 {
		return User{}, "", &ThrottledError{RetryAfter: wait}
	}
	keep := false
	defer func() {
		if !keep {
			s.releaseThrottle(ctx, keys, err == nil)
		}
	}()
	if err := s.factors.Verify(ctx, p.UserID, code); err != nil {
		if errors.Is(err, ErrInvalidCode) {
			keep = true
			return User{}, "", ErrInvalidCredentials
		}
		return User{}, "", err
	}
	if err := s.takePending(ctx, id); err != nil {
		return User{}, "", err
	}
	u = User{ID: p.UserID, Email: p.Email}
	tok, err = s.completeLogin(ctx, u, newSessionMeta{MFA: true, Factor: credential.FactorOTP, Method: credential.MethodPassword, IP: req.ClientIP, UserAgent: req.UserAgent}, req.Previous, p.Password)
	return u, tok, err
}

// beginSecondStepPasskey starts the passkey check of a pending sign-in.
func (s *Service) beginSecondStepPasskey(ctx context.Context, id, origin string) ([]byte, string, error) {
	p, err := s.pending(ctx, id)
	if err != nil {
		return nil, "", err
	}
	return s.factors.BeginPasskeySecondFactor(ctx, origin, p.UserID)
}

// secondStepPasskey ends the pending sign-in id with the browser's answer
// to beginSecondStepPasskey: a session with MFA set, method password.
func (s *Service) secondStepPasskey(ctx context.Context, id, stateID string, body []byte, req LoginRequest) (u User, tok string, err error) {
	defer func() {
		s.metrics.login(err)
		s.metrics.storeError(err)
	}()
	p, err := s.pending(ctx, id)
	if err != nil {
		return User{}, "", err
	}
	if err := s.factors.FinishPasskeySecondFactor(ctx, p.UserID, stateID, body); err != nil {
		return User{}, "", err
	}
	if err := s.takePending(ctx, id); err != nil {
		return User{}, "", err
	}
	u = User{ID: p.UserID, Email: p.Email}
	tok, err = s.completeLogin(ctx, u, newSessionMeta{MFA: true, Factor: credential.FactorHardwareKey, Method: credential.MethodPassword, IP: req.ClientIP, UserAgent: req.UserAgent}, req.Previous, p.Password)
	return u, tok, err
}

// passkeyLogin ends a passwordless sign-in (BeginPasskeyLogin's answer): a
// session with MFA set and method passkey for the account the passkey
// names, provided that account still exists with that id (an account
// deleted and registered again under the same email has a new id, and
// the old passkey is not its) and is not disabled. Errors: ErrInvalidCode,
// ErrInvalidCredentials (no such account, or disabled), ErrStoreUnavailable.
func (s *Service) passkeyLogin(ctx context.Context, stateID string, body []byte, req LoginRequest) (u User, tok string, err error) {
	defer func() {
		s.metrics.login(err)
		s.metrics.storeError(err)
	}()
	userID, email, err := s.factors.FinishPasskeyLogin(ctx, stateID, body)
	if err != nil {
		return User{}, "", err
	}
	rec, err := s.store.getUser(ctx, email)
	if errors.Is(err, ErrUserNotFound) || (err == nil && rec.ID != userID) {
		return User{}, "", ErrInvalidCredentials
	}
	if err != nil {
		return User{}, "", err
	}
	u = rec.user()
	tok, err = s.completeLogin(ctx, u, newSessionMeta{MFA: true, Factor: credential.FactorHardwareKey, Method: credential.MethodPasskey, IP: req.ClientIP, UserAgent: req.UserAgent}, req.Previous, "")
	return u, tok, err
}

// completeLogin ends the session the client brought, creates the new one
// (createSession refuses a disabled account with ErrInvalidCredentials)
// and then looks at the account again, as LoginWith does: an account
// deleted while this ran must not walk away with a fresh session, and
// neither may a sign-in whose first step checked a password (password, the
// SHA-256 of its hash; "" for a passkey sign-in) that has been changed
// since.
func (s *Service) completeLogin(ctx context.Context, u User, meta newSessionMeta, previous, password string) (string, error) {
	if err := s.endPrevious(ctx, previous); err != nil {
		return "", err
	}
	tok, err := s.newSession(ctx, u, meta)
	if err != nil {
		return "", err
	}
	again, err := s.store.getUser(ctx, u.Email)
	if err != nil || again.ID != u.ID || (password != "" && sha256Hex(again.Hash) != password) {
		if _, delErr := s.store.deleteSession(ctx, u.ID, tok); delErr != nil {
			s.metrics.storeError(delErr)
			s.log.Warn("auth: could not delete the session of a deleted account", "err", delErr)
		}
		if err == nil || errors.Is(err, ErrUserNotFound) {
			err = ErrInvalidCredentials
		}
		return "", err
	}
	return tok, nil
}

package auth

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/config"
)

// ErrMFARequired is a right password for an account with a second factor,
// given without a code: no session is made (401 mfa_required).
var ErrMFARequired = errors.New("second factor required")

// ErrMFASessionRequired is a change to the second factors of an account
// that already has one, asked by a session that did not pass it (one made
// before the first factor was enrolled): it could otherwise add the
// attacker's own passkey to the account.
var ErrMFASessionRequired = errors.New("a session that passed the second factor is required")

// mfaNeeded is the error of a password login that needs its second step.
// It carries the account, which the password proved, for the HTML sign-in
// to start its pending state; it never leaves the package.
type mfaNeeded struct {
	user    User
	factors []string
	// hash is the password hash the first step checked: the pending state
	// keeps a digest of it, so that a password changed meanwhile voids it.
	hash string
}

func (e *mfaNeeded) Error() string        { return ErrMFARequired.Error() }
func (e *mfaNeeded) Is(target error) bool { return target == ErrMFARequired }

// NewSecondFactorsFromConfig returns the second factors cfg.Auth
// configures: TOTP sealed by box (nil: TOTP enrolment is off) with the
// configured issuer, and passkeys for the relying party of cfg.RPID() and
// cfg.WebAuthnOrigins(). now is the clock (nil = the store's).
func NewSecondFactorsFromConfig(store *Store, cfg *config.Config, box *SecretBox, now func() time.Time) (*SecondFactors, error) {
	rp, err := NewRelyingParty(cfg.RPID(), cfg.WebAuthnOrigins())
	if err != nil {
		// config.Validate refuses what NewRelyingParty refuses; this is a
		// defect, not a runtime condition, but it must not start half-wired.
		return nil, fmt.Errorf("auth: webauthn: %w", err)
	}
	return NewSecondFactors(store, box, cfg.Auth.TOTP.Issuer, now, rp), nil
}

// defaultFactors is ServiceOptions.Factors, else the second factors cfg
// configures with the key of auth.totp.encryption_key_file (none: TOTP
// off).
func defaultFactors(store *Store, cfg *config.Config, opts ServiceOptions) (*SecondFactors, error) {
	if opts.Factors != nil {
		return opts.Factors, nil
	}
	var box *SecretBox
	if key := cfg.Auth.TOTP.EncryptionKey; len(key) > 0 {
		var err error
		if box, err = NewSecretBox(key); err != nil {
			return nil, err
		}
	}
	return NewSecondFactorsFromConfig(store, cfg, box, opts.Now)
}

// Factors returns the Service's second factors (the JSON endpoints and the
// account page use it).
func (s *Service) Factors() *SecondFactors { return s.factors }

// checkSecondFactor is the second step of a password login of rec: it
// reports whether the session passes as second-factor-verified. An account
// without a factor passes with false; one with a factor needs code (a TOTP
// or recovery code), else an error that is ErrMFARequired. A wrong code is
// ErrInvalidCredentials, so that it is answered and counted like a wrong
// password.
func (s *Service) checkSecondFactor(ctx context.Context, rec *userRecord, code string) (bool, error) {
	factors, err := s.factors.Factors(ctx, rec.ID)
	if err != nil {
		return false, err
	}
	if len(factors) == 0 {
		return false, nil
	}
	if code == "" {
		return false, &mfaNeeded{user: rec.user(), factors: factors, hash: rec.Hash}
	}
	if err := s.factors.Verify(ctx, rec.ID, code); err != nil {
		if errors.Is(err, ErrInvalidCode) {
			return false, ErrInvalidCredentials
		}
		return false, err
	}
	return true, nil
}

// ResetSecondFactors removes every second factor of the account of email
// (TOTP, recovery codes, passkeys) and ends all its sessions, for
// `gatehouse users reset-2fa`: whoever held a session may have held it on
// the strength of the factor that is being replaced. It returns how many
// sessions ended. Errors: ErrInvalidEmail, ErrUserNotFound,
// ErrStoreUnavailable.
func (s *Service) ResetSecondFactors(ctx context.Context, email string) (n int, err error) {
	defer func() { s.metrics.storeError(err) }()
	rec, err := s.userRecord(ctx, email)
	if err != nil {
		return 0, err
	}
	if err := s.factors.Reset(ctx, rec.ID); err != nil {
		return 0, err
	}
	return s.store.revokeAll(ctx, rec.ID)
}

// requireFactorSession refuses (ErrMFASessionRequired) a new second
// factor for a user who already has one, asked by a session that has not
// passed it: only a session made before the first factor can be such a
// session, and it must not be able to add a factor of its own choosing.
func (s *Service) requireFactorSession(ctx context.Context, id credential.Identity) error {
	if id.MFA {
		return nil
	}
	have, err := s.factors.Factors(ctx, id.UserID)
	if err != nil {
		return err
	}
	if len(have) > 0 {
		return ErrMFASessionRequired
	}
	return nil
}

// BeginTOTP starts a TOTP enrolment for the user of the session id (see
// SecondFactors.BeginTOTP). Errors: ErrTOTPUnavailable, ErrConflict,
// ErrMFASessionRequired, ErrStoreUnavailable.
func (s *Service) BeginTOTP(ctx context.Context, id credential.Identity) (secret, otpauthURL string, err error) {
	defer func() { s.metrics.storeError(err) }()
	if err := s.requireFactorSession(ctx, id); err != nil {
		return "", "", err
	}
	return s.factors.BeginTOTP(ctx, id.UserID, id.Email)
}

// ConfirmTOTP ends the enrolment with a code of the new secret and returns
// the recovery codes; the session id then counts as second-factor-passed.
// TOTP is on once this returns codes, even when marking the session failed
// (it is logged): the codes are shown only now, and losing them would be
// worse than asking for a code at the next sign-in.
func (s *Service) ConfirmTOTP(ctx context.Context, id credential.Identity, code string) (codes []string, err error) {
	defer func() { s.metrics.storeError(err) }()
	codes, err = s.factors.ConfirmTOTP(ctx, id.UserID, code)
	if err != nil {
		return nil, err
	}
	if err := s.store.markSecondFactor(ctx, id.UserID, id.SID); err != nil {
		s.metrics.storeError(err)
		s.log.Warn("auth: could not mark the session as second-factor-passed after enrolment", "user_id", id.UserID, "err", err)
	}
	return codes, nil
}

// DisableTOTP turns TOTP off with a TOTP or recovery code. A wrong code
// counts in the login throttle of the user's email and the client
// address, as a wrong password would: a stolen session must not be able
// to try every code. Without a second factor left, every other session
// of the user ends. Errors: ErrInvalidCode, *ThrottledError,
// ErrStoreUnavailable.
func (s *Service) DisableTOTP(ctx context.Context, id credential.Identity, clientIP, code string) (err error) {
	defer func() { s.metrics.storeError(err) }()
	keys := s.store.throttleKeys(id.Email, clientIP)
	wait, err := s.store.throttleReserve(ctx, keys, s.limits, s.window)
	if err != nil {
		return err
	}
	if wait > 0 {
		return &ThrottledError{RetryAfter: wait}
	}
	if err := s.factors.DisableTOTP(ctx, id.UserID, code); err != nil {
		if !errors.Is(err, ErrInvalidCode) {
			s.releaseThrottle(ctx, keys, false)
		}
		return err // a wrong code keeps its reservation: a failure
	}
	s.releaseThrottle(ctx, keys, true)
	return s.factorRemoved(ctx, id.UserID, id.SID)
}

// RemovePasskey removes one of the user's passkeys; without a second
// factor left, every other session of the user ends. Errors: ErrNotFound,
// ErrStoreUnavailable.
func (s *Service) RemovePasskey(ctx context.Context, id credential.Identity, passkeyID string) (err error) {
	defer func() { s.metrics.storeError(err) }()
	if err := s.factors.RemovePasskey(ctx, id.UserID, passkeyID); err != nil {
		return err
	}
	return s.factorRemoved(ctx, id.UserID, id.SID)
}

// factorRemoved ends every session of the user but keep (a handle) when
// the user has no second factor left: a session elsewhere may be the one
// that had a reason to remove it.
func (s *Service) factorRemoved(ctx context.Context, userID, keep string) error {
	left, err := s.factors.Factors(ctx, userID)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return nil
	}
	_, err = s.RevokeOtherSessions(ctx, userID, keep)
	return err
}

// markSecondFactor records that the user's session whose handle is sid has
// passed a second factor (TOTP confirmed in it). The value in the session
// key and in the info hash are rewritten in one MULTI; SET XX KEEPTTL
// neither resurrects a session that ended meanwhile nor changes its
// lifetime, and WATCH on the info hash and the account record makes a
// concurrent group change or revocation retry this rather than be undone.
// A session that is gone is ErrSessionNotFound.
func (s *Store) markSecondFactor(ctx context.Context, userID, sid string) error {
	idx := s.indexKey(userID)
	info := s.infoKey(idx)
	h, err := s.findHash(ctx, idx, sid)
	if errors.Is(err, ErrNotFound) {
		return ErrSessionNotFound
	}
	if err != nil {
		return err
	}
	key := s.sessionKeyHash(userID, h)
	for range maxTxRetries {
		var gone bool
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			raw, err := tx.HGet(ctx, info, h).Result()
			if err == redis.Nil {
				gone = true
				return nil
			}
			if err != nil {
				return err
			}
			v, ok := decodeSession(raw, userID)
			if !ok {
				gone = true
				return nil
			}
			v.MFA, v.Factor = true, credential.FactorOTP
			var set *redis.StatusCmd
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				set = p.SetArgs(ctx, key, v.decision().encode(), redis.SetArgs{Mode: "XX", KeepTTL: true})
				p.HSet(ctx, info, h, v.encode())
				return nil
			})
			if err == redis.Nil || (err == nil && set.Val() != "OK") {
				// XX found no key: the session expired or was revoked
				// between the listing and now. Its info field goes.
				gone = true
				_ = s.rdb.HDel(ctx, info, h).Err()
				return nil
			}
			return err
		}, info, s.accountKey(userID))
		switch {
		case errors.Is(err, redis.TxFailedErr):
			continue
		case err != nil:
			return storeErr("session_create", err)
		case gone:
			return ErrSessionNotFound
		}
		return nil
	}
	return storeErr("session_create", errors.New("session changed during the update, retries exhausted"))
}

// PendingTOTP returns the secret and otpauth:// URL of the user's pending
// enrolment (BeginTOTP's, not yet confirmed), so that the account page can
// show the same QR code again after a mistyped code instead of making the
// user scan a new one. Errors: ErrInvalidCode (no pending enrolment, or it
// does not open), ErrTOTPUnavailable, ErrStoreUnavailable.
func (f *SecondFactors) PendingTOTP(ctx context.Context, userID, email string) (secret, otpauthURL string, err error) {
	if f.box == nil {
		return "", "", ErrTOTPUnavailable
	}
	sealed, err := f.store.rdb.Get(ctx, f.store.totpPendingKey(userID)).Result()
	if err == redis.Nil {
		return "", "", fmt.Errorf("%w: no pending enrolment", ErrInvalidCode)
	}
	if err != nil {
		return "", "", storeErr("totp", err)
	}
	b, err := f.box.Open(userID, sealed)
	if err != nil {
		return "", "", fmt.Errorf("%w: pending secret does not open", ErrInvalidCode)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(string(b))
	if err != nil {
		return "", "", fmt.Errorf("%w: pending secret is not base32", ErrInvalidCode)
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: f.issuer, AccountName: email, Period: totpPeriod,
		Secret: raw, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", "", fmt.Errorf("auth: totp url: %w", err)
	}
	return key.Secret(), key.URL(), nil
}

package auth

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel errors of the second factor, which callers branch on with
// errors.Is.
var (
	// ErrInvalidCode is a TOTP code, recovery code or passkey response that
	// does not verify: wrong, replayed, used up, expired or for another
	// account. It never says which.
	ErrInvalidCode = errors.New("invalid code")
	// ErrConflict is an enrolment that is already done (TOTP is on).
	ErrConflict = errors.New("conflict")
	// ErrTOTPUnavailable is TOTP enrolment without an encryption key.
	ErrTOTPUnavailable = errors.New("totp unavailable")
	// ErrPasskeysUnavailable is a passkey ceremony on a SecondFactors built
	// without a relying party.
	ErrPasskeysUnavailable = errors.New("passkeys unavailable")
)

// The names Factors returns.
const (
	FactorTOTP    = "totp"
	FactorPasskey = "passkey"
)

// defaultIssuer is the TOTP issuer when none is configured.
const defaultIssuer = "Gatehouse"

// SecondFactors is the second factor of accounts: TOTP with recovery codes
// (totp.go) and passkeys (passkey.go), on the same Store as the accounts and
// sessions. It holds no state besides its configuration, so every replica
// may build its own. It is safe for concurrent use.
//
// It never creates sessions: callers decide what a verified factor grants.
// Nor does it throttle: callers count failed codes in the login throttle.
type SecondFactors struct {
	store  *Store
	box    *SecretBox
	issuer string
	now    func() time.Time
	rp     *RelyingParty
}

// NewSecondFactors returns the second factors of store's accounts. box
// seals TOTP secrets; nil turns TOTP enrolment off (ErrTOTPUnavailable),
// though recovery codes of an earlier enrolment still verify. issuer is
// the name authenticator apps show ("" = "Gatehouse"). now is the clock
// (nil = the store's). rp is the WebAuthn relying party; nil turns passkeys
// off (ErrPasskeysUnavailable).
func NewSecondFactors(store *Store, box *SecretBox, issuer string, now func() time.Time, rp *RelyingParty) *SecondFactors {
	if issuer == "" {
		issuer = defaultIssuer
	}
	if now == nil {
		now = store.now
	}
	return &SecondFactors{store: store, box: box, issuer: issuer, now: now, rp: rp}
}

// TOTPAvailable reports whether TOTP can be enrolled (an encryption key is
// configured), for the account page to offer it or not.
func (f *SecondFactors) TOTPAvailable() bool { return f.box != nil }

// PasskeysAvailable reports whether passkey ceremonies can run.
func (f *SecondFactors) PasskeysAvailable() bool { return f.rp != nil }

// Factors returns the second factors the user has, a subset of
// ["totp", "passkey"] in that order (empty, not nil, for none). A pending
// TOTP enrolment does not count.
func (f *SecondFactors) Factors(ctx context.Context, userID string) ([]string, error) {
	var totp *redis.IntCmd
	var keys *redis.IntCmd
	// Both keys carry the user's hash tag: one slot, one round trip.
	_, err := f.store.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		totp = p.Exists(ctx, f.store.totpKey(userID))
		keys = p.HLen(ctx, f.store.passkeysKey(userID))
		return nil
	})
	if err != nil {
		return nil, storeErr("factors", err)
	}
	out := []string{}
	if totp.Val() > 0 {
		out = append(out, FactorTOTP)
	}
	if keys.Val() > 0 {
		out = append(out, FactorPasskey)
	}
	return out, nil
}

// Reset removes every second factor of the user: TOTP, a pending
// enrolment, recovery codes and passkeys (for `users reset-2fa` and account
// deletion). It does not end sessions; the caller does that.
func (f *SecondFactors) Reset(ctx context.Context, userID string) error {
	s := f.store
	// One DEL: the keys share the user's slot.
	if err := s.rdb.Del(ctx, s.totpKey(userID), s.totpPendingKey(userID), s.passkeysKey(userID)).Err(); err != nil {
		return storeErr("factors", err)
	}
	return nil
}

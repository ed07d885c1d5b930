package auth

// Redis layout of TOTP (same version and prefix P as sessions.go).
//
//	P{u:<userID>}:totp           string, JSON {"secret","last_step","recovery","created"}
//	    TOTP is on. secret is the base32 secret sealed by SecretBox with the
//	    user id as additional data (base64 of nonce || AES-256-GCM
//	    ciphertext), so it is never in clear in the store and does not open
//	    under another user's key. last_step is the last 30-second step whose
//	    code was accepted: a code of that step or an earlier one is refused,
//	    so each code works once even across replicas. recovery is hex
//	    SHA-256 of each unused recovery code (see recovery.go). Every change
//	    is a WATCH / GET / MULTI SET on this one key, so two replicas
//	    verifying the same code at once cannot both accept it. No TTL.
//
//	P{u:<userID>}:totp:pending   string, the sealed secret of an enrolment
//	    Written by BeginTOTP with a TTL of 10 minutes; ConfirmTOTP turns it
//	    into the record above and deletes it in the same MULTI.
//
// The hash tag {u:<userID>} puts both keys in the Cluster slot of the
// user's sessions. None of this is on the proxy's hot path: a session
// records whether it passed a second factor, so a proxied request never
// reads these keys.

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"
)

// TOTP parameters (RFC 6238's defaults, the only ones every authenticator
// app supports).
const (
	totpPeriod     = 30 // seconds
	totpSkew       = 1  // steps accepted either side of now
	totpDigits     = otp.DigitsSix
	totpSecretSize = 20 // bytes, the HMAC-SHA-1 block-size recommendation of RFC 4226
	totpPendingTTL = 10 * time.Minute
	// totpRetries bounds the WATCH retries of one update: only a burst of
	// concurrent verifications of one account ever needs a second try.
	totpRetries = 5
)

// totpRecord is the stored P{u:<id>}:totp.
type totpRecord struct {
	Secret   string    `json:"secret"`
	LastStep int64     `json:"last_step"`
	Recovery []string  `json:"recovery"`
	Created  time.Time `json:"created"`
}

// errCorruptTOTP is a record that does not decode: neither "no TOTP" nor a
// store outage.
var errCorruptTOTP = errors.New("auth: corrupt totp record")

func (s *Store) totpKey(userID string) string { return s.prefix + "{u:" + userID + "}:totp" }

func (s *Store) totpPendingKey(userID string) string {
	return s.prefix + "{u:" + userID + "}:totp:pending"
}

// BeginTOTP starts an enrolment for the user: a fresh secret, kept sealed
// for 10 minutes until ConfirmTOTP. It returns the secret (base32, to type
// in) and the otpauth:// URL (for the QR code, see QRCodePNG). A second
// call replaces the pending secret. Errors: ErrTOTPUnavailable (no key),
// ErrConflict (TOTP is already on), ErrStoreUnavailable.
func (f *SecondFactors) BeginTOTP(ctx context.Context, userID, email string) (secret, otpauthURL string, err error) {
	if f.box == nil {
		return "", "", ErrTOTPUnavailable
	}
	n, err := f.store.rdb.Exists(ctx, f.store.totpKey(userID)).Result()
	if err != nil {
		return "", "", storeErr("totp", err)
	}
	if n > 0 {
		return "", "", ErrConflict
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      f.issuer,
		AccountName: email,
		Period:      totpPeriod,
		SecretSize:  totpSecretSize,
		Digits:      totpDigits,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", "", fmt.Errorf("auth: totp secret: %w", err)
	}
	sealed, err := f.box.Seal(userID, []byte(key.Secret()))
	if err != nil {
		return "", "", err
	}
	if err := f.store.rdb.Set(ctx, f.store.totpPendingKey(userID), sealed, totpPendingTTL).Err(); err != nil {
		return "", "", storeErr("totp", err)
	}
	return key.Secret(), key.URL(), nil
}

// ConfirmTOTP ends an enrolment with a code from the new secret: TOTP is
// on, and the returned recovery codes (shown once, stored as hashes) are
// the user's. The confirming code's step is recorded as used. Errors:
// ErrTOTPUnavailable, ErrConflict (already on), ErrInvalidCode (wrong code,
// or no pending enrolment: expired or never begun), ErrStoreUnavailable.
func (f *SecondFactors) ConfirmTOTP(ctx context.Context, userID, code string) (recoveryCodes []string, err error) {
	if f.box == nil {
		return nil, ErrTOTPUnavailable
	}
	s := f.store
	key, pendingKey := s.totpKey(userID), s.totpPendingKey(userID)
	for range totpRetries {
		var result error
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			n, err := tx.Exists(ctx, key).Result()
			if err != nil {
				return err
			}
			if n > 0 {
				result = ErrConflict
				return nil
			}
			sealed, err := tx.Get(ctx, pendingKey).Result()
			if err == redis.Nil {
				result = fmt.Errorf("%w: no pending enrolment", ErrInvalidCode)
				return nil
			}
			if err != nil {
				return err
			}
			secret, err := f.box.Open(userID, sealed)
			if err != nil {
				// A key change since BeginTOTP: start again.
				result = fmt.Errorf("%w: pending secret does not open", ErrInvalidCode)
				return nil
			}
			step, ok := f.matchTOTP(string(secret), code, -1)
			if !ok {
				result = ErrInvalidCode
				return nil
			}
			codes, hashes, err := newRecoveryCodes()
			if err != nil {
				result = err
				return nil
			}
			// A fresh seal for the record: the pending value is not reused.
			resealed, err := f.box.Seal(userID, secret)
			if err != nil {
				result = err
				return nil
			}
			b, err := json.Marshal(&totpRecord{Secret: resealed, LastStep: step, Recovery: hashes, Created: f.now().UTC()})
			if err != nil {
				result = err
				return nil
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, b, 0)
				p.Del(ctx, pendingKey)
				return nil
			})
			if err == nil {
				recoveryCodes = codes
			}
			return err
		}, key, pendingKey)
		switch {
		case errors.Is(err, redis.TxFailedErr):
			continue
		case err != nil:
			return nil, storeErr("totp", err)
		case result != nil:
			return nil, result
		}
		return recoveryCodes, nil
	}
	return nil, storeErr("totp", errors.New("enrolment changed during the update, retries exhausted"))
}

// Verify checks a second-factor code of a user with TOTP on: a TOTP code
// (once: its step must be later than the last accepted one) or an unused
// recovery code (removed as it is used). The check and the update are one
// WATCH / MULTI on the user's record, so a code is accepted at most once
// across every replica sharing the store. A TOTP code cannot verify
// without the encryption key; recovery codes still do. Errors:
// ErrInvalidCode (also when the user has no TOTP), ErrStoreUnavailable, or
// an unexpected error for a record that does not decode (a 500).
func (f *SecondFactors) Verify(ctx context.Context, userID, code string) error {
	return f.useCode(ctx, userID, code, false)
}

// DisableTOTP turns TOTP off with a TOTP or recovery code, removing the
// secret and every recovery code. Errors as for Verify. Ending the user's
// other sessions when this was the last second factor is the caller's.
func (f *SecondFactors) DisableTOTP(ctx context.Context, userID, code string) error {
	return f.useCode(ctx, userID, code, true)
}

// useCode verifies code against the user's record and then either records
// its use or, with disable, deletes the record (and a pending enrolment).
func (f *SecondFactors) useCode(ctx context.Context, userID, code string, disable bool) error {
	s := f.store
	key := s.totpKey(userID)
	for range totpRetries {
		var result error
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			v, err := tx.Get(ctx, key).Bytes()
			if err == redis.Nil {
				result = fmt.Errorf("%w: totp is off", ErrInvalidCode)
				return nil
			}
			if err != nil {
				return err
			}
			var rec totpRecord
			if err := json.Unmarshal(v, &rec); err != nil || rec.Secret == "" {
				result = errCorruptTOTP
				return nil
			}
			if !f.applyCode(userID, &rec, code) {
				result = ErrInvalidCode
				return nil
			}
			var b []byte
			if !disable {
				if b, err = json.Marshal(&rec); err != nil {
					result = err
					return nil
				}
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				if disable {
					p.Del(ctx, key, s.totpPendingKey(userID))
				} else {
					p.Set(ctx, key, b, 0)
				}
				return nil
			})
			return err
		}, key)
		switch {
		case errors.Is(err, redis.TxFailedErr):
			continue
		case err != nil:
			return storeErr("totp", err)
		}
		return result
	}
	return storeErr("totp", errors.New("totp record changed during the update, retries exhausted"))
}

// applyCode checks code against rec and, when it verifies, updates rec to
// record its use (last_step moved on, or the recovery code removed).
func (f *SecondFactors) applyCode(userID string, rec *totpRecord, code string) bool {
	if digits, ok := totpDigitsOf(code); ok {
		if f.box == nil {
			// The key is gone (configuration changed): the secret cannot
			// be read, but recovery codes still work.
			return false
		}
		secret, err := f.box.Open(userID, rec.Secret)
		if err != nil {
			return false
		}
		step, ok := f.matchTOTP(string(secret), digits, rec.LastStep)
		if !ok {
			return false
		}
		rec.LastStep = step
		return true
	}
	i := matchRecoveryCode(code, rec.Recovery)
	if i < 0 {
		return false
	}
	rec.Recovery = append(rec.Recovery[:i:i], rec.Recovery[i+1:]...)
	return true
}

// totpDigitsOf returns code without spaces when it has the shape of a TOTP
// code (six ASCII digits; authenticator apps show "123 456").
func totpDigitsOf(code string) (string, bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != totpDigits.Length() {
		return "", false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return "", false
		}
	}
	return code, true
}

// matchTOTP returns the step (within one step of now either way) whose code
// is code, provided it is later than after; every candidate step is
// computed and compared in constant time.
func (f *SecondFactors) matchTOTP(secret, code string, after int64) (int64, bool) {
	code, ok := totpDigitsOf(code)
	if !ok {
		return 0, false
	}
	now := f.now().Unix() / totpPeriod
	var found int64
	ok = false
	for step := now - totpSkew; step <= now+totpSkew; step++ {
		if step < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && step > after && !ok {
			found, ok = step, true
		}
	}
	return found, ok
}

// QRCodePNG renders an otpauth:// URL (from BeginTOTP) as a PNG QR code of
// size x size pixels, for the account page.
func QRCodePNG(otpauthURL string, size int) ([]byte, error) {
	if !strings.HasPrefix(otpauthURL, "otpauth://") {
		return nil, errors.New("auth: qr code: not an otpauth:// URL")
	}
	key, err := otp.NewKeyFromURL(otpauthURL)
	if err != nil {
		return nil, fmt.Errorf("auth: qr code: %w", err)
	}
	img, err := key.Image(size, size)
	if err != nil {
		return nil, fmt.Errorf("auth: qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("auth: qr code: %w", err)
	}
	return buf.Bytes(), nil
}

// QRCodeDataURL is QRCodePNG as a data: URL for an <img src> in a template
// (the page's CSP then needs img-src data:). It is typed template.URL
// because html/template would otherwise replace a data: URL with
// "#ZgotmplZ"; the content is our own PNG, never user input.
func QRCodeDataURL(otpauthURL string, size int) (template.URL, error) {
	b, err := QRCodePNG(otpauthURL, size)
	if err != nil {
		return "", err
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b)), nil
}

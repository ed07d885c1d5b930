package auth

// Redis layout of passkeys (same version and prefix P as sessions.go).
//
//	P{u:<userID>}:passkeys       hash, base64url(credential id) -> JSON
//	    {"credential": webauthn.Credential, "name", "email", "created", "last_used"}
//	    The user's passkeys: the public key, sign count and flags the
//	    library needs, the name the user gave it, and the account's email
//	    (a passkey sign-in starts from the user id alone and the session
//	    needs both). Added with HSETNX; each sign-in rewrites its field in a
//	    WATCH / MULTI that refuses a sign count that did not move forward.
//	    The hash tag puts it in the slot of the user's sessions and TOTP.
//
//	Pwebauthn:<state id>         string, JSON {"kind","user_id","session": webauthn.SessionData}
//	    The state of one ceremony (its challenge) between the options and
//	    the answer, for 5 minutes. The state id is 32 random bytes
//	    (base64url) that the caller binds to the browser with a cookie;
//	    Finish takes the state with GETDEL, so each challenge is answered at
//	    most once, right or wrong. kind ("register", "login",
//	    "second_factor") and user_id keep one ceremony's state from
//	    finishing another.
//
// The store holds no private key and nothing that signs: a copy of it lets
// nobody sign in with a passkey.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/redis/go-redis/v9"
)

const (
	// maxPasskeys bounds one account's passkeys, and so the
	// allowCredentials list of a second-factor ceremony.
	maxPasskeys = 20
	// maxPasskeyName is the longest name kept, in characters.
	maxPasskeyName = 64
	// stateIDBytes is the randomness of a ceremony's state id.
	stateIDBytes = 32
)

// CeremonyTTL is how long a WebAuthn ceremony's state lives (and the
// timeout the browser is given): the Max-Age of the cookie that binds its
// state id to the browser.
const CeremonyTTL = 5 * time.Minute

// Ceremony kinds stored with the state.
const (
	ceremonyRegister     = "register"
	ceremonyLogin        = "login"
	ceremonySecondFactor = "second_factor"
)

// Passkey is one of a user's passkeys as the account page and /me/passkeys
// show it.
type Passkey struct {
	// ID is the credential id, base64url without padding.
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// passkeyRecord is one field of P{u:<id>}:passkeys.
type passkeyRecord struct {
	Credential webauthn.Credential `json:"credential"`
	Name       string              `json:"name"`
	Email      string              `json:"email"`
	Created    time.Time           `json:"created"`
	LastUsed   time.Time           `json:"last_used,omitzero"`
}

func (r *passkeyRecord) passkey() Passkey {
	return Passkey{ID: credentialField(r.Credential.ID), Name: r.Name, CreatedAt: r.Created, LastUsedAt: r.LastUsed}
}

// ceremonyState is the stored Pwebauthn:<id>.
type ceremonyState struct {
	Kind    string               `json:"kind"`
	UserID  string               `json:"user_id,omitempty"`
	Session webauthn.SessionData `json:"session"`
}

func (s *Store) passkeysKey(userID string) string { return s.prefix + "{u:" + userID + "}:passkeys" }

func (s *Store) ceremonyKey(stateID string) string { return s.prefix + "webauthn:" + stateID }

// credentialField is the hash field of a credential id.
func credentialField(id []byte) string { return base64.RawURLEncoding.EncodeToString(id) }

// passkeyUser adapts an account to webauthn.User. The user handle is the
// user id itself (32 ASCII hex characters), so a discoverable sign-in finds
// the account from the handle without another index.
type passkeyUser struct {
	id, email string
	records   []passkeyRecord
}

func (u *passkeyUser) WebAuthnID() []byte          { return []byte(u.id) }
func (u *passkeyUser) WebAuthnName() string        { return u.email }
func (u *passkeyUser) WebAuthnDisplayName() string { return u.email }

func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(u.records))
	for i := range u.records {
		out[i] = u.records[i].Credential
	}
	return out
}

// loadPasskeys returns the user's passkey records, oldest first. A field
// that does not decode is skipped: one damaged record must not lock the
// user out of the others.
func (s *Store) loadPasskeys(ctx context.Context, userID string) ([]passkeyRecord, error) {
	m, err := s.rdb.HGetAll(ctx, s.passkeysKey(userID)).Result()
	if err != nil {
		return nil, storeErr("passkey", err)
	}
	out := make([]passkeyRecord, 0, len(m))
	for field, v := range m {
		var r passkeyRecord
		if json.Unmarshal([]byte(v), &r) != nil || credentialField(r.Credential.ID) != field {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b passkeyRecord) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(credentialField(a.Credential.ID), credentialField(b.Credential.ID))
	})
	return out, nil
}

// addPasskey stores a new passkey unless its credential id is already
// registered (ErrConflict).
func (s *Store) addPasskey(ctx context.Context, userID string, r *passkeyRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ok, err := s.rdb.HSetNX(ctx, s.passkeysKey(userID), credentialField(r.Credential.ID), b).Result()
	if err != nil {
		return storeErr("passkey", err)
	}
	if !ok {
		return fmt.Errorf("%w: passkey already registered", ErrConflict)
	}
	return nil
}

// usePasskey records a verified assertion of the credential: its new sign
// count and flags, and the time. Another replica may have recorded a use of
// the same credential since it was loaded: the count is checked again
// against the stored one under WATCH, so two uses with the same count (a
// cloned authenticator) cannot both pass. Authenticators that keep no count
// (always 0, as synced passkeys do) are not refused.
func (s *Store) usePasskey(ctx context.Context, userID string, used *webauthn.Credential, now time.Time) error {
	key, field := s.passkeysKey(userID), credentialField(used.ID)
	for range totpRetries {
		var result error
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			v, err := tx.HGet(ctx, key, field).Bytes()
			if err == redis.Nil {
				result = fmt.Errorf("%w: passkey removed", ErrInvalidCode)
				return nil
			}
			if err != nil {
				return err
			}
			var r passkeyRecord
			if err := json.Unmarshal(v, &r); err != nil {
				result = fmt.Errorf("%w: passkey record does not decode", ErrInvalidCode)
				return nil
			}
			stored, next := r.Credential.Authenticator.SignCount, used.Authenticator.SignCount
			if next <= stored && (next != 0 || stored != 0) {
				result = fmt.Errorf("%w: sign count did not increase", ErrInvalidCode)
				return nil
			}
			r.Credential.Authenticator.SignCount = next
			r.Credential.Flags = used.Flags
			r.LastUsed = now.UTC()
			b, err := json.Marshal(&r)
			if err != nil {
				result = err
				return nil
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, key, field, b)
				return nil
			})
			return err
		}, key)
		switch {
		case errors.Is(err, redis.TxFailedErr):
			continue
		case err != nil:
			return storeErr("passkey", err)
		}
		return result
	}
	return storeErr("passkey", errors.New("passkeys changed during the update, retries exhausted"))
}

// saveCeremony stores st under a new random state id and returns the id.
func (s *Store) saveCeremony(ctx context.Context, st *ceremonyState) (string, error) {
	var b [stateIDBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: ceremony state id: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	v, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	if err := s.rdb.Set(ctx, s.ceremonyKey(id), v, CeremonyTTL).Err(); err != nil {
		return "", storeErr("passkey", err)
	}
	return id, nil
}

// takeCeremony returns and deletes the state of stateID if it is of kind
// (and, for a user's ceremony, of userID); otherwise ErrInvalidCode.
func (s *Store) takeCeremony(ctx context.Context, stateID, kind, userID string) (*ceremonyState, error) {
	if !isStateID(stateID) {
		return nil, fmt.Errorf("%w: no such ceremony", ErrInvalidCode)
	}
	v, err := s.rdb.GetDel(ctx, s.ceremonyKey(stateID)).Bytes()
	if err == redis.Nil {
		return nil, fmt.Errorf("%w: ceremony expired or already finished", ErrInvalidCode)
	}
	if err != nil {
		return nil, storeErr("passkey", err)
	}
	var st ceremonyState
	if err := json.Unmarshal(v, &st); err != nil || st.Kind != kind || st.UserID != userID {
		return nil, fmt.Errorf("%w: ceremony of another kind or user", ErrInvalidCode)
	}
	return &st, nil
}

// isStateID reports whether s has the shape of a state id, so that nothing
// else a client sends ends up in a key name.
func isStateID(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(stateIDBytes) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ListPasskeys returns the user's passkeys, oldest first.
func (f *SecondFactors) ListPasskeys(ctx context.Context, userID string) ([]Passkey, error) {
	recs, err := f.store.loadPasskeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]Passkey, len(recs))
	for i := range recs {
		out[i] = recs[i].passkey()
	}
	return out, nil
}

// RemovePasskey deletes one of the user's passkeys by its id (as
// ListPasskeys gives it). Errors: ErrNotFound (no such passkey of this
// user, also one of another user), ErrStoreUnavailable. Ending the user's
// other sessions when this was the last second factor is the caller's.
func (f *SecondFactors) RemovePasskey(ctx context.Context, userID, id string) error {
	if id == "" || len(id) > 1024 {
		return ErrNotFound
	}
	n, err := f.store.rdb.HDel(ctx, f.store.passkeysKey(userID), id).Result()
	if err != nil {
		return storeErr("passkey", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// passkeyName is the name kept for a new passkey: control and format
// characters dropped, spaces folded, at most maxPasskeyName characters,
// "Passkey" when nothing is left.
func passkeyName(s string) string {
	var b strings.Builder
	n := 0
	space := false
	for _, r := range strings.TrimSpace(s) {
		if r == utf8.RuneError || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs) {
			continue
		}
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if n >= maxPasskeyName {
			break
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
			n++
		}
		space = false
		b.WriteRune(r)
		n++
	}
	if b.Len() == 0 {
		return "Passkey"
	}
	return b.String()
}

// RelyingParty is the WebAuthn relying party: its id (a domain) and the
// origins whose responses it accepts, either configured or, when none are,
// the origin each ceremony began at (which must be the rp id or a
// subdomain of it).
type RelyingParty struct {
	id    string
	fixed *webauthn.WebAuthn // nil: each ceremony's own origin
}

// NewRelyingParty returns the relying party for rpID. With origins, only
// responses from those origins are accepted; with none, each ceremony is
// bound to the origin its caller passes to Begin (the request's own
// origin), provided that origin's host is rpID or a subdomain of it.
func NewRelyingParty(rpID string, origins []string) (*RelyingParty, error) {
	if len(origins) > 0 {
		wa, err := NewWebAuthn(rpID, origins)
		if err != nil {
			return nil, err
		}
		return &RelyingParty{id: rpID, fixed: wa}, nil
	}
	// Validate the id now rather than at the first ceremony.
	if _, err := NewWebAuthn(rpID, []string{"https://" + rpID}); err != nil {
		return nil, err
	}
	return &RelyingParty{id: rpID}, nil
}

// NewWebAuthn returns a go-webauthn relying party for rpID and origins
// (each an http or https origin without a path) with the ceremonies this
// package runs: discoverable credentials (resident key required), user
// verification required, no attestation asked for, 5-minute timeouts.
func NewWebAuthn(rpID string, origins []string) (*webauthn.WebAuthn, error) {
	if err := protocol.ValidateRPID(rpID); err != nil || strings.ContainsAny(rpID, ":/") {
		return nil, fmt.Errorf("auth: webauthn rp_id %q: must be a domain name (not an IP address, no scheme or port)", rpID)
	}
	if len(origins) == 0 {
		return nil, errors.New("auth: webauthn: at least one origin is required")
	}
	for _, o := range origins {
		if _, ok := originHost(o); !ok {
			return nil, fmt.Errorf("auth: webauthn origin %q: must be http:// or https:// and a host, without a path", o)
		}
	}
	timeout := webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL}
	return webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: rpID,
		RPOrigins:     slices.Clone(origins),
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationRequired,
		},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts:              webauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
}

// originHost returns the host (without port) of an http or https origin.
func originHost(origin string) (string, bool) {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", false
	}
	return strings.ToLower(u.Hostname()), true
}

// begin returns the relying party for a ceremony starting at origin and
// the origin the ceremony must be bound to ("" = the configured ones).
func (rp *RelyingParty) begin(origin string) (*webauthn.WebAuthn, string, error) {
	if rp.fixed != nil {
		return rp.fixed, "", nil
	}
	host, ok := originHost(origin)
	if !ok || (host != rp.id && !strings.HasSuffix(host, "."+rp.id)) {
		return nil, "", fmt.Errorf("%w: origin %q is not within rp_id %q", ErrPasskeysUnavailable, origin, rp.id)
	}
	origin = strings.ToLower(strings.TrimSuffix(origin, "/"))
	wa, err := NewWebAuthn(rp.id, []string{origin})
	if err != nil {
		return nil, "", err
	}
	return wa, origin, nil
}

// finish returns the relying party that checks the answer of a ceremony
// whose state is session.
func (rp *RelyingParty) finish(session *webauthn.SessionData) (*webauthn.WebAuthn, error) {
	if rp.fixed != nil {
		return rp.fixed, nil
	}
	if session.Origin == "" {
		return nil, fmt.Errorf("%w: ceremony not bound to an origin", ErrInvalidCode)
	}
	return NewWebAuthn(rp.id, []string{session.Origin})
}

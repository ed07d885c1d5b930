package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// The WebAuthn ceremonies. Each Begin returns the options for the browser
// (JSON: {"publicKey": {...}}, the shape PublicKeyCredential's
// parse*OptionsFromJSON takes under "publicKey") and a state id, which the
// caller binds to the browser (a short-lived HttpOnly cookie) and hands back
// to the matching Finish with the browser's answer, the JSON of the
// PublicKeyCredential (its toJSON()). origin is the origin the page runs
// at, scheme://host[:port] of the request; it is used only when the relying
// party has no configured origins.

// BeginPasskeyRegistration starts adding a passkey to the user's account:
// a discoverable credential with user verification, not one the user
// already has. Errors: ErrPasskeysUnavailable, ErrConflict (maxPasskeys
// reached), ErrStoreUnavailable.
func (f *SecondFactors) BeginPasskeyRegistration(ctx context.Context, origin, userID, email string) (options []byte, stateID string, err error) {
	if f.rp == nil {
		return nil, "", ErrPasskeysUnavailable
	}
	wa, bound, err := f.rp.begin(origin)
	if err != nil {
		return nil, "", err
	}
	recs, err := f.store.loadPasskeys(ctx, userID)
	if err != nil {
		return nil, "", err
	}
	if len(recs) >= maxPasskeys {
		return nil, "", fmt.Errorf("%w: at most %d passkeys", ErrConflict, maxPasskeys)
	}
	u := &passkeyUser{id: userID, email: email, records: recs}
	opts := []webauthn.RegistrationOption{
		webauthn.WithExclusions(webauthn.Credentials(u.WebAuthnCredentials()).CredentialDescriptors()),
	}
	if bound != "" {
		opts = append(opts, webauthn.WithRegistrationOrigin(bound))
	}
	creation, session, err := wa.BeginRegistration(u, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("auth: passkey registration: %w", err)
	}
	return f.saveOptions(ctx, creation, &ceremonyState{Kind: ceremonyRegister, UserID: userID, Session: *session})
}

// FinishPasskeyRegistration checks the browser's answer to
// BeginPasskeyRegistration and adds the passkey, called name (cleaned up;
// "Passkey" when empty). Errors: ErrInvalidCode (an answer that does not
// verify, to a ceremony that expired, was already finished or is another
// user's), ErrConflict, ErrStoreUnavailable.
func (f *SecondFactors) FinishPasskeyRegistration(ctx context.Context, userID, email, name, stateID string, body []byte) (Passkey, error) {
	if f.rp == nil {
		return Passkey{}, ErrPasskeysUnavailable
	}
	st, err := f.store.takeCeremony(ctx, stateID, ceremonyRegister, userID)
	if err != nil {
		return Passkey{}, err
	}
	wa, err := f.rp.finish(&st.Session)
	if err != nil {
		return Passkey{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return Passkey{}, invalidPasskey(err)
	}
	cred, err := wa.CreateCredential(&passkeyUser{id: userID, email: email}, st.Session, parsed)
	if err != nil {
		return Passkey{}, invalidPasskey(err)
	}
	rec := &passkeyRecord{Credential: *cred, Name: passkeyName(name), Email: email, Created: f.now().UTC()}
	if err := f.store.addPasskey(ctx, userID, rec); err != nil {
		return Passkey{}, err
	}
	return rec.passkey(), nil
}

// BeginPasskeyLogin starts a passwordless sign-in: no allowCredentials (the
// browser offers the passkeys it has for the rp id), user verification
// required. Errors: ErrPasskeysUnavailable, ErrStoreUnavailable.
func (f *SecondFactors) BeginPasskeyLogin(ctx context.Context, origin string) (options []byte, stateID string, err error) {
	if f.rp == nil {
		return nil, "", ErrPasskeysUnavailable
	}
	wa, bound, err := f.rp.begin(origin)
	if err != nil {
		return nil, "", err
	}
	var opts []webauthn.LoginOption
	if bound != "" {
		opts = append(opts, webauthn.WithLoginOrigin(bound))
	}
	assertion, session, err := wa.BeginDiscoverableLogin(opts...)
	if err != nil {
		return nil, "", fmt.Errorf("auth: passkey login: %w", err)
	}
	return f.saveOptions(ctx, assertion, &ceremonyState{Kind: ceremonyLogin, Session: *session})
}

// FinishPasskeyLogin checks the browser's answer to BeginPasskeyLogin and
// returns the account it signs in: the user id (the credential's user
// handle) and the email stored with the passkey. The caller must still
// check that this account exists with this id and may sign in (it may have
// been deleted, or disabled, since). The sign count and last use are
// recorded; an authenticator whose count went backwards (a clone) is
// refused. Errors: ErrInvalidCode, ErrPasskeysUnavailable,
// ErrStoreUnavailable.
func (f *SecondFactors) FinishPasskeyLogin(ctx context.Context, stateID string, body []byte) (userID, email string, err error) {
	if f.rp == nil {
		return "", "", ErrPasskeysUnavailable
	}
	st, err := f.store.takeCeremony(ctx, stateID, ceremonyLogin, "")
	if err != nil {
		return "", "", err
	}
	wa, err := f.rp.finish(&st.Session)
	if err != nil {
		return "", "", err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return "", "", invalidPasskey(err)
	}
	var owner *passkeyUser
	var lookupErr error
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		id := string(userHandle)
		if !isUserID(id) {
			return nil, errors.New("user handle is not a user id")
		}
		recs, err := f.store.loadPasskeys(ctx, id)
		if err != nil {
			lookupErr = err
			return nil, err
		}
		owner = &passkeyUser{id: id, records: recs}
		for i := range recs {
			if credentialField(recs[i].Credential.ID) == credentialField(rawID) {
				owner.email = recs[i].Email
				return owner, nil
			}
		}
		return nil, errors.New("credential not registered to that user")
	}
	_, cred, err := wa.ValidatePasskeyLogin(handler, st.Session, parsed)
	if lookupErr != nil {
		// A store outage is not a wrong passkey.
		return "", "", lookupErr
	}
	if err != nil {
		return "", "", invalidPasskey(err)
	}
	if err := f.recordUse(ctx, owner.id, cred); err != nil {
		return "", "", err
	}
	return owner.id, owner.email, nil
}

// BeginPasskeySecondFactor starts a passkey check of a user who has just
// given the password: allowCredentials lists that user's passkeys. Errors:
// ErrNotFound (the user has no passkey), ErrPasskeysUnavailable,
// ErrStoreUnavailable.
func (f *SecondFactors) BeginPasskeySecondFactor(ctx context.Context, origin, userID string) (options []byte, stateID string, err error) {
	if f.rp == nil {
		return nil, "", ErrPasskeysUnavailable
	}
	wa, bound, err := f.rp.begin(origin)
	if err != nil {
		return nil, "", err
	}
	recs, err := f.store.loadPasskeys(ctx, userID)
	if err != nil {
		return nil, "", err
	}
	if len(recs) == 0 {
		return nil, "", ErrNotFound
	}
	var opts []webauthn.LoginOption
	if bound != "" {
		opts = append(opts, webauthn.WithLoginOrigin(bound))
	}
	assertion, session, err := wa.BeginLogin(&passkeyUser{id: userID, records: recs}, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("auth: passkey second factor: %w", err)
	}
	return f.saveOptions(ctx, assertion, &ceremonyState{Kind: ceremonySecondFactor, UserID: userID, Session: *session})
}

// FinishPasskeySecondFactor checks the browser's answer to
// BeginPasskeySecondFactor for the same user, and records the use as
// FinishPasskeyLogin does. Errors: ErrInvalidCode, ErrPasskeysUnavailable,
// ErrStoreUnavailable.
func (f *SecondFactors) FinishPasskeySecondFactor(ctx context.Context, userID, stateID string, body []byte) error {
	if f.rp == nil {
		return ErrPasskeysUnavailable
	}
	st, err := f.store.takeCeremony(ctx, stateID, ceremonySecondFactor, userID)
	if err != nil {
		return err
	}
	wa, err := f.rp.finish(&st.Session)
	if err != nil {
		return err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return invalidPasskey(err)
	}
	recs, err := f.store.loadPasskeys(ctx, userID)
	if err != nil {
		return err
	}
	cred, err := wa.ValidateLogin(&passkeyUser{id: userID, records: recs}, st.Session, parsed)
	if err != nil {
		return invalidPasskey(err)
	}
	return f.recordUse(ctx, userID, cred)
}

// recordUse refuses a clone signal and stores the new sign count.
func (f *SecondFactors) recordUse(ctx context.Context, userID string, cred *webauthn.Credential) error {
	if cred.Authenticator.CloneWarning {
		return fmt.Errorf("%w: sign count did not increase (cloned authenticator?)", ErrInvalidCode)
	}
	return f.store.usePasskey(ctx, userID, cred, f.now())
}

// saveOptions stores the ceremony state and returns the options as JSON
// with the state id.
func (f *SecondFactors) saveOptions(ctx context.Context, options any, st *ceremonyState) ([]byte, string, error) {
	b, err := json.Marshal(options)
	if err != nil {
		return nil, "", fmt.Errorf("auth: webauthn options: %w", err)
	}
	id, err := f.store.saveCeremony(ctx, st)
	if err != nil {
		return nil, "", err
	}
	return b, id, nil
}

// invalidPasskey wraps a go-webauthn error as ErrInvalidCode, keeping it
// for logs (its text is never for clients).
func invalidPasskey(err error) error {
	return fmt.Errorf("%w: passkey: %w", ErrInvalidCode, err)
}

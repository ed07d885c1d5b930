package auth

import (
	"html/template"
	"net/http"
	"slices"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// The account page's second factor: TOTP (set up with a QR code and the
// secret to type, confirmed with a code, the recovery codes shown once on
// that answer, turned off with a code) and passkeys (added by gatehouse.js
// through /me/passkeys, listed, removed). Like the new API token, the
// secret and the recovery codes appear only in the answer of the post
// that made them (no-store), never in a URL.

// accountFactorNotices and accountFactorErrors extend the page's ?done=
// and ?error= codes.
var (
	accountFactorNotices = map[string]string{
		"totp_off": "The authenticator app has been turned off, and its recovery codes no longer work.",
		"passkey":  "The passkey has been removed.",
	}
	accountFactorErrors = map[string]string{
		"invalid_code": "That code is not right, or it was already used.",
		"conflict":     "An authenticator app is already set up.",
		"forbidden":    "This is not available on this gateway.",
		"mfa_required": "Sign in again with your second factor to change your second factors.",
	}
)

// accountFactors is the second factor's part of the account page.
type accountFactors struct {
	TOTP, TOTPAvailable, PasskeysAvailable bool
	// Unpassed: the user has a factor that this session did not pass (it
	// was made before the factor), so mfa routes still refuse it.
	Unpassed bool
	Passkeys []passkeyRow
	// Enrol is set on the answer that starts (or retries) a TOTP set-up.
	Enrol *totpEnrolment
	// RecoveryCodes are set only on the answer that confirms it.
	RecoveryCodes       []string
	AccountPath, MePath string
}

type passkeyRow struct {
	ID, Name          string
	Created, LastUsed displayTime
	NeverUsed         bool
}

type totpEnrolment struct {
	Secret string
	QRCode template.URL
}

// factorExtras is what one answer adds to the account page.
type factorExtras struct {
	enrol         *totpEnrolment
	recoveryCodes []string
}

// accountFactorsView loads the user's factors for the page.
func (h *handlers) accountFactorsView(r *http.Request, id credential.Identity, fx *factorExtras) (*accountFactors, error) {
	f := h.svc.factors
	have, err := f.Factors(r.Context(), id.UserID)
	if err != nil {
		return nil, err
	}
	pks, err := f.ListPasskeys(r.Context(), id.UserID)
	if err != nil {
		return nil, err
	}
	v := &accountFactors{TOTP: slices.Contains(have, FactorTOTP), TOTPAvailable: f.TOTPAvailable(),
		PasskeysAvailable: f.PasskeysAvailable(), AccountPath: h.accountPath, MePath: h.fc.mePath,
		Unpassed: len(have) > 0 && !id.MFA}
	for _, p := range pks {
		row := passkeyRow{ID: p.ID, Name: p.Name, Created: showTime(p.CreatedAt), NeverUsed: p.LastUsedAt.IsZero()}
		if !row.NeverUsed {
			row.LastUsed = showTime(p.LastUsedAt)
		}
		v.Passkeys = append(v.Passkeys, row)
	}
	if fx != nil {
		v.Enrol, v.RecoveryCodes = fx.enrol, fx.recoveryCodes
	}
	return v, nil
}

// qrSize is the QR code's size in pixels: scannable from a phone held at
// a laptop's screen.
const qrSize = 200

// enrolment renders a TOTP set-up for the page.
func enrolment(secret, otpauthURL string) (*totpEnrolment, error) {
	qr, err := QRCodeDataURL(otpauthURL, qrSize)
	if err != nil {
		return nil, err
	}
	return &totpEnrolment{Secret: secret, QRCode: qr}, nil
}

// factorFailure answers a failed second-factor action: a code the page
// knows, or the JSON error of something unexpected.
func (h *handlers) factorFailure(w http.ResponseWriter, r *http.Request, err error) {
	switch code := errorCode(err); code {
	case apierror.InvalidCode, apierror.Conflict, apierror.Forbidden, apierror.MFARequired,
		apierror.NotFound, apierror.TooManyAttempts, apierror.StoreUnavailable:
		h.accountResult(w, "error", string(code))
	default:
		h.writeError(w, r, err, bodyJSON, nil)
	}
}

// formTOTPBegin starts a set-up and shows its QR code and secret.
func (h *handlers) formTOTPBegin(w http.ResponseWriter, r *http.Request, id credential.Identity, _ map[string]string) {
	secret, u, err := h.svc.BeginTOTP(r.Context(), id)
	if err != nil {
		h.factorFailure(w, r, err)
		return
	}
	e, err := enrolment(secret, u)
	if err != nil {
		h.writeError(w, r, err, bodyJSON, nil)
		return
	}
	h.renderAccount(w, r, id, "", "", nil, &factorExtras{enrol: e})
}

// formTOTPConfirm ends the set-up with a code and shows the recovery codes
// once; a wrong code shows the same QR code again.
func (h *handlers) formTOTPConfirm(w http.ResponseWriter, r *http.Request, id credential.Identity, f map[string]string) {
	codes, err := h.svc.ConfirmTOTP(r.Context(), id, f["code"])
	if errorCode(err) == apierror.InvalidCode {
		secret, u, perr := h.svc.factors.PendingTOTP(r.Context(), id.UserID, id.Email)
		if perr != nil {
			// Expired: start again.
			h.accountResult(w, "error", string(apierror.InvalidCode))
			return
		}
		e, eerr := enrolment(secret, u)
		if eerr != nil {
			h.writeError(w, r, eerr, bodyJSON, nil)
			return
		}
		h.renderAccount(w, r, id, "", accountFactorErrors["invalid_code"], nil, &factorExtras{enrol: e})
		return
	}
	if err != nil {
		h.factorFailure(w, r, err)
		return
	}
	// The session now counts as second-factor-passed: the page is
	// rendered with the identity as it now stands.
	id.MFA = true
	h.renderAccount(w, r, id, "Your authenticator app is set up. Keep the recovery codes below somewhere safe: each works once, in place of a code.",
		"", nil, &factorExtras{recoveryCodes: codes})
}

// formTOTPDisable turns TOTP off with a code.
func (h *handlers) formTOTPDisable(w http.ResponseWriter, r *http.Request, id credential.Identity, f map[string]string) {
	if err := h.svc.DisableTOTP(r.Context(), id, credential.InfoFrom(r.Context()).ClientIP, f["code"]); err != nil {
		h.factorFailure(w, r, err)
		return
	}
	h.accountResult(w, "done", "totp_off")
}

// formRemovePasskey removes one passkey.
func (h *handlers) formRemovePasskey(w http.ResponseWriter, r *http.Request, id credential.Identity, f map[string]string) {
	if err := h.svc.RemovePasskey(r.Context(), id, f["id"]); err != nil {
		h.factorFailure(w, r, err)
		return
	}
	h.accountResult(w, "done", "passkey")
}

// Package credential is what package proxy and package auth must agree on
// to the letter: the shape of a gateway token (session or API token), the
// rule that picks the one credential a request carries, the identity a
// valid credential proves, the session cookie's attributes, and the facts
// the proxy learned about a request that the gateway's own endpoints need.
// Both packages import it, so neither reaches into the other.
//
// It must never touch the store or the network: everything here decides
// from the request alone and allocates as little as the hot path allows.
package credential

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Errors an authenticator returns; callers branch on them with errors.Is.
var (
	// ErrNoSession: the token is malformed, unknown, expired, revoked, or
	// belongs to a disabled account.
	ErrNoSession = errors.New("no valid session")
	// ErrStoreUnavailable: the store could not be asked in time. The
	// request fails closed (503) and the client's cookie is kept.
	ErrStoreUnavailable = errors.New("session store unavailable")
)

// Method is how a credential was obtained.
type Method string

// The methods a session or token records.
const (
	MethodPassword Method = "password"
	MethodPasskey  Method = "passkey"
	MethodToken    Method = "token"
)

// Identity is what a valid session or API token proves about the request.
type Identity struct {
	UserID string
	Email  string
	// Groups are the user's groups, sorted and comma-separated ("" for
	// none): the form of the groups header, kept as one string so that the
	// hot path neither splits nor joins.
	Groups string
	// MFA reports that the session passed a second factor. Never true for
	// an API token.
	MFA bool
	// SecondFactor is what passed it: FactorOTP or FactorHardwareKey ("" with
	// MFA false).
	SecondFactor string
	Method       Method
	// SID is the session's handle (as GET /me/sessions shows it) or the API
	// token's id. It is not the token and cannot be turned into one.
	SID string
	// Expires is the absolute end of the session or token.
	Expires time.Time
}

// InGroup reports whether the identity is in group g, without allocating.
func (id *Identity) InGroup(g string) bool {
	for rest := id.Groups; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ",")
		if name == g {
			return true
		}
	}
	return false
}

// GroupList returns Groups as a slice (nil for none).
func (id *Identity) GroupList() []string {
	if id.Groups == "" {
		return nil
	}
	return strings.Split(id.Groups, ",")
}

// The second factors a password session can pass, as RFC 8176 names them.
const (
	FactorOTP         = "otp"
	FactorHardwareKey = "hwk"
)

// AMR returns the authentication methods references (RFC 8176) of the
// identity: ["pwd"], ["pwd","otp"], ["pwd","hwk"], ["hwk"] or ["tok"].
func (id *Identity) AMR() []string {
	switch id.Method {
	case MethodToken:
		return amrToken
	case MethodPasskey:
		return amrPasskey
	}
	switch {
	case id.MFA && id.SecondFactor == FactorHardwareKey:
		return amrPasswordHWK
	case id.MFA:
		return amrPasswordOTP
	}
	return amrPassword
}

var (
	amrToken       = []string{"tok"}
	amrPasskey     = []string{"hwk"}
	amrPassword    = []string{"pwd"}
	amrPasswordOTP = []string{"pwd", "otp"}
	amrPasswordHWK = []string{"pwd", "hwk"}
)

// Info is what the proxy learned about a request that the gateway's own
// endpoints need: the client address (after trusted_proxies) and, going
// the other way, the user id an endpoint proved, for the request's log
// line. The proxy puts one in every request's context.
type Info struct {
	ClientIP string
	// UserID is set by an endpoint that proved who the user is (a login,
	// /me with a valid session); never from a token's mere claim.
	UserID string
}

type infoKey struct{}

// InfoKey is the context key of a request's *Info. It is exported so that
// the proxy's per-request context can answer it without an extra
// allocation; everyone else uses NewContext and InfoFrom.
var InfoKey any = infoKey{}

// NewContext returns ctx carrying info.
func NewContext(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, InfoKey, info)
}

// InfoFrom returns the request's Info, or a fresh one (client address
// unknown, user id going nowhere) for a request that did not come through
// the proxy.
func InfoFrom(ctx context.Context) *Info {
	if info, ok := ctx.Value(InfoKey).(*Info); ok && info != nil {
		return info
	}
	return &Info{}
}

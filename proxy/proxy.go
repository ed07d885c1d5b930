// Package proxy is Gatehouse's front door: it checks every request's path,
// matches it against the route table, applies the route's policy, and
// forwards what it lets through to an upstream with httputil.ReverseProxy,
// carrying the user's identity in headers it alone sets. It also answers the
// forward-auth endpoint with the same decision.
//
// It must never trust a client's identity headers, never forward a path other
// than the one it matched, and never let a request through to an
// authenticated route when the session store cannot be asked. It does not
// import package auth: the command hands it an Authenticator.
package proxy

import (
	"context"
	"errors"
)

// Identity is the user a valid session belongs to.
type Identity struct {
	UserID string
	Email  string
}

// Errors an Authenticator returns; the proxy branches on them with errors.Is.
var (
	// ErrNoSession: the token is malformed, unknown, expired or revoked.
	ErrNoSession = errors.New("no valid session")
	// ErrStoreUnavailable: the session store could not be asked in time.
	// The request fails closed (503) and the client's cookie is kept.
	ErrStoreUnavailable = errors.New("session store unavailable")
)

// Authenticator resolves session tokens. The command wires package auth's
// service to it.
type Authenticator interface {
	// Authenticate returns the identity of the session token, refreshing
	// its idle timer. It costs at most one store round trip, honours ctx's
	// deadline, and returns ErrNoSession or ErrStoreUnavailable (possibly
	// wrapped) on failure.
	Authenticate(ctx context.Context, token string) (Identity, error)
	// IsToken reports whether s has the shape of a gateway session token,
	// without asking the store. An Authorization: Bearer value that is not
	// one is left alone and forwarded.
	IsToken(s string) bool
}

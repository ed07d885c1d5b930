// Package proxy is Gatehouse's front door: it checks every request's path,
// matches it against the route table, applies the route's policy, and
// forwards what it lets through to an upstream with httputil.ReverseProxy,
// carrying the user's identity in headers it alone sets. It also answers the
// forward-auth endpoint with the same decision.
//
// It must never trust a client's identity headers, never forward a path other
// than the one it matched, and never let a request through to an
// authenticated route when the session store cannot be asked. It does not
// import package auth: the command hands it an Authenticator, and what both
// must agree on lives in package credential.
package proxy

import (
	"context"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

// Authenticator resolves session and API tokens; package auth's Service is
// one.
type Authenticator interface {
	// Authenticate returns the identity of a token that has a gateway
	// token's shape (credential.Parse), refreshing a session's idle timer.
	// It costs at most one store round trip, honours ctx's deadline, and
	// returns credential.ErrNoSession or credential.ErrStoreUnavailable
	// (possibly wrapped) on failure.
	Authenticate(ctx context.Context, token string) (credential.Identity, error)
}

package assertion

import (
	"net/http"
	"strconv"

	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// JWKSPath is where the gateway publishes the key set on its public
// listener.
const JWKSPath = "/.well-known/jwks.json"

// emptyJWKS is served while no key set is in place, so that a verifier gets
// a well-formed set that verifies nothing rather than an error it may retry.
var emptyJWKS = []byte(`{"keys":[]}`)

// Header values set on every answer, shared so the handler allocates none.
var (
	jwksContentType = []string{"application/jwk-set+json"}
	// Five minutes: long enough that upstreams do not fetch the set per
	// request, short enough that a newly listed key is picked up well
	// before an operator removes the old one (which the rotation procedure
	// delays by more than the assertion's ttl, and by at least this).
	jwksCacheControl = []string{"public, max-age=300"}
	jwksNosniff      = []string{"nosniff"}
	allowGetHead     = []string{"GET, HEAD"}
)

// JWKSHandler serves the JSON Web Key Set of keys() to GET and HEAD (405
// method_not_allowed, with Allow, to anything else). keys is called on every
// request, so a reload that swaps the set (an atomic.Pointer's Load, say) is
// seen at once; a nil set is served as {"keys":[]}. The body is the set's
// precomputed JWKS: nothing is encoded per request.
func JWKSHandler(keys func() *KeySet) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h["Allow"] = allowGetHead
			apierror.Write(w, apierror.MethodNotAllowed)
			return
		}
		body := emptyJWKS
		if ks := keys(); ks != nil {
			body = ks.jwks
		}
		h["Content-Type"] = jwksContentType
		h["Cache-Control"] = jwksCacheControl
		h["X-Content-Type-Options"] = jwksNosniff
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	})
}

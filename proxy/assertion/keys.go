package assertion

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// Errors of NewKeySet and NewSigner.
var (
	// ErrNoKeys means no key was given: NewKeySet of an empty list, or a
	// nil or empty KeySet handed to NewSigner.
	ErrNoKeys = errors.New("no signing key")
	// ErrUnsupportedKey means a nil key or one that is not on P-256.
	ErrUnsupportedKey = errors.New("not an EC P-256 private key")
)

// signingKey is one key and its kid.
type signingKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

// KeySet is an immutable list of EC P-256 keys: the first signs, all are
// published. A reload builds a new KeySet (and a new Signer) rather than
// changing one, so readers never need a lock.
type KeySet struct {
	keys []signingKey
	jwks []byte // the published JSON Web Key Set, computed once
}

// NewKeySet returns the KeySet of keys, the first of which signs. The keys
// were read and checked where the configuration is loaded (package config
// is the one place that parses key files); NewKeySet only refuses what
// could not sign ES256 at all.
func NewKeySet(keys []*ecdsa.PrivateKey) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	for _, k := range keys {
		if k == nil || k.Curve != elliptic.P256() {
			return nil, ErrUnsupportedKey
		}
	}
	return newKeySet(keys)
}

// EphemeralKeys returns a KeySet of one fresh P-256 key that lives as long as
// the process. Upstreams must fetch the JWKS again after every restart, and
// replicas each sign with their own key, so the caller should log a warning.
func EphemeralKeys() (*KeySet, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return newKeySet([]*ecdsa.PrivateKey{priv})
}

// KeyIDs returns the kid of every key, the signing key first, for logging
// which keys a reload put in place.
func (ks *KeySet) KeyIDs() []string {
	ids := make([]string, len(ks.keys))
	for i, k := range ks.keys {
		ids[i] = k.kid
	}
	return ids
}

// JWKS returns the JSON Web Key Set of the public keys
// ({"keys":[{"kty":"EC","crv":"P-256","kid":...,"alg":"ES256","use":"sig",...}]}),
// in key order. The slice is a copy.
func (ks *KeySet) JWKS() []byte {
	return bytes.Clone(ks.jwks)
}

// newKeySet computes every kid and the JWKS once, so that neither signing nor
// serving the JWKS encodes anything per request.
func newKeySet(privs []*ecdsa.PrivateKey) (*KeySet, error) {
	ks := &KeySet{keys: make([]signingKey, len(privs))}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(privs))}
	for i, priv := range privs {
		kid, err := thumbprint(&priv.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
		}
		ks.keys[i] = signingKey{priv: priv, kid: kid}
		set.Keys[i] = jose.JSONWebKey{
			Key:       &priv.PublicKey,
			KeyID:     kid,
			Algorithm: string(jose.ES256),
			Use:       "sig",
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encode jwks: %w", err)
	}
	ks.jwks = b
	return ks, nil
}

// thumbprint is the key's RFC 7638 JWK thumbprint (SHA-256, base64url
// without padding), the kid verifiers look the key up by.
func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

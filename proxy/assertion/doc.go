// Package assertion signs the identity assertion that the gateway adds to
// every request it forwards with a session or an API token: a compact JWS
// (ES256) that an upstream verifies against the gateway's JSON Web Key Set, so
// that it no longer has to trust X-User-Id merely because nothing else can
// reach it.
//
// It owns the signing keys (NewKeySet of the keys package config read and
// checked, or EphemeralKeys), the key set published at
// /.well-known/jwks.json (KeySet.JWKS, JWKSHandler) and the signing itself,
// with a bounded cache that reuses a young assertion for the same identity and
// audience (Signer).
//
// It must never decide who a request belongs to: the caller hands it claims
// only after the session or token was checked in the store on this very
// request. It never talks to the store, and it must not import the config,
// auth or proxy packages: package proxy builds the KeySet and Signer of each
// configuration, and the command hands it the process's ephemeral key.
package assertion

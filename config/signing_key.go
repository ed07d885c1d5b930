package config

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
)

// Why an identity.assertion.key_files entry is refused. The messages end up
// in `gatehouse check` after "FILE:LINE: identity.assertion.key_files[i]:
// KEYFILE: ", so they say what the file holds and how to make a good one.
var (
	errNoSigningKey  = errors.New("holds no PEM private key (generate one with: openssl ecparam -name prime256v1 -genkey -noout -out key.pem)")
	errSeveralKeys   = errors.New("holds more than one private key: give each key its own file")
	errEncryptedKey  = errors.New("holds an encrypted key: the gateway reads keys without a passphrase (openssl ec -in key.pem -out plain.pem)")
	errBadSigningKey = errors.New("is not a valid EC private key")
	errNotP256       = errors.New("must be an EC P-256 (prime256v1) key: the assertion is signed with ES256")
)

// parseSigningKey finds exactly one PEM private key block and parses it as
// an unencrypted EC P-256 key: SEC 1 ("EC PRIVATE KEY") or PKCS #8
// ("PRIVATE KEY"). "EC PARAMETERS" blocks, which `openssl ecparam -genkey`
// writes unless given -noout, are skipped; the curve they name is checked
// on the key itself. Any other block (a certificate, a public key, an RSA
// or encrypted key) is refused rather than skipped, since the operator
// meant the file as a key. The file's size was bounded when it was read.
func parseSigningKey(data []byte) (*ecdsa.PrivateKey, error) {
	var found *pem.Block
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "EC PARAMETERS":
			continue
		case "EC PRIVATE KEY", "PRIVATE KEY":
			if found != nil {
				return nil, errSeveralKeys
			}
			found = b
		case "ENCRYPTED PRIVATE KEY":
			return nil, errEncryptedKey
		default:
			return nil, fmt.Errorf("holds a %q PEM block: %w", b.Type, errNotP256)
		}
	}
	if found == nil {
		return nil, errNoSigningKey
	}
	if _, ok := found.Headers["Proc-Type"]; ok {
		return nil, errEncryptedKey
	}
	var priv *ecdsa.PrivateKey
	if found.Type == "EC PRIVATE KEY" {
		k, err := x509.ParseECPrivateKey(found.Bytes)
		if err != nil {
			return nil, sec1Error(found.Bytes)
		}
		priv = k
	} else {
		k, err := x509.ParsePKCS8PrivateKey(found.Bytes)
		if err != nil {
			// x509's ASN.1 detail means nothing to an operator.
			return nil, errBadSigningKey
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("holds an %s key: %w", keyKind(k), errNotP256)
		}
		priv = ek
	}
	if priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("holds a %s key: %w", priv.Curve.Params().Name, errNotP256)
	}
	if _, err := priv.ECDH(); err != nil {
		return nil, errBadSigningKey
	}
	return priv, nil
}

// keyKind names a parsed PKCS #8 key's type for an operator.
func keyKind(k any) string {
	switch k.(type) {
	case *rsa.PrivateKey:
		return "RSA"
	case ed25519.PrivateKey:
		return "Ed25519"
	case *ecdh.PrivateKey:
		return "X25519"
	default:
		return fmt.Sprintf("%T", k)
	}
}

// sec1Key is the outer structure of an "EC PRIVATE KEY" block (RFC 5915),
// read only to tell a curve Go does not know from a block that is garbage.
type sec1Key struct {
	Version    int
	PrivateKey []byte
	Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
}

// sec1Error explains why an "EC PRIVATE KEY" block did not parse: a
// well-formed key on a curve Go does not know (secp256k1, brainpool) is
// refused as the wrong curve, anything else as not a valid key.
func sec1Error(der []byte) error {
	var k sec1Key
	if rest, err := asn1.Unmarshal(der, &k); err == nil && len(rest) == 0 && len(k.Curve) > 0 {
		return fmt.Errorf("holds a key on curve %s: %w", k.Curve, errNotP256)
	}
	return errBadSigningKey
}

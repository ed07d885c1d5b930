package assertion

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"github.com/go-jose/go-jose/v4"
)

// Errors of LoadKeys (each wrapped in a *KeyFileError) and of NewSigner.
var (
	// ErrNoKeys means no key was given: LoadKeys of an empty list, or a nil
	// or empty KeySet handed to NewSigner.
	ErrNoKeys = errors.New("no signing key")
	// ErrUnreadable means the key file could not be opened or read.
	ErrUnreadable = errors.New("cannot read the key file")
	// ErrFileTooLarge means the file is far larger than any PEM key.
	ErrFileTooLarge = errors.New("file too large for a key")
	// ErrNoKey means the file holds no PEM private key block.
	ErrNoKey = errors.New("no PEM private key in the file")
	// ErrSeveralKeys means the file holds more than one private key block.
	ErrSeveralKeys = errors.New("more than one private key in the file")
	// ErrBadKey means a private key block does not parse.
	ErrBadKey = errors.New("the private key does not parse")
	// ErrUnsupportedKey means the key is not an unencrypted EC P-256 private
	// key (another curve, RSA, Ed25519, an encrypted key, a public key).
	ErrUnsupportedKey = errors.New("not an EC P-256 private key")
	// ErrDuplicateKey means two files hold the same key.
	ErrDuplicateKey = errors.New("the same key as an earlier file")
)

// maxKeyFileSize bounds what LoadKeys reads: a P-256 PEM key is about 230
// bytes, so anything larger than this is a wrong path (a log, a device), not
// a key, and must not be read whole into memory on every reload.
const maxKeyFileSize = 64 << 10

// KeyFileError is the error LoadKeys reports for one file. Index is the
// file's position in the list given to LoadKeys, so a caller can name it as
// identity.assertion.key_files[Index]; Err is one of the sentinel errors
// above, possibly wrapping more detail.
type KeyFileError struct {
	Index int
	File  string
	Err   error
}

// Error returns "FILE: what is wrong".
func (e *KeyFileError) Error() string { return e.File + ": " + e.Err.Error() }

// Unwrap returns the sentinel error, for errors.Is.
func (e *KeyFileError) Unwrap() error { return e.Err }

// signingKey is one loaded key and its kid.
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

// LoadKeys reads one PEM EC P-256 private key from each file (SEC1 "EC
// PRIVATE KEY" or PKCS#8 "PRIVATE KEY"; "EC PARAMETERS" blocks, which
// `openssl ecparam -genkey` writes without -noout, are skipped). The first
// file's key signs. Every problem of every file is reported, joined; each is
// a *KeyFileError naming the file and its index.
func LoadKeys(files []string) (*KeySet, error) {
	if len(files) == 0 {
		return nil, ErrNoKeys
	}
	var (
		errs []error
		keys []*ecdsa.PrivateKey
		seen = make(map[string]int, len(files))
	)
	for i, name := range files {
		priv, err := loadKeyFile(name)
		if err == nil {
			// Two files holding one key would publish one kid twice, and an
			// operator who meant to rotate would not be rotating.
			kid, terr := thumbprint(&priv.PublicKey)
			if terr != nil {
				err = fmt.Errorf("%w: %w", ErrBadKey, terr)
			} else if j, dup := seen[kid]; dup {
				err = fmt.Errorf("%w (key_files[%d])", ErrDuplicateKey, j)
			} else {
				seen[kid] = i
			}
		}
		if err != nil {
			errs = append(errs, &KeyFileError{Index: i, File: name, Err: err})
			continue
		}
		keys = append(keys, priv)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
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
			return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
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

// loadKeyFile reads and parses one key file.
func loadKeyFile(name string) (*ecdsa.PrivateKey, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, pathErr(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, pathErr(err))
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%w (more than %d bytes)", ErrFileTooLarge, maxKeyFileSize)
	}
	return parseKeyPEM(data)
}

// pathErr drops the file name from an *fs.PathError, since KeyFileError
// names the file already.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseKeyPEM finds exactly one private key block and parses it.
func parseKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	var found *pem.Block
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "EC PARAMETERS":
			// Written by `openssl ecparam -genkey` without -noout; the curve
			// it names is checked on the key itself.
			continue
		case "EC PRIVATE KEY", "PRIVATE KEY":
			if found != nil {
				return nil, ErrSeveralKeys
			}
			found = b
		default:
			// A certificate, a public key, an RSA or encrypted key: refuse
			// rather than skip, since the operator meant this file as a key.
			return nil, fmt.Errorf("%w (PEM block %s)", ErrUnsupportedKey, strconv.Quote(b.Type))
		}
	}
	if found == nil {
		return nil, ErrNoKey
	}
	if _, ok := found.Headers["Proc-Type"]; ok {
		return nil, fmt.Errorf("%w (encrypted)", ErrUnsupportedKey)
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
			return nil, fmt.Errorf("%w (PEM block \"PRIVATE KEY\")", ErrBadKey)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w (%s)", ErrUnsupportedKey, keyKind(k))
		}
		priv = ek
	}
	if priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w (curve %s)", ErrUnsupportedKey, priv.Curve.Params().Name)
	}
	return priv, nil
}

// keyKind names a parsed PKCS#8 key's type for an operator.
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
// well-formed key on another curve (secp256k1, brainpool) is refused as
// unsupported, anything else as not parsing, without x509's ASN.1 detail.
func sec1Error(der []byte) error {
	var k sec1Key
	if rest, err := asn1.Unmarshal(der, &k); err == nil && len(rest) == 0 && len(k.Curve) > 0 {
		return fmt.Errorf("%w (curve %s)", ErrUnsupportedKey, k.Curve)
	}
	return fmt.Errorf("%w (PEM block \"EC PRIVATE KEY\")", ErrBadKey)
}

package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// totpKeySize is the AES-256 key size of auth.totp.encryption_key_file.
const totpKeySize = 32

// keyFiles reads the files that hold keys (auth.totp.encryption_key_file,
// identity.assertion.key_files) into the Config, so that what serves runs
// on keys that were checked once, here, and `gatehouse check` refuses the
// same files `serve` would.
func (d *decoder) keyFiles(cfg *Config) {
	if f := cfg.Auth.TOTP.EncryptionKeyFile; f != "" {
		key, err := readKey(d, f, parseTOTPKey)
		if err != nil {
			d.add("auth.totp.encryption_key_file", "%s: %v", f, err)
		} else {
			cfg.Auth.TOTP.EncryptionKey = key
		}
	}
	a := &cfg.Identity.Assertion
	a.Keys = nil
	for i, f := range a.KeyFiles {
		key, err := readKey(d, f, parseSigningKey)
		if err != nil {
			d.add(fmt.Sprintf("identity.assertion.key_files[%d]", i), "%s: %v", f, err)
			continue
		}
		a.Keys = append(a.Keys, key)
	}
}

// readKey reads a key file (relative to the configuration's folder) and
// parses it.
func readKey[T any](d *decoder, file string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	b, err := d.fsys.readSecret(d.rel(file))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return zero, fmt.Errorf("cannot read: %w", err)
	}
	return parse(b)
}

// parseTOTPKey accepts 32 raw bytes, or their standard or URL-safe base64
// (padded or not), with surrounding white space trimmed.
func parseTOTPKey(b []byte) ([]byte, error) {
	if len(b) == totpKeySize {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == totpKeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("must hold %d random bytes, raw or base64 (for example: head -c 32 /dev/urandom | base64)", totpKeySize)
}

// parseSigningKey accepts one PEM block holding an EC P-256 private key,
// as SEC 1 ("EC PRIVATE KEY") or PKCS #8 ("PRIVATE KEY").
func parseSigningKey(b []byte) (*ecdsa.PrivateKey, error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, errors.New("holds no PEM block (generate one with: openssl ecparam -name prime256v1 -genkey -noout -out key.pem)")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, errors.New("holds more than one PEM block: give each key its own file")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("holds a %q block, not an EC private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("is not a valid EC private key")
	}
	ek, ok := key.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("must be an EC P-256 (prime256v1) key: the assertion is signed with ES256")
	}
	if _, err := ek.ECDH(); err != nil {
		return nil, errors.New("is not a valid EC P-256 key")
	}
	return ek, nil
}

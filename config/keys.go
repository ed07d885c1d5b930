package config

import (
	"encoding/base64"
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
	bad := false
	for i, f := range a.KeyFiles {
		field := fmt.Sprintf("identity.assertion.key_files[%d]", i)
		key, err := readKey(d, f, parseSigningKey)
		if err == nil {
			// Two files holding one key would publish one kid twice, and
			// an operator who meant to rotate would not be rotating.
			for j, prev := range a.Keys {
				if prev != nil && prev.PublicKey.Equal(&key.PublicKey) {
					err = fmt.Errorf("holds the same key as identity.assertion.key_files[%d]", j)
					break
				}
			}
		}
		if err != nil {
			d.add(field, "%s: %v", f, err)
			bad = true
			key = nil // keeps indices aligned for the duplicate check
		}
		a.Keys = append(a.Keys, key)
	}
	if bad {
		a.Keys = nil
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

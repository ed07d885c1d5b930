package auth

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// SecretKeySize is the size of the key of a SecretBox: AES-256.
const SecretKeySize = 32

// ErrSecretKey is a key file that does not hold a key of SecretKeySize bytes.
var ErrSecretKey = errors.New("auth: the encryption key must be 32 bytes, raw or base64")

// errSealed is a sealed value that does not open: another key, another
// user's value, or one that was altered. Callers never learn which.
var errSealed = errors.New("auth: sealed value does not open")

// SecretBox seals small secrets (TOTP secrets) with AES-256-GCM before they
// reach the store, so a copy of Redis (a backup, a replica, a MONITOR) does
// not give away anyone's second factor. It is safe for concurrent use.
type SecretBox struct {
	aead cipher.AEAD
}

// NewSecretBox returns a SecretBox with key, which must be SecretKeySize
// bytes (see ParseSecretKey for a key file).
func NewSecretBox(key []byte) (*SecretBox, error) {
	if len(key) != SecretKeySize {
		return nil, ErrSecretKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("auth: secret box: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("auth: secret box: %w", err)
	}
	return &SecretBox{aead: aead}, nil
}

// NewEphemeralSecretBox returns a SecretBox with a random key that lives as
// long as the process: for the embedded store, whose data is lost at exit
// anyway.
func NewEphemeralSecretBox() (*SecretBox, error) {
	key := make([]byte, SecretKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("auth: ephemeral key: %w", err)
	}
	return NewSecretBox(key)
}

// ParseSecretKey reads the content of auth.totp.encryption_key_file: exactly
// 32 bytes, or their standard or URL-safe base64 (padded or not), with
// surrounding white space ignored. Raw bytes are taken as they are when the
// file is exactly 32 bytes long, so a raw key whose bytes happen to end in
// a newline is still read right. Anything else is ErrSecretKey.
func ParseSecretKey(fileContent []byte) ([]byte, error) {
	if len(fileContent) == SecretKeySize {
		return bytes.Clone(fileContent), nil
	}
	s := string(bytes.TrimSpace(fileContent))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == SecretKeySize {
			return k, nil
		}
	}
	return nil, ErrSecretKey
}

// Seal encrypts plaintext for userID and returns base64 of nonce ||
// ciphertext. The user id is the additional data: a sealed secret copied
// into another user's record does not open there.
func (b *SecretBox) Seal(userID string, plaintext []byte) (string, error) {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	// Random 96-bit nonces are safe far beyond the number of secrets one
	// key will ever seal (2^32 under NIST's bound).
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("auth: seal: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, plaintext, []byte(userID))
	return base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal returned for the same userID. A value sealed with
// another key, for another user, or altered in any way returns an error.
func (b *SecretBox) Open(userID, sealed string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < b.aead.NonceSize()+b.aead.Overhead() {
		return nil, errSealed
	}
	n := b.aead.NonceSize()
	pt, err := b.aead.Open(nil, raw[:n], raw[n:], []byte(userID))
	if err != nil {
		return nil, errSealed
	}
	return pt, nil
}

package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

// The token's shape is package credential's (credential.Parse); this file
// makes tokens and the hashes the store keeps instead of them.
const (
	userIDLen       = credential.UserIDLen
	tokenSecretSize = 32 // 256 bits, more than the minimum of 128 a session needs
	maxTokenLen     = credential.MaxTokenLen
)

// newUserID returns 16 random bytes as 32 lower-case hex characters.
func newUserID() (string, error) {
	var b [userIDLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// newToken returns a fresh session token for userID ending at end (whole
// seconds; callers truncate so the lifetime never exceeds the TTL).
func newToken(userID string, end time.Time) (string, error) {
	return mintToken(credential.SessionPrefix, userID, end)
}

// newAPIToken returns a fresh API token for userID ending at end.
func newAPIToken(userID string, end time.Time) (string, error) {
	return mintToken(credential.APITokenPrefix, userID, end)
}

func mintToken(prefix, userID string, end time.Time) (string, error) {
	var secret [tokenSecretSize]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", err
	}
	b := make([]byte, 0, maxTokenLen)
	b = append(b, prefix...)
	b = append(b, userID...)
	b = append(b, '.')
	b = strconv.AppendInt(b, end.Unix(), 10)
	b = append(b, '.')
	b = base64.RawURLEncoding.AppendEncode(b, secret[:])
	return string(b), nil
}

// parseToken returns the user id and absolute end (Unix seconds) of a
// session token; ok is false for anything else, an API token included.
func parseToken(tok string) (userID string, end int64, ok bool) {
	kind, userID, end, ok := credential.Parse(tok)
	if !ok || kind != credential.Session {
		return "", 0, false
	}
	return userID, end, true
}

// isUserID reports whether s is 32 lower-case hex characters.
func isUserID(s string) bool { return credential.IsUserID(s) }

// tokenHash is what the store keeps instead of a token: hex SHA-256. A
// token has 256 random bits, so a fast unsalted hash is enough; it only has
// to make a dump of the store useless for logging in.
func tokenHash(tok string) string {
	var dst [2 * sha256.Size]byte
	appendTokenHash(dst[:0], tok)
	return string(dst[:])
}

// appendTokenHash appends hex SHA-256 of tok to b without a heap
// allocation of its own (the hot path builds the key in one buffer).
func appendTokenHash(b []byte, tok string) []byte {
	// A token is short: copying it to the stack avoids the heap
	// allocation of []byte(tok).
	var buf [maxTokenLen]byte
	var sum [sha256.Size]byte
	if len(tok) <= len(buf) {
		n := copy(buf[:], tok)
		sum = sha256.Sum256(buf[:n])
	} else {
		sum = sha256.Sum256([]byte(tok))
	}
	return hex.AppendEncode(b, sum[:])
}

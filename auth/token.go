package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"time"
)

// Token shape: "gh1." + userID + "." + end + "." + secret, where userID is
// 32 lower-case hex characters, end is the session's absolute end in decimal
// Unix seconds (no sign, no leading zero) and secret is 32 bytes from
// crypto/rand in unpadded base64url (43 characters). Every character is
// cookie-safe and header-safe, so the token goes into a cookie or an
// Authorization: Bearer header unescaped.
const (
	tokenPrefix     = "gh1."
	userIDLen       = 32 // hex of 16 random bytes
	tokenSecretLen  = 43 // base64.RawURLEncoding.EncodedLen(32)
	tokenSecretSize = 32 // 256 bits, more than the contract's minimum
	maxEndDigits    = 12 // Unix seconds up to year 33658; keeps parsing overflow-free
	// maxTokenLen bounds what parseToken looks at, so a huge header costs
	// nothing.
	maxTokenLen = len(tokenPrefix) + userIDLen + 1 + maxEndDigits + 1 + tokenSecretLen
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
	var secret [tokenSecretSize]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", err
	}
	b := make([]byte, 0, maxTokenLen)
	b = append(b, tokenPrefix...)
	b = append(b, userID...)
	b = append(b, '.')
	b = strconv.AppendInt(b, end.Unix(), 10)
	b = append(b, '.')
	b = base64.RawURLEncoding.AppendEncode(b, secret[:])
	return string(b), nil
}

// parseToken checks the shape of a token and returns its user id and
// absolute end (Unix seconds). It neither allocates nor touches the store:
// it runs for every Authorization: Bearer header the proxy sees. The secret
// is only checked for its alphabet; a forged or altered token has another
// SHA-256 and so finds no session.
func parseToken(tok string) (userID string, end int64, ok bool) {
	if len(tok) > maxTokenLen || len(tok) < len(tokenPrefix)+userIDLen+3+tokenSecretLen {
		return "", 0, false
	}
	if tok[:len(tokenPrefix)] != tokenPrefix {
		return "", 0, false
	}
	rest := tok[len(tokenPrefix):]
	userID = rest[:userIDLen]
	if !isUserID(userID) || rest[userIDLen] != '.' {
		return "", 0, false
	}
	rest = rest[userIDLen+1:]
	secret := rest[len(rest)-tokenSecretLen:]
	digits := rest[:len(rest)-tokenSecretLen]
	if len(digits) < 2 || digits[len(digits)-1] != '.' {
		return "", 0, false
	}
	digits = digits[:len(digits)-1]
	if len(digits) > maxEndDigits || digits[0] == '0' {
		return "", 0, false
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return "", 0, false
		}
		end = end*10 + int64(c-'0')
	}
	for i := 0; i < len(secret); i++ {
		if !isBase64URL(secret[i]) {
			return "", 0, false
		}
	}
	return userID, end, true
}

// isUserID reports whether s is 32 lower-case hex characters.
func isUserID(s string) bool {
	if len(s) != userIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

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

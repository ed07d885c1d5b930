package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
)

// Recovery codes: recoveryCodeCount codes of recoveryCodeChars base32
// characters (5 bits each, 80 bits per code), shown grouped by four and in
// lower case ("abcd-efgh-ijkl-mnop"), accepted in any case with or without
// the dashes and spaces.
//
// The store keeps only SHA-256 of each code. A fast hash is enough because
// the codes are random, not chosen by a person: finding any one of ten
// 80-bit codes from a copy of the store takes 2^80/10 hashes, about 40,000
// years at 10^11 SHA-256 per second, so bcrypt's slowness would buy nothing
// and would make every recovery code check cost a hash slot. (50-bit codes
// would fall to one GPU in hours: that is why the codes are this long.)
const (
	recoveryCodeCount = 10
	recoveryCodeChars = 16
	recoveryGroup     = 4
)

// recoveryEncoding is RFC 4648 base32 without padding: no 0, 1, 8 or 9, so
// nothing to confuse with O, I, l or B when typed from paper.
var recoveryEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newRecoveryCodes returns fresh codes as shown to the user and the hashes
// the store keeps.
func newRecoveryCodes() (codes, hashes []string, err error) {
	codes = make([]string, recoveryCodeCount)
	hashes = make([]string, recoveryCodeCount)
	for i := range codes {
		var b [recoveryCodeChars * 5 / 8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, nil, fmt.Errorf("auth: recovery codes: %w", err)
		}
		raw := recoveryEncoding.EncodeToString(b[:])
		hashes[i] = recoveryHash(raw)
		var sb strings.Builder
		for j := 0; j < len(raw); j += recoveryGroup {
			if j > 0 {
				sb.WriteByte('-')
			}
			sb.WriteString(strings.ToLower(raw[j : j+recoveryGroup]))
		}
		codes[i] = sb.String()
	}
	return codes, hashes, nil
}

// normalizeRecoveryCode returns the canonical form of something typed as a
// recovery code (upper case, no dashes or spaces), or ok false when it
// cannot be one.
func normalizeRecoveryCode(s string) (string, bool) {
	if len(s) > 4*recoveryCodeChars {
		return "", false
	}
	var b strings.Builder
	b.Grow(recoveryCodeChars)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ' || c == '\t':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case 'A' <= c && c <= 'Z', '2' <= c && c <= '7':
		default:
			return "", false
		}
		b.WriteByte(c)
	}
	if b.Len() != recoveryCodeChars {
		return "", false
	}
	return b.String(), true
}

// recoveryHash is what the store keeps of a normalised code.
func recoveryHash(normalized string) string {
	sum := sha256.Sum256([]byte(normalized))
	return hex.EncodeToString(sum[:])
}

// matchRecoveryCode returns the index in hashes of the code typed, or -1.
// Every stored hash is compared, in constant time, so the time taken does
// not tell which code matched.
func matchRecoveryCode(typed string, hashes []string) int {
	n, ok := normalizeRecoveryCode(typed)
	if !ok {
		return -1
	}
	h := []byte(recoveryHash(n))
	found := -1
	for i, s := range hashes {
		if subtle.ConstantTimeCompare(h, []byte(s)) == 1 && found < 0 {
			found = i
		}
	}
	return found
}

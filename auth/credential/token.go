package credential

// Token shape: PREFIX + userID + "." + end + "." + secret, where PREFIX is
// "gh1." for a session and "ght1." for an API token, userID is 32 lower-case
// hex characters, end is the absolute end in decimal Unix seconds (no sign,
// no leading zero) and secret is 32 bytes from crypto/rand in unpadded
// base64url (43 characters). Every character is cookie-safe and
// header-safe. The distinct prefixes let the shape alone tell a session
// from an API token before any store access.
const (
	SessionPrefix  = "gh1."
	APITokenPrefix = "ght1."
	// UserIDLen is the length of a user id: hex of 16 random bytes.
	UserIDLen = 32
	// SecretLen is base64.RawURLEncoding.EncodedLen(32).
	SecretLen = 43
	// maxEndDigits: Unix seconds up to year 33658; keeps parsing
	// overflow-free.
	maxEndDigits = 12
	// MaxTokenLen bounds what Parse looks at, so a huge header costs
	// nothing.
	MaxTokenLen = len(APITokenPrefix) + UserIDLen + 1 + maxEndDigits + 1 + SecretLen
)

// Kind is what a token-shaped string is.
type Kind uint8

// The kinds of token.
const (
	NotAToken Kind = iota
	Session
	APIToken
)

// Parse checks the shape of a token and returns its kind, user id and
// absolute end (Unix seconds). It neither allocates nor touches the store:
// it runs for every cookie and Authorization header the proxy sees. The
// secret is only checked for its alphabet; a forged or altered token has
// another hash and so finds nothing in the store.
func Parse(tok string) (kind Kind, userID string, end int64, ok bool) {
	var rest string
	switch {
	case len(tok) > MaxTokenLen:
		return NotAToken, "", 0, false
	case len(tok) > len(SessionPrefix) && tok[:len(SessionPrefix)] == SessionPrefix:
		kind, rest = Session, tok[len(SessionPrefix):]
	case len(tok) > len(APITokenPrefix) && tok[:len(APITokenPrefix)] == APITokenPrefix:
		kind, rest = APIToken, tok[len(APITokenPrefix):]
	default:
		return NotAToken, "", 0, false
	}
	if len(rest) < UserIDLen+3+SecretLen {
		return NotAToken, "", 0, false
	}
	userID = rest[:UserIDLen]
	if !IsUserID(userID) || rest[UserIDLen] != '.' {
		return NotAToken, "", 0, false
	}
	rest = rest[UserIDLen+1:]
	secret := rest[len(rest)-SecretLen:]
	digits := rest[:len(rest)-SecretLen]
	if len(digits) < 2 || digits[len(digits)-1] != '.' {
		return NotAToken, "", 0, false
	}
	digits = digits[:len(digits)-1]
	if len(digits) > maxEndDigits || digits[0] == '0' {
		return NotAToken, "", 0, false
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return NotAToken, "", 0, false
		}
		end = end*10 + int64(c-'0')
	}
	for i := 0; i < len(secret); i++ {
		if !isBase64URL(secret[i]) {
			return NotAToken, "", 0, false
		}
	}
	return kind, userID, end, true
}

// IsToken reports whether s has the shape of any gateway token.
func IsToken(s string) bool {
	_, _, _, ok := Parse(s)
	return ok
}

// IsUserID reports whether s is 32 lower-case hex characters.
func IsUserID(s string) bool {
	if len(s) != UserIDLen {
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

package auth

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Limits of an email address (RFC 5321: 64 octets of local part, 254 of
// path in practice).
const (
	maxEmailBytes = 254
	maxLocalBytes = 64
)

// emailProfile is the PRECIS IdentifierClass (RFC 8264) with NFKC and case
// folding, applied to the whole address before it is split. The order is
// NFKC (so that compatibility forms such as full-width letters become the
// letters they stand for), full case folding (so that "Σ", "σ" and the
// final "ς" are one letter, and "ß" is "ss"), lower case (folding maps a
// few scripts, Cherokee for one, to their capitals), NFKC again (folding
// and lowering can undo it), then the class check, which refuses what is
// left outside IdentifierClass: spaces and blanks (U+2800, U+3000),
// controls, format and default-ignorable characters (zero-width, bidi
// controls, variation selectors, Hangul fillers), symbols, non-ASCII
// punctuation (the ideographic full stop that IDNA would turn into a dot),
// private use and unassigned code points. Profile and the transformers it
// makes are safe for concurrent use: the case mapping and norm forms are
// stateless, and AdditionalMapping builds its transformers per call.
var emailProfile = precis.NewIdentifier(
	precis.AdditionalMapping(
		func() transform.Transformer { return norm.NFKC },
		func() transform.Transformer { return cases.Fold() },
	),
	precis.LowerCase(),
	precis.Norm(norm.NFKC),
)

// emailDomain turns the domain into its IDNA A-label form (xn--...) for
// lookup, after the PRECIS step has already folded and normalised it.
// StrictDomainName is off: addresses registered before this normaliser
// may have domains with "_" or other ASCII punctuation that STD3 refuses,
// and their owners must still be able to sign in.
var emailDomain = idna.New(
	idna.MapForLookup(),
	idna.StrictDomainName(false),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
	idna.VerifyDNSLength(true),
)

// NormalizeEmail returns the canonical form of an email address: ASCII
// blanks trimmed at both ends, then PRECIS IdentifierClass with NFKC and
// case folding (see emailProfile), and the domain in IDNA A-label form.
// Two addresses that differ only in case, in final sigma or in
// compatibility forms are the same account.
//
// It refuses (ErrInvalidEmail) invalid UTF-8, any code point outside
// IdentifierClass, the characters RFC 5322 allows only in quoted local
// parts, more or less than one "@", an empty part, a local part with a
// leading, trailing or double dot, a domain that is neither "localhost"
// nor has a dot between valid labels, a domain IDNA refuses, more than 64
// bytes of local part or 254 in all, and any input whose canonical form is
// not its own canonical form (so the result is always stable).
func NormalizeEmail(s string) (string, error) {
	e, err := normalizeEmailOnce(s)
	if err != nil {
		return "", err
	}
	// The composition of NFKC, folding and IDNA is idempotent for every
	// address anyone uses, but not provably for every code point; an
	// address whose form would change again is refused rather than stored
	// under a key that a second spelling could miss.
	if again, err := normalizeEmailOnce(e); err != nil || again != e {
		return "", ErrInvalidEmail
	}
	// Lower case in Go's own tables too, which may be of another Unicode
	// version than x/text's: what the rest of the gateway compares with
	// strings.ToLower must not differ from the key.
	if strings.ToLower(e) != e {
		return "", ErrInvalidEmail
	}
	return e, nil
}

func normalizeEmailOnce(s string) (string, error) {
	s = strings.Trim(s, " \t\r\n")
	// The first bound keeps the Unicode work small; NFKC can grow a string,
	// so the result is bounded again below.
	if s == "" || len(s) > 4*maxEmailBytes || !utf8.ValidString(s) {
		return "", ErrInvalidEmail
	}
	p, err := emailProfile.String(s)
	if err != nil {
		return "", ErrInvalidEmail
	}
	at := strings.IndexByte(p, '@')
	if at <= 0 || at == len(p)-1 || strings.IndexByte(p[at+1:], '@') >= 0 || at > maxLocalBytes {
		return "", ErrInvalidEmail
	}
	// RFC 5322 "specials" are only valid quoted; nobody needs them and they
	// confuse every parser downstream. IdentifierClass allows all printable
	// ASCII, so they are refused here.
	if strings.ContainsAny(p, `"(),:;<>[\]`) {
		return "", ErrInvalidEmail
	}
	local, domain := p[:at], p[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return "", ErrInvalidEmail
	}
	domain, err = emailDomain.ToASCII(domain)
	if err != nil || !validDomain(domain) {
		return "", ErrInvalidEmail
	}
	e := local + "@" + domain
	if len(e) > maxEmailBytes {
		return "", ErrInvalidEmail
	}
	return e, nil
}

// validDomain checks an A-label domain: "localhost", or at least two
// non-empty labels none of which starts or ends with "-".
func validDomain(domain string) bool {
	if domain == "localhost" {
		return true
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
	}
	return true
}

// legacyEmailKey is the form accounts were stored under before
// NormalizeEmail used PRECIS and IDNA: the input trimmed and passed
// through strings.ToLower. An account stored so is found by the spelling
// its owner typed (see Store.getUserOrLegacy).
func legacyEmailKey(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

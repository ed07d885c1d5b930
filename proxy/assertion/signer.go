package assertion

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
)

// Errors of NewSigner and Sign.
var (
	// ErrInvalidTTL means a ttl under one second (the claims count whole
	// seconds, so a shorter one would make exp equal iat).
	ErrInvalidTTL = errors.New("assertion ttl must be at least 1s")
	// ErrNoIssuer means an empty issuer.
	ErrNoIssuer = errors.New("assertion issuer is empty")
	// ErrSessionEnded means Sign was asked for an assertion at or after the
	// session's SessionEnd (or with no SessionEnd at all).
	ErrSessionEnded = errors.New("the session has ended")
	// ErrInvalidClaims means an empty Subject or Audience, or a claim that
	// is not valid UTF-8 (which JSON would silently rewrite).
	ErrInvalidClaims = errors.New("invalid assertion claims")
)

// Claims is the identity one assertion states. Every field but SessionEnd
// is signed; SessionEnd only bounds when Sign may answer at all.
type Claims struct {
	// Audience is the upstream the request goes to (its audience, by
	// default its name): the aud claim. Required.
	Audience string
	// Subject is the user id: the sub claim. Required.
	Subject string
	// Email is the account's email: the email claim.
	Email string
	// Groups are the user's groups, sorted by the caller: the groups claim
	// ([] when none).
	Groups []string
	// AMR lists how the user authenticated ("pwd", "otp", "hwk", "tok"):
	// the amr claim ([] when none).
	AMR []string
	// SessionID is the session handle (the token id for API tokens): the
	// sid claim.
	SessionID string
	// SessionEnd is the session's (or token's) absolute end. Sign refuses
	// at or after it, and a cached assertion is never reused past it.
	// Required: the zero time has always passed.
	SessionEnd time.Time
}

// payload is the JSON claims set, in the order the claims are documented.
type payload struct {
	Iss    string   `json:"iss"`
	Aud    string   `json:"aud"`
	Sub    string   `json:"sub"`
	Email  string   `json:"email"`
	Groups []string `json:"groups"`
	AMR    []string `json:"amr"`
	SID    string   `json:"sid"`
	IAT    int64    `json:"iat"`
	EXP    int64    `json:"exp"`
}

// Signer issues assertions with the signing key of one KeySet. It is safe
// for concurrent use.
//
// Signing costs an ECDSA signature, a large part of a proxied request's CPU,
// so a Signer reuses an assertion it signed for the same claims (audience,
// subject, email, groups, amr and sid, compared exactly) while the assertion
// is at most ttl/4 old: an upstream then always receives an assertion with at
// least three quarters of its lifetime left, and a user who sends a request
// more often than every ttl/4 (any page load, any API client) is signed for
// once per ttl/4. The cache is bounded (about 4096 entries, in shards with
// their own locks) and evicts expired entries first, then arbitrary ones.
//
// Reuse can never let an old grant through. The caller asks for an
// assertion only after it checked the session or token in the store on this
// very request, so a revoked session is refused before Sign is called;
// anything that can change about a live session (groups, email, the second
// factor in amr) is part of the cache key, so a change yields a new
// assertion on the next request; and nothing is served at or after the
// session's SessionEnd. exp is always the assertion's own iat + ttl, so an
// assertion may outlive its session by at most ttl, as any assertion issued
// just before the end would.
//
// A Signer belongs to one KeySet, issuer and ttl: a reload that changes any
// of them builds a new Signer, whose cache starts empty, so an assertion
// signed by a key that no longer signs is never served again.
type Signer struct {
	signer jose.Signer
	kid    string
	issuer string
	ttl    int64 // seconds
	reuse  time.Duration
	now    func() time.Time
	cache  *cache // nil: every call signs (benchmarks measure that)
}

// NewSigner returns a Signer that signs with the first key of keys, sets
// iss to issuer and exp to iat + ttl (ttl in whole seconds; fractions are
// dropped). now is the clock (nil: time.Now).
func NewSigner(keys *KeySet, issuer string, ttl time.Duration, now func() time.Time) (*Signer, error) {
	if keys == nil || len(keys.keys) == 0 {
		return nil, ErrNoKeys
	}
	if ttl < time.Second {
		return nil, ErrInvalidTTL
	}
	if issuer == "" {
		return nil, ErrNoIssuer
	}
	if now == nil {
		now = time.Now
	}
	k := keys.keys[0]
	// The JWK form puts the kid in the protected header; the options add
	// typ. go-jose encodes the header with sorted keys, which gives exactly
	// {"alg":"ES256","kid":KID,"typ":"JWT"}.
	js, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("assertion signer: %w", err)
	}
	secs := int64(ttl / time.Second)
	return &Signer{
		signer: js,
		kid:    k.kid,
		issuer: issuer,
		ttl:    secs,
		reuse:  time.Duration(secs) * time.Second / 4,
		now:    now,
		cache:  newCache(),
	}, nil
}

// KeyID returns the kid of the key this Signer signs with.
func (s *Signer) KeyID() string { return s.kid }

// Sign returns the compact JWS stating c: a cached one while it is young
// (see Signer), otherwise a freshly signed one with iat = now. It fails with
// ErrSessionEnded at or after c.SessionEnd and with ErrInvalidClaims for an
// empty Subject or Audience.
//
// This is on the hot path of every forwarded request: a cache hit takes one
// shard lock and allocates nothing.
func (s *Signer) Sign(c Claims) (string, error) {
	now := s.now()
	if !now.Before(c.SessionEnd) {
		return "", ErrSessionEnded
	}
	if s.cache == nil {
		tok, _, err := s.sign(&c, now)
		return tok, err
	}
	var buf [256]byte
	key := appendKey(buf[:0], &c)
	if tok, ok := s.cache.get(key, now, s.reuse); ok {
		return tok, nil
	}
	tok, iat, err := s.sign(&c, now)
	if err != nil {
		return "", err
	}
	s.cache.put(key, tok, iat, now, s.reuse)
	return tok, nil
}

// sign signs c with iat = now and returns the token and its iat (whole
// seconds, which is what reuse ages are measured from).
func (s *Signer) sign(c *Claims, now time.Time) (string, time.Time, error) {
	if err := checkClaims(c); err != nil {
		return "", time.Time{}, err
	}
	iat := now.Unix()
	p := payload{
		Iss:    s.issuer,
		Aud:    c.Audience,
		Sub:    c.Subject,
		Email:  c.Email,
		Groups: nonNil(c.Groups),
		AMR:    nonNil(c.AMR),
		SID:    c.SessionID,
		IAT:    iat,
		EXP:    iat + s.ttl,
	}
	body, err := json.Marshal(&p)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("encode claims: %w", err)
	}
	jws, err := s.signer.Sign(body)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign assertion: %w", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("serialize assertion: %w", err)
	}
	return tok, time.Unix(iat, 0), nil
}

// checkClaims refuses what would make a meaningless or silently altered
// assertion: encoding/json turns invalid UTF-8 into U+FFFD, so the upstream
// would see a different name than the one the gateway checked.
func checkClaims(c *Claims) error {
	if c.Subject == "" || c.Audience == "" {
		return ErrInvalidClaims
	}
	for _, v := range [...]string{c.Audience, c.Subject, c.Email, c.SessionID} {
		if !utf8.ValidString(v) {
			return ErrInvalidClaims
		}
	}
	for _, list := range [...][]string{c.Groups, c.AMR} {
		for _, v := range list {
			if !utf8.ValidString(v) {
				return ErrInvalidClaims
			}
		}
	}
	return nil
}

// nonNil makes a missing list encode as [] rather than null, so verifiers
// can always read the claim as an array.
func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

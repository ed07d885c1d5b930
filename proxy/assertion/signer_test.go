package assertion

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// segments decodes a compact JWS's header and payload without verifying.
func segments(t *testing.T, tok string) (header, payload []byte) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

func TestSignVerifiedIndependently(t *testing.T) {
	priv := newTestKey(t)
	f := priv
	ks := mustKeySet(t, f)
	clock := newTestClock()
	const ttl = 90 * time.Second
	s := mustSigner(t, ks, ttl, clock)
	k := newVerifier(t, newJWKSServer(t, ks).url)

	tests := []struct {
		name   string
		claims func(*Claims)
	}{
		{"password and totp", func(*Claims) {}},
		{"no groups", func(c *Claims) { c.Groups = nil }},
		{"passkey", func(c *Claims) { c.AMR = []string{"hwk"} }},
		{"api token", func(c *Claims) { c.AMR, c.SessionID = []string{"tok"}, "t-9" }},
		{"other audience", func(c *Claims) { c.Audience = "billing" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testClaims()
			tc.claims(&c)
			tok, err := s.Sign(c)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}

			header, payload := segments(t, tok)
			kid := rfc7638(t, &priv.PublicKey)
			if want := `{"alg":"ES256","kid":"` + kid + `","typ":"JWT"}`; string(header) != want {
				t.Errorf("header = %s, want %s", header, want)
			}
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(payload, &raw); err != nil {
				t.Fatal(err)
			}
			names := make([]string, 0, len(raw))
			for n := range raw {
				names = append(names, n)
			}
			slices.Sort(names)
			if want := []string{"amr", "aud", "email", "exp", "groups", "iat", "iss", "sid", "sub"}; !slices.Equal(names, want) {
				t.Errorf("claims = %v, want %v", names, want)
			}
			if !strings.HasPrefix(string(raw["aud"]), `"`) {
				t.Errorf("aud = %s, want a JSON string", raw["aud"])
			}
			if !strings.HasPrefix(string(raw["groups"]), `[`) {
				t.Errorf("groups = %s, want an array", raw["groups"])
			}

			parsed, got, err := verify(k, tok, c.Audience, clock)
			if err != nil {
				t.Fatalf("independent verifier: %v", err)
			}
			if parsed.Header["typ"] != "JWT" || parsed.Header["kid"] != kid {
				t.Errorf("verified header = %v", parsed.Header)
			}
			if got.Issuer != "https://gate.example" || got.Subject != c.Subject || got.Email != c.Email || got.SID != c.SessionID {
				t.Errorf("iss, sub, email, sid = %q, %q, %q, %q", got.Issuer, got.Subject, got.Email, got.SID)
			}
			if !slices.Equal(got.Audience, []string{c.Audience}) {
				t.Errorf("aud = %v, want [%s]", got.Audience, c.Audience)
			}
			wantGroups := c.Groups
			if wantGroups == nil {
				wantGroups = []string{}
			}
			if got.Groups == nil || !slices.Equal(got.Groups, wantGroups) || !slices.Equal(got.AMR, c.AMR) {
				t.Errorf("groups, amr = %#v, %v; want %#v, %v", got.Groups, got.AMR, wantGroups, c.AMR)
			}
			if !got.IssuedAt.Time.Equal(clock.Now()) {
				t.Errorf("iat = %v, want %v", got.IssuedAt.Time, clock.Now())
			}
			if d := got.ExpiresAt.Sub(got.IssuedAt.Time); d != ttl {
				t.Errorf("exp - iat = %v, want %v", d, ttl)
			}
		})
	}
}

func TestSignedAssertionExpires(t *testing.T) {
	f := newTestKey(t)
	ks := mustKeySet(t, f)
	clock := newTestClock()
	s := mustSigner(t, ks, time.Minute, clock)
	k := newVerifier(t, newJWKSServer(t, ks).url)
	tok, err := s.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := verify(k, tok, "other", clock); err == nil {
		t.Error("verified for another audience")
	}
	clock.Advance(time.Minute)
	if _, _, err := verify(k, tok, "app", clock); err == nil {
		t.Error("verified at exp")
	}
}

// TestRotation follows the documented procedure: the new key is added first
// (it signs at once), the old stays listed, then is removed.
func TestRotation(t *testing.T) {
	fOld := newTestKey(t)
	fNew := newTestKey(t)
	clock := newTestClock()
	before := mustKeySet(t, fOld)
	during := mustKeySet(t, fNew, fOld)
	after := mustKeySet(t, fNew)
	srv := newJWKSServer(t, before)
	upstream := newVerifier(t, srv.url) // fetched the old set only

	oldSigner := mustSigner(t, before, time.Minute, clock)
	oldTok, err := oldSigner.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}

	srv.set(during)
	newSigner := mustSigner(t, during, time.Minute, clock)
	if newSigner.KeyID() != during.KeyIDs()[0] || newSigner.KeyID() == oldSigner.KeyID() {
		t.Fatalf("signer kid = %s, want the new first key %s", newSigner.KeyID(), during.KeyIDs()[0])
	}
	newTok, err := newSigner.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	if newTok == oldTok {
		t.Fatal("the new signer served the old signer's assertion")
	}
	parsed, _, err := verify(upstream, newTok, "app", clock)
	if err != nil {
		t.Fatalf("new key, upstream that knew only the old set (keyfunc refetches on an unknown kid): %v", err)
	}
	if parsed.Header["kid"] != newSigner.KeyID() {
		t.Errorf("kid = %v, want %s", parsed.Header["kid"], newSigner.KeyID())
	}
	if _, _, err := verify(upstream, oldTok, "app", clock); err != nil {
		t.Errorf("old key while still listed: %v", err)
	}
	if _, _, err := verify(newVerifier(t, srv.url), oldTok, "app", clock); err != nil {
		t.Errorf("old key while still listed, fresh upstream: %v", err)
	}

	srv.set(after)
	fresh := newVerifier(t, srv.url) // an upstream whose cache has refreshed
	if _, _, err := verify(fresh, oldTok, "app", clock); err == nil {
		t.Error("old key verified after it was removed from the set")
	}
	if _, _, err := verify(fresh, newTok, "app", clock); err != nil {
		t.Errorf("new key after the old was removed: %v", err)
	}
}

func TestSignRefuses(t *testing.T) {
	f := newTestKey(t)
	clock := newTestClock()
	s := mustSigner(t, mustKeySet(t, f), time.Minute, clock)
	tests := []struct {
		name   string
		claims func(*Claims)
		want   error
	}{
		{"session ended", func(c *Claims) { c.SessionEnd = testStart }, ErrSessionEnded},
		{"session ended earlier", func(c *Claims) { c.SessionEnd = testStart.Add(-time.Second) }, ErrSessionEnded},
		{"no session end", func(c *Claims) { c.SessionEnd = time.Time{} }, ErrSessionEnded},
		{"no subject", func(c *Claims) { c.Subject = "" }, ErrInvalidClaims},
		{"no audience", func(c *Claims) { c.Audience = "" }, ErrInvalidClaims},
		{"invalid utf-8 email", func(c *Claims) { c.Email = "ada\xff@example.com" }, ErrInvalidClaims},
		{"invalid utf-8 group", func(c *Claims) { c.Groups = []string{"ad\xc3"} }, ErrInvalidClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testClaims()
			tc.claims(&c)
			tok, err := s.Sign(c)
			if !errors.Is(err, tc.want) || tok != "" {
				t.Errorf("Sign = %q, %v; want \"\", %v", tok, err, tc.want)
			}
		})
	}
}

func TestNewSignerRefuses(t *testing.T) {
	f := newTestKey(t)
	ks := mustKeySet(t, f)
	tests := []struct {
		name   string
		keys   *KeySet
		issuer string
		ttl    time.Duration
		want   error
	}{
		{"no keys", nil, "gatehouse", time.Minute, ErrNoKeys},
		{"empty key set", &KeySet{}, "gatehouse", time.Minute, ErrNoKeys},
		{"zero ttl", ks, "gatehouse", 0, ErrInvalidTTL},
		{"sub-second ttl", ks, "gatehouse", 999 * time.Millisecond, ErrInvalidTTL},
		{"no issuer", ks, "", time.Minute, ErrNoIssuer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSigner(tc.keys, tc.issuer, tc.ttl, nil); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

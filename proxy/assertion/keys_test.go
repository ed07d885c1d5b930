package assertion

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
)

func TestNewKeySet(t *testing.T) {
	p256 := newTestKey(t)
	tests := []struct {
		name string
		keys []*ecdsa.PrivateKey
		want error
	}{
		{"none", nil, ErrNoKeys},
		{"a nil key", []*ecdsa.PrivateKey{p256, nil}, ErrUnsupportedKey},
		{"P-384", []*ecdsa.PrivateKey{p256, newTestECKey(t, elliptic.P384())}, ErrUnsupportedKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewKeySet(tc.keys); !errors.Is(err, tc.want) {
				t.Errorf("NewKeySet err = %v, want %v", err, tc.want)
			}
		})
	}
	ks := mustKeySet(t, p256)
	if !ks.keys[0].priv.Equal(p256) {
		t.Error("the set does not sign with the key given")
	}
}

// rfc7638 computes the thumbprint by the RFC's own recipe, independently of
// go-jose: the required members in lexicographic order, no whitespace,
// coordinates as fixed-size big-endian base64url, SHA-256, base64url.
func rfc7638(t *testing.T, pub *ecdsa.PublicKey) string {
	t.Helper()
	point, err := pub.Bytes() // 0x04 || X || Y, each 32 bytes
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	members := struct {
		Crv string `json:"crv"`
		Kty string `json:"kty"`
		X   string `json:"x"`
		Y   string `json:"y"`
	}{"P-256", "EC", b64(point[1:33]), b64(point[33:65])}
	input, err := json.Marshal(members)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(input, []byte(`{"crv":"P-256","kty":"EC","x":"`)) {
		t.Fatalf("thumbprint input %s is not in RFC 7638 order", input)
	}
	sum := sha256.Sum256(input)
	return b64(sum[:])
}

func TestKeyIDIsRFC7638Thumbprint(t *testing.T) {
	a := newTestKey(t)
	fa := a
	b := newTestKey(t)
	fb := b
	ks := mustKeySet(t, fa, fb)
	ids := ks.KeyIDs()
	if want := []string{rfc7638(t, &a.PublicKey), rfc7638(t, &b.PublicKey)}; ids[0] != want[0] || ids[1] != want[1] {
		t.Errorf("KeyIDs = %v, want %v", ids, want)
	}
}

func TestJWKSPublishesPublicKeysOnly(t *testing.T) {
	a := newTestKey(t)
	fa := a
	b := newTestKey(t)
	fb := b
	ks := mustKeySet(t, fa, fb)
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(ks.JWKS(), &set); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2", len(set.Keys))
	}
	for i, pub := range []*ecdsa.PublicKey{&a.PublicKey, &b.PublicKey} {
		point, err := pub.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
			"kid": rfc7638(t, pub),
			"x":   base64.RawURLEncoding.EncodeToString(point[1:33]),
			"y":   base64.RawURLEncoding.EncodeToString(point[33:65]),
		}
		got := set.Keys[i]
		if len(got) != len(want) {
			t.Errorf("key %d has members %v, want exactly %v (no private d)", i, got, want)
		}
		for m, v := range want {
			if got[m] != v {
				t.Errorf("key %d %s = %q, want %q", i, m, got[m], v)
			}
		}
	}
}

func TestEphemeralKeys(t *testing.T) {
	a, err := EphemeralKeys()
	if err != nil {
		t.Fatal(err)
	}
	b, err := EphemeralKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(a.KeyIDs()) != 1 || a.KeyIDs()[0] == b.KeyIDs()[0] {
		t.Errorf("KeyIDs = %v and %v, want one fresh key each", a.KeyIDs(), b.KeyIDs())
	}
	if a.keys[0].priv.Curve != elliptic.P256() {
		t.Error("ephemeral key is not P-256")
	}
}

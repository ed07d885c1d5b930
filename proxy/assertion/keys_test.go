package assertion

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeysAccepts(t *testing.T) {
	k := newTestECKey(t, elliptic.P256())
	params, err := x509.MarshalPKIXPublicKey(&k.PublicKey) // any bytes: the block is skipped
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file string
	}{
		{"sec1", writePEM(t, sec1Block(t, k))},
		{"pkcs8", writePEM(t, pkcs8Block(t, k))},
		{"ec parameters first (openssl ecparam -genkey without -noout)", writePEM(t, &pem.Block{Type: "EC PARAMETERS", Bytes: params}, sec1Block(t, k))},
		{"text around the block", writeFile(t, append(append([]byte("a comment\n"), pem.EncodeToMemory(sec1Block(t, k))...), "trailer\n"...))},
	}
	want, err := thumbprint(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := LoadKeys([]string{tc.file})
			if err != nil {
				t.Fatalf("LoadKeys: %v", err)
			}
			if ids := ks.KeyIDs(); len(ids) != 1 || ids[0] != want {
				t.Errorf("KeyIDs = %v, want [%s]", ids, want)
			}
			if !ks.keys[0].priv.Equal(k) {
				t.Error("loaded key differs from the one written")
			}
		})
	}
}

func TestLoadKeysRefuses(t *testing.T) {
	p384 := newTestECKey(t, elliptic.P384())
	p256 := newTestECKey(t, elliptic.P256())
	other := newTestECKey(t, elliptic.P256())
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	encrypted := sec1Block(t, p256)
	encrypted.Headers = map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00000000000000000000000000000000"}

	// secp256k1 (OID 1.3.132.0.10): a well-formed SEC1 key Go does not know.
	k1, err := asn1.Marshal(sec1Key{Version: 1, PrivateKey: bytes.Repeat([]byte{7}, 32), Curve: asn1.ObjectIdentifier{1, 3, 132, 0, 10}})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		file string
		want error
	}{
		{"secp256k1", writePEM(t, &pem.Block{Type: "EC PRIVATE KEY", Bytes: k1}), ErrUnsupportedKey},
		{"missing file", filepath.Join(t.TempDir(), "absent.pem"), ErrUnreadable},
		{"a directory", t.TempDir(), ErrUnreadable},
		{"empty file", writeFile(t, nil), ErrNoKey},
		{"garbage", writeFile(t, []byte("not a key at all\n")), ErrNoKey},
		{"garbage in a key block", writePEM(t, &pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("garbage")}), ErrBadKey},
		{"garbage in a pkcs8 block", writePEM(t, &pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage")}), ErrBadKey},
		{"P-384 sec1", writePEM(t, sec1Block(t, p384)), ErrUnsupportedKey},
		{"P-384 pkcs8", writePEM(t, pkcs8Block(t, p384)), ErrUnsupportedKey},
		{"RSA pkcs8", writePEM(t, pkcs8Block(t, rsaKey)), ErrUnsupportedKey},
		{"RSA pkcs1", writePEM(t, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), ErrUnsupportedKey},
		{"Ed25519", writePEM(t, pkcs8Block(t, edKey)), ErrUnsupportedKey},
		{"public key only", writePEM(t, &pem.Block{Type: "PUBLIC KEY", Bytes: pub}), ErrUnsupportedKey},
		{"encrypted", writePEM(t, encrypted), ErrUnsupportedKey},
		{"two keys", writePEM(t, sec1Block(t, p256), sec1Block(t, other)), ErrSeveralKeys},
		{"too large", writeFile(t, bytes.Repeat([]byte("x"), maxKeyFileSize+1)), ErrFileTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, good := newTestKeyFile(t)
			// The bad file second: the index must name it, not the first.
			ks, err := LoadKeys([]string{good, tc.file})
			if err == nil {
				t.Fatalf("LoadKeys = %v, want an error", ks.KeyIDs())
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			var kfe *KeyFileError
			if !errors.As(err, &kfe) || kfe.Index != 1 || kfe.File != tc.file {
				t.Fatalf("err = %#v, want a *KeyFileError for index 1, %s", err, tc.file)
			}
			if !strings.HasPrefix(err.Error(), tc.file+": ") {
				t.Errorf("message %q does not start with the file name", err)
			}
			if strings.Count(err.Error(), tc.file) != 1 {
				t.Errorf("message %q names the file more than once", err)
			}
		})
	}
}

func TestLoadKeysReportsEveryFile(t *testing.T) {
	k, good := newTestKeyFile(t)
	dup := writePEM(t, pkcs8Block(t, k))
	empty := writeFile(t, nil)
	_, err := LoadKeys([]string{good, empty, dup})
	var got []int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var kfe *KeyFileError
		if !errors.As(e, &kfe) {
			t.Fatalf("%v is not a *KeyFileError", e)
		}
		got = append(got, kfe.Index)
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("reported indices = %v, want [1 2]", got)
	}
	if !errors.Is(err, ErrNoKey) || !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("err = %v, want ErrNoKey and ErrDuplicateKey", err)
	}
	if !strings.Contains(err.Error(), "key_files[0]") {
		t.Errorf("duplicate message %q does not name the first file's index", err)
	}
}

func TestLoadKeysNone(t *testing.T) {
	if _, err := LoadKeys(nil); !errors.Is(err, ErrNoKeys) {
		t.Errorf("LoadKeys(nil) err = %v, want ErrNoKeys", err)
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
	a, fa := newTestKeyFile(t)
	b, fb := newTestKeyFile(t)
	ks := mustLoadKeys(t, fa, fb)
	ids := ks.KeyIDs()
	if want := []string{rfc7638(t, &a.PublicKey), rfc7638(t, &b.PublicKey)}; ids[0] != want[0] || ids[1] != want[1] {
		t.Errorf("KeyIDs = %v, want %v", ids, want)
	}
}

func TestJWKSPublishesPublicKeysOnly(t *testing.T) {
	a, fa := newTestKeyFile(t)
	b, fb := newTestKeyFile(t)
	ks := mustLoadKeys(t, fa, fb)
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

package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func newECKey(t *testing.T, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sec1PEM(t *testing.T, k *ecdsa.PrivateKey) *pem.Block {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
}

func pkcs8PEM(t *testing.T, k any) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

func writePEM(t *testing.T, blocks ...*pem.Block) string {
	t.Helper()
	var b []byte
	for _, bl := range blocks {
		b = append(b, pem.EncodeToMemory(bl)...)
	}
	return writeFile(t, "key.pem", b)
}

// keyFilesConfig lists files as identity.assertion.key_files, on line 5.
func keyFilesConfig(files ...string) string {
	return up + "identity:\n  assertion:\n    header: X-Assertion\n    key_files: [" + strings.Join(files, ", ") + "]\n"
}

func TestAssertionKeyFilesAccepted(t *testing.T) {
	k := newECKey(t, elliptic.P256())
	params, err := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}) // prime256v1
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file string
	}{
		{"sec1", writePEM(t, sec1PEM(t, k))},
		{"pkcs8", writePEM(t, pkcs8PEM(t, k))},
		{"ec parameters first (openssl ecparam -genkey without -noout)", writePEM(t, &pem.Block{Type: "EC PARAMETERS", Bytes: params}, sec1PEM(t, k))},
		{"text around the block", writeFile(t, "k.pem", append(append([]byte("a comment\n"), pem.EncodeToMemory(sec1PEM(t, k))...), "trailer\n"...))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, keyFilesConfig(tc.file), nil)
			if got := c.Identity.Assertion.Keys; len(got) != 1 || !got[0].Equal(k) {
				t.Errorf("Keys = %v, want the key written", got)
			}
		})
	}
}

func TestAssertionKeyFilesRefused(t *testing.T) {
	good := writePEM(t, sec1PEM(t, newECKey(t, elliptic.P256())))
	p256 := newECKey(t, elliptic.P256())
	p384 := newECKey(t, elliptic.P384())
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
	encrypted := sec1PEM(t, p256)
	encrypted.Headers = map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00000000000000000000000000000000"}
	// secp256k1 (OID 1.3.132.0.10): a well-formed SEC 1 key Go does not know.
	k1, err := asn1.Marshal(sec1Key{Version: 1, PrivateKey: bytes.Repeat([]byte{7}, 32), Curve: asn1.ObjectIdentifier{1, 3, 132, 0, 10}})
	if err != nil {
		t.Fatal(err)
	}
	const notP256 = "must be an EC P-256 (prime256v1) key: the assertion is signed with ES256"

	tests := []struct {
		name string
		file string
		want string
	}{
		{"missing file", filepath.Join(t.TempDir(), "absent.pem"), "cannot read: no such file or directory"},
		{"a directory", t.TempDir(), "cannot read: not a regular file"},
		{"too large", writeFile(t, "big.pem", bytes.Repeat([]byte("x"), maxSecretFile+1)), "cannot read: larger than 65536 bytes"},
		{"empty file", writeFile(t, "empty.pem", nil), errNoSigningKey.Error()},
		{"garbage", writeFile(t, "g.pem", []byte("not a key at all\n")), errNoSigningKey.Error()},
		{"garbage in a sec1 block", writePEM(t, &pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("garbage")}), "is not a valid EC private key"},
		{"garbage in a pkcs8 block", writePEM(t, &pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage")}), "is not a valid EC private key"},
		{"secp256k1", writePEM(t, &pem.Block{Type: "EC PRIVATE KEY", Bytes: k1}), "holds a key on curve 1.3.132.0.10: " + notP256},
		{"P-384 sec1", writePEM(t, sec1PEM(t, p384)), "holds a P-384 key: " + notP256},
		{"P-384 pkcs8", writePEM(t, pkcs8PEM(t, p384)), "holds a P-384 key: " + notP256},
		{"RSA pkcs8", writePEM(t, pkcs8PEM(t, rsaKey)), "holds an RSA key: " + notP256},
		{"RSA pkcs1", writePEM(t, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), `holds a "RSA PRIVATE KEY" PEM block: ` + notP256},
		{"Ed25519", writePEM(t, pkcs8PEM(t, edKey)), "holds an Ed25519 key: " + notP256},
		{"public key only", writePEM(t, &pem.Block{Type: "PUBLIC KEY", Bytes: pub}), `holds a "PUBLIC KEY" PEM block: ` + notP256},
		{"encrypted sec1", writePEM(t, encrypted), errEncryptedKey.Error()},
		{"encrypted pkcs8", writePEM(t, &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("x")}), errEncryptedKey.Error()},
		{"two keys", writePEM(t, sec1PEM(t, p256), sec1PEM(t, p384)), errSeveralKeys.Error()},
		{"the same key as an earlier file", good, "holds the same key as identity.assertion.key_files[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The bad file second: the index must name it, not the first.
			got := problemLines(t, keyFilesConfig(good, tc.file), nil)
			want := []string{"5: identity.assertion.key_files[1]: " + tc.file + ": " + tc.want}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// TestAssertionKeyFilesEveryProblem checks that every bad file is reported,
// each under its own index, and that a duplicate names the earlier file
// even when it is a copy (PKCS #8) of a SEC 1 key.
func TestAssertionKeyFilesEveryProblem(t *testing.T) {
	k := newECKey(t, elliptic.P256())
	first := writePEM(t, sec1PEM(t, k))
	empty := writeFile(t, "empty.pem", nil)
	dup := writePEM(t, pkcs8PEM(t, k))
	got := problemLines(t, keyFilesConfig(first, empty, dup), nil)
	want := []string{
		"5: identity.assertion.key_files[1]: " + empty + ": " + errNoSigningKey.Error(),
		"5: identity.assertion.key_files[2]: " + dup + ": holds the same key as identity.assertion.key_files[0]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestAssertionKeyFilesWithoutHeader: the keys are published before the
// header is turned on, so a rotation can be prepared.
func TestAssertionKeyFilesWithoutHeader(t *testing.T) {
	k := newECKey(t, elliptic.P256())
	src := up + "identity:\n  assertion:\n    key_files: [" + writePEM(t, sec1PEM(t, k)) + "]\n"
	c := mustParse(t, src, nil)
	if got := c.Identity.Assertion.Keys; len(got) != 1 || !got[0].Equal(k) {
		t.Errorf("Keys = %v, want the key", got)
	}
}

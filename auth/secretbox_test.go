package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestParseSecretKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xA7}, 32)
	withNewline := append(bytes.Repeat([]byte{1}, 31), '\n') // raw, ends in a newline byte
	tests := []struct {
		name string
		file []byte
		want []byte // nil: ErrSecretKey
	}{
		{"raw 32 bytes", key, key},
		{"raw 32 bytes ending in a newline byte", withNewline, withNewline},
		{"base64", []byte(base64.StdEncoding.EncodeToString(key)), key},
		{"base64 with a trailing newline", []byte(base64.StdEncoding.EncodeToString(key) + "\n"), key},
		{"base64 unpadded, surrounded by spaces", []byte("  " + base64.RawStdEncoding.EncodeToString(key) + " \r\n"), key},
		{"base64url", []byte(base64.RawURLEncoding.EncodeToString(key)), key},
		{"31 raw bytes", key[:31], nil},
		{"33 raw bytes", append(bytes.Clone(key), 0), nil},
		{"base64 of 16 bytes", []byte(base64.StdEncoding.EncodeToString(key[:16])), nil},
		{"base64 of 48 bytes", []byte(base64.StdEncoding.EncodeToString(bytes.Repeat(key, 2)[:48])), nil},
		{"empty", nil, nil},
		{"not base64", []byte(strings.Repeat("!", 44)), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSecretKey(tc.file)
			if tc.want == nil {
				if !errors.Is(err, ErrSecretKey) {
					t.Fatalf("ParseSecretKey = %x, %v; want ErrSecretKey", got, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("ParseSecretKey = %x, %v; want %x", got, err, tc.want)
			}
		})
	}
}

func TestSecretBox(t *testing.T) {
	if _, err := NewSecretBox(make([]byte, 16)); !errors.Is(err, ErrSecretKey) {
		t.Fatalf("NewSecretBox(16 bytes) = %v, want ErrSecretKey", err)
	}
	box, err := NewSecretBox(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewEphemeralSecretBox()
	if err != nil {
		t.Fatal(err)
	}
	const user, secret = "0123456789abcdef0123456789abcdef", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	sealed, err := box.Seal(user, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := box.Seal(user, []byte(secret))
	if again == sealed {
		t.Fatal("two seals of one secret are equal: the nonce is not fresh")
	}
	if strings.Contains(sealed, secret) {
		t.Fatal("the sealed value contains the secret")
	}
	raw, _ := base64.StdEncoding.DecodeString(sealed)
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-1] ^= 1

	tests := []struct {
		name   string
		box    *SecretBox
		user   string
		sealed string
		ok     bool
	}{
		{"same key and user", box, user, sealed, true},
		{"another user", box, "fedcba9876543210fedcba9876543210", sealed, false},
		{"another key", other, user, sealed, false},
		{"altered", box, user, base64.StdEncoding.EncodeToString(flipped), false},
		{"truncated", box, user, base64.StdEncoding.EncodeToString(raw[:20]), false},
		{"not base64", box, user, "%%%", false},
		{"empty", box, user, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.box.Open(tc.user, tc.sealed)
			if tc.ok {
				if err != nil || string(got) != secret {
					t.Fatalf("Open = %q, %v; want the secret", got, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Open = %q, want an error", got)
			}
		})
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		t.Fatal(err)
	}
	checkRecoveryCodes(t, codes)
	c := codes[3]
	tests := []struct {
		name  string
		typed string
		want  int
	}{
		{"as shown", c, 3},
		{"upper case", strings.ToUpper(c), 3},
		{"no dashes", strings.ReplaceAll(c, "-", ""), 3},
		{"spaces", strings.ReplaceAll(c, "-", " "), 3},
		{"one character short", c[:len(c)-1], -1},
		{"one character more", c + "a", -1},
		{"a character outside base32", c[:len(c)-1] + "1", -1},
		{"a TOTP code", "123456", -1},
		{"empty", "", -1},
		{"very long", strings.Repeat("a", 1000), -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := matchRecoveryCode(tc.typed, hashes); got != tc.want {
				t.Fatalf("matchRecoveryCode(%q) = %d, want %d", tc.typed, got, tc.want)
			}
		})
	}
}

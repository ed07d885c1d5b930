package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemKey(t *testing.T, curve elliptic.Curve, pkcs8 bool) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if pkcs8 {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func TestValidatePart2Problems(t *testing.T) {
	short := writeFile(t, "short.key", []byte("c2hvcnQ=\n"))

	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"groups on public", up + "routes:\n  - {path: /, policy: public, groups: [admins]}\n", []string{`3: routes[0].groups: only for policy: authenticated`}},
		{"mfa on deny", up + "routes:\n  - {path: /, policy: deny, mfa: required}\n", []string{`3: routes[0].mfa: only for policy: authenticated`}},
		{"mfa value", up + "routes:\n  - {path: /, policy: authenticated, mfa: yes}\n", []string{`3: routes[0].mfa: must be required, not "yes"`}},
		{"group name", up + "routes:\n  - {path: /, policy: authenticated, groups: [Admins, ok, \"-x\"]}\n", []string{
			`3: routes[0].groups[0]: "Admins" is not a group name (lower-case letters, digits, '.', '_', '-'; at most 64)`,
			`3: routes[0].groups[2]: "-x" is not a group name (lower-case letters, digits, '.', '_', '-'; at most 64)`}},
		{"auth.groups", up + "auth:\n  groups:\n    admins: [ann@example.com, \"*@example.org\", bob, \"a*@x.com\"]\n    Bad: []\n", []string{
			`4: auth.groups.admins[2]: "bob" is not an email address or *@domain`,
			`4: auth.groups.admins[3]: "a*@x.com": only a whole local part may be *, as in *@example.com`,
			`5: auth.groups.Bad: "Bad" is not a group name (lower-case letters, digits, '.', '_', '-'; at most 64)`}},
		// Accounts store a domain in its A-label form, so a member may be
		// written in either.
		{"auth.groups unicode domains", up + "auth:\n  groups:\n    intl: [\"*@Bücher.example\", ann@bücher.example, \"*@xn--bcher-kva.example\", \"*@bü cher.example\"]\n", []string{
			`4: auth.groups.intl[3]: "*@bü cher.example": "bü cher.example" is not a domain`}},
		{"auth.groups not a list", up + "auth:\n  groups:\n    admins: ann@example.com\n", []string{`4: auth.groups.admins: must be a list, not "ann@example.com"`}},
		{"groups_header collides", up + "identity:\n  groups_header: X_User_Id\n", []string{`3: identity.groups_header: must differ from identity.user_id_header`}},
		{"groups_header on a default user name", up + "identity:\n  user_id_header: X-Uid\n  groups_header: X-User-Id\n", []string{
			`4: identity.groups_header: "X-User-Id" is an identity header that upstreams read as the user or email; choose another name`}},
		{"groups_header Remote-User", up + "identity:\n  groups_header: remote_user\n", []string{
			`3: identity.groups_header: "remote_user" is an identity header that upstreams read as the user or email; choose another name`}},
		{"assertion header X-Forwarded-Email", up + "identity:\n  assertion:\n    header: X-Forwarded-Email\n", []string{
			`4: identity.assertion.header: "X-Forwarded-Email" is an identity header that upstreams read as the user or email; choose another name`}},
		{"Authelia's names", up + "identity:\n  user_id_header: Remote-User\n  email_header: Remote-Email\n  groups_header: Remote-Groups\n", nil},
		{"assertion header collides", up + "identity:\n  assertion:\n    header: x-user-groups\n", []string{`4: identity.assertion.header: must differ from identity.groups_header`}},
		{"assertion ttl", up + "identity:\n  assertion:\n    header: X-Assertion\n    ttl: 5s\n", []string{`5: identity.assertion.ttl: must be between 10s and 10m0s`}},
		{"totp key size", up + "auth:\n  totp:\n    encryption_key_file: " + short + "\n", []string{
			`4: auth.totp.encryption_key_file: ` + short + `: must hold 32 random bytes, raw or base64 (for example: head -c 32 /dev/urandom | base64)`}},
		{"totp issuer", up + "auth:\n  totp:\n    issuer: \"a:b\"\n", []string{`4: auth.totp.issuer: must not contain ':' or control characters`}},
		{"rp_id ip", up + "auth:\n  webauthn:\n    rp_id: 127.0.0.1\n", []string{`4: auth.webauthn.rp_id: must be a host name: browsers refuse WebAuthn on an IP address`}},
		{"origin outside rp_id", up + "auth:\n  webauthn:\n    rp_id: example.com\n    origins: [https://login.example.com, https://example.org, nope]\n", []string{
			`5: auth.webauthn.origins[1]: host "example.org" is not auth.webauthn.rp_id "example.com" or under it`,
			`5: auth.webauthn.origins[2]: "nope" is not an origin such as https://app.example.com`}},
		{"tokens max_ttl", up + "auth:\n  tokens:\n    max_ttl: 0\n", []string{`4: auth.tokens.max_ttl: must be at least 1s`}},
		{"account_path", up + "auth:\n  account_path: /me\n", []string{`3: auth.account_path: same as auth.me_path`}},
		{"account_path on the key set", up + "auth:\n  account_path: /.well-known/jwks.json\n", []string{`3: auth.account_path: /.well-known/jwks.json is where the assertion's public keys are published`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := problemLines(t, tc.src, nil)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestPart2KeysLoad(t *testing.T) {
	k1 := writeFile(t, "k1.pem", pemKey(t, elliptic.P256(), false))
	k2 := writeFile(t, "k2.pem", pemKey(t, elliptic.P256(), true))
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	totp := writeFile(t, "totp.key", []byte(base64.StdEncoding.EncodeToString(raw)+"\n"))
	src := "upstreams:\n  app: {url: http://127.0.0.1:3000, audience: my-app}\n" +
		"routes:\n  - {path: /admin/, policy: authenticated, groups: [admins], mfa: required}\n" +
		"auth:\n  groups:\n    admins: [Ann@Example.com, \"*@example.org\"]\n  totp:\n    encryption_key_file: " + totp + "\n" +
		"identity:\n  assertion:\n    header: X-Gatehouse-Assertion\n    key_files: [" + k1 + ", " + k2 + "]\n"
	c, err := Parse("testdata/t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Identity.Assertion.Keys); got != 2 {
		t.Errorf("assertion keys = %d, want 2", got)
	}
	if !reflect.DeepEqual(c.Auth.TOTP.EncryptionKey, raw) {
		t.Error("totp key not decoded from base64")
	}
	if c.Upstreams["app"].Audience != "my-app" {
		t.Errorf("audience = %q", c.Upstreams["app"].Audience)
	}
	r := c.Routes[0]
	if !reflect.DeepEqual(r.Groups, []string{"admins"}) || r.MFA != MFARequired {
		t.Errorf("route = %+v", r)
	}
	if got := c.Auth.Groups["admins"]; len(got) != 2 {
		t.Errorf("auth.groups.admins = %q", got)
	}
	d := Default()
	if d.Identity.GroupsHeader != "X-User-Groups" || d.Auth.AccountPath != "/account" || d.Auth.MaxRegistrations != 100 ||
		d.Identity.Assertion.TTL != Duration(60e9) || d.Auth.TOTP.Issuer != "Gatehouse" || d.Auth.Tokens.MaxTTL != Duration(8760*3600e9) {
		t.Errorf("defaults = %+v %+v", d.Auth, d.Identity)
	}
	if c.RPID() != "localhost" {
		t.Errorf("RPID = %q, want localhost", c.RPID())
	}
}

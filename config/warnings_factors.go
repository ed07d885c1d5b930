package config

import "fmt"

// secondFactorWarnings warns about a second factor that is off or weaker
// than it looks: TOTP without an encryption key on a real Redis (enrolment
// answers 403 until a key is configured), and a public_url on an IP
// address, where browsers refuse passkeys.
func (c *Config) secondFactorWarnings() []string {
	var out []string
	if c.Auth.TOTP.EncryptionKeyFile == "" && !c.Redis.Embedded() {
		out = append(out, c.warnAt("auth.totp.encryption_key_file",
			"not set, so TOTP is off (enrolment answers 403 forbidden); set it to a file of 32 random bytes (head -c 32 /dev/urandom | base64)"))
	}
	if c.Auth.WebAuthn.RPID == "" && c.RPID() == "localhost" && publicHost(c.Auth.PublicURL) != "" && publicHost(c.Auth.PublicURL) != "localhost" {
		out = append(out, c.warnAt("auth.public_url",
			"its host is an IP address, where browsers refuse passkeys: they work only on http(s)://localhost; set a host name, or auth.webauthn.rp_id"))
	}
	return out
}

// warnAt prefixes "field: msg" with the file and the field's line (or its
// closest parent's) when the file is known.
func (c *Config) warnAt(field, msg string) string {
	msg = field + ": " + msg
	if c.File != "" {
		if l := lineOf(c.lines, field); l > 0 {
			return fmt.Sprintf("%s:%d: %s", c.File, l, msg)
		}
	}
	return msg
}

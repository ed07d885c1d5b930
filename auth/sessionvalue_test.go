package auth

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

func TestSessionValueRoundTrip(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	for _, v := range []sessionValue{
		{UserID: id, Email: "a@x.com", Method: credential.MethodPassword},
		{UserID: id, Email: "a@x.com", Groups: "admins,ops", MFA: true, Factor: credential.FactorOTP, Method: credential.MethodPassword,
			Created: time.Unix(1700000000, 0), IP: "192.0.2.1", UserAgent: "curl/8"},
		{UserID: id, Email: "a@x.com", MFA: true, Factor: credential.FactorHardwareKey, Method: credential.MethodPassword},
		{UserID: id, Email: "a@x.com", MFA: true, Factor: credential.FactorHardwareKey, Method: credential.MethodPasskey},
		{UserID: id, Email: "a@x.com", Method: credential.MethodToken, Name: "ci"},
	} {
		got, ok := decodeSession(v.encode(), id)
		if !ok || got != v {
			t.Errorf("decode(encode(%+v)) = %+v, %v", v, got, ok)
		}
	}
	// Version 1, written before groups existed: a password session.
	if got, ok := decodeSession(id+"\nold@x.com", id); !ok || got.Email != "old@x.com" || got.Method != credential.MethodPassword || got.MFA {
		t.Errorf("version 1 = %+v, %v", got, ok)
	}
	// Another user's value, or a broken one, is no session.
	for _, v := range []string{"2\nffffffffffffffffffffffffffffffff\na@x.com\n\n-\npassword\n0\n\n\n", "2\n" + id + "\nshort", "garbage"} {
		if _, ok := decodeSession(v, id); ok {
			t.Errorf("decodeSession(%q) accepted", v)
		}
	}
	// A user agent cannot break the stored form.
	v := sessionValue{UserID: id, Email: "a@x.com", Method: credential.MethodPassword, UserAgent: "x\ny\r\x00z"}
	if got, ok := decodeSession(v.encode(), id); !ok || got.UserAgent != "xyz" {
		t.Errorf("user agent with controls = %q, %v", got.UserAgent, ok)
	}
	stored := sessionValue{UserID: id, Email: "a@x.com", Groups: "ops", Method: credential.MethodPassword}.encode()
	if n := testing.AllocsPerRun(100, func() { decodeSession(stored, id) }); n != 0 {
		t.Errorf("decodeSession allocates %v times, want 0 (it runs on every request)", n)
	}
}

package auth

import (
	"context"
	"testing"
)

// TestDisabledAccountLooksLikeAWrongPassword: with the right password, a
// disabled account gets what a wrong password gets, and nothing else
// happens: the session the request carried stays, as a wrong password
// ends none.
func TestDisabledAccountLooksLikeAWrongPassword(t *testing.T) {
	e := newMiniEnv(t, nil)
	ctx := context.Background()
	u, carried := e.register(t, "dis@example.com", "password1")
	// Another account's session, brought along by the browser.
	other, otherTok := e.register(t, "other@example.com", "password1")
	if err := e.svc.SetDisabled(ctx, "dis@example.com", true); err != nil {
		t.Fatal(err)
	}
	e.mustNotAuth(t, carried)
	_, _, err := e.svc.Login(ctx, "dis@example.com", "password1", "192.0.2.1", otherTok)
	wantInvalid(t, err)
	e.mustAuth(t, otherTok, other)
	if err := e.svc.SetDisabled(ctx, "dis@example.com", false); err != nil {
		t.Fatal(err)
	}
	if _, tok, err := e.svc.Login(ctx, "dis@example.com", "password1", "192.0.2.1", ""); err != nil {
		t.Fatalf("login after enable: %v", err)
	} else {
		e.mustAuth(t, tok, u)
	}
}

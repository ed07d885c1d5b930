package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

// TestTokenOfARevokedSessionIsRefused: a session that was revoked (by a
// password change, an account deletion, sessions revoke) cannot mint a
// token afterwards, even though it authenticated just before.
func TestTokenOfARevokedSessionIsRefused(t *testing.T) {
	e := newMiniEnv(t, nil)
	ctx := context.Background()
	_, tok := e.register(t, "tok@example.com", "password1")
	id, err := e.svc.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RevokeSessions(ctx, "tok@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.CreateToken(ctx, id, "late", time.Hour); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("CreateToken from a revoked session = %v, want ErrSessionNotFound", err)
	}
	// The operator's tokens create has no session and is not refused.
	if _, _, err := e.svc.CreateTokenFor(ctx, "tok@example.com", "ops", time.Hour); err != nil {
		t.Fatalf("CreateTokenFor = %v", err)
	}
}

// TestTokensMintedDuringAPasswordChangeEnd: tokens that another session
// mints while the owner changes the password never outlive the change
// (the change ends every token; a token made meanwhile either existed
// before the sweep or was refused).
func TestTokensMintedDuringAPasswordChangeEnd(t *testing.T) {
	e := newMiniEnv(t, nil)
	ctx := context.Background()
	_, owner := e.register(t, "race@example.com", "password1")
	_, other, err := e.svc.Login(ctx, "race@example.com", "password1", "192.0.2.1", "")
	if err != nil {
		t.Fatal(err)
	}
	ownerID, err := e.svc.Authenticate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	otherID, err := e.svc.Authenticate(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var minted []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok, _, err := e.svc.CreateToken(ctx, otherID, "t"+string(rune('a'+g))+string(rune('a'+i%26))+string(rune('a'+i/26%26)), time.Hour)
				if err == nil {
					mu.Lock()
					minted = append(minted, tok)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	if err := e.svc.ChangePassword(ctx, ownerID, "192.0.2.2", "password1", "password2"); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	close(stop)
	wg.Wait()
	if len(minted) == 0 {
		t.Fatal("no token was minted before the change: the race was not exercised")
	}
	for _, tok := range minted {
		if id, err := e.svc.Authenticate(ctx, tok); err == nil {
			t.Fatalf("a token minted around the password change still authenticates (%s)", id.SID)
		}
	}
	e.mustAuth(t, owner, User{ID: ownerID.UserID, Email: ownerID.Email})
}

// TestPendingSecondStepVoidedByPasswordChange: a sign-in whose first step
// checked the old password cannot finish after the password changed.
func TestPendingSecondStepVoidedByPasswordChange(t *testing.T) {
	e := newMiniEnv(t, nil)
	ctx := context.Background()
	u, _ := e.register(t, "pend@example.com", "password1")
	before, err := e.store.getUser(ctx, "pend@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetPassword(ctx, "pend@example.com", "password2"); err != nil {
		t.Fatal(err)
	}
	meta := newSessionMeta{MFA: true, Factor: credential.FactorOTP, Method: credential.MethodPassword}
	if _, err := e.svc.completeLogin(ctx, u, meta, "", sha256Hex(before.Hash)); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("second step after a password change = %v, want ErrInvalidCredentials", err)
	}
	if n, _ := e.rdb.ZCard(ctx, e.store.indexKey(u.ID)).Result(); n != 0 {
		t.Errorf("%d sessions left, want none", n)
	}
	after, err := e.store.getUser(ctx, "pend@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.completeLogin(ctx, u, meta, "", sha256Hex(after.Hash)); err != nil {
		t.Fatalf("second step with the current password = %v", err)
	}
}

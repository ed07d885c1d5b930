package auth

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// The second factor's multi-key operations against a real Redis Cluster:
// ConfirmTOTP WATCHes and writes the record and the pending key in one
// MULTI, DisableTOTP deletes both, Factors pipelines the record and the
// passkeys, Reset deletes all three. They only work because every key
// carries the user's hash tag; a key without it would fail with CROSSSLOT.
func TestClusterSecondFactors(t *testing.T) {
	c := newClusterEnv(t)
	e := c.env(t, nil)
	ctx := context.Background()
	f := newTestFactors(t, e)
	u, _ := e.register(t, "lee@example.com", "correct horse battery")

	slot := c.slot(t, e.store.sessionKeyHash(u.ID, "x"))
	for _, k := range []string{e.store.totpKey(u.ID), e.store.totpPendingKey(u.ID), e.store.passkeysKey(u.ID)} {
		if got := c.slot(t, k); got != slot {
			t.Fatalf("key %s in slot %d, the user's sessions in %d", k, got, slot)
		}
	}

	secret, codes := enrol(t, f, u)
	addTestPasskey(t, e, u, "ck", 0)
	if got, err := f.Factors(ctx, u.ID); err != nil || !slices.Equal(got, []string{FactorTOTP, FactorPasskey}) {
		t.Fatalf("Factors = %v, %v; want [totp passkey]", got, err)
	}
	e.clock.add(30 * time.Second)
	if err := f.Verify(ctx, u.ID, codeAt(t, secret, e.clock.Now())); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := f.Verify(ctx, u.ID, codes[0]); err != nil {
		t.Fatalf("Verify(recovery): %v", err)
	}
	if err := f.DisableTOTP(ctx, u.ID, codes[1]); err != nil {
		t.Fatalf("DisableTOTP: %v", err)
	}
	enrol(t, f, u)
	rp, err := NewRelyingParty("example.com", []string{"https://example.com"})
	if err != nil {
		t.Fatal(err)
	}
	f.rp = rp
	_, state, err := f.BeginPasskeySecondFactor(ctx, "https://example.com", u.ID)
	if err != nil {
		t.Fatalf("BeginPasskeySecondFactor: %v", err)
	}
	if err := f.FinishPasskeySecondFactor(ctx, u.ID, state, []byte(`{}`)); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("FinishPasskeySecondFactor(garbage) = %v, want ErrInvalidCode", err)
	}
	if err := f.Reset(ctx, u.ID); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if got, _ := f.Factors(ctx, u.ID); len(got) != 0 {
		t.Fatalf("Factors after Reset = %v, want []", got)
	}
}

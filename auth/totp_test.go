package auth

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"image/png"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"
)

// RFC 6238 appendix B: the SHA-1 vectors, 8 digits, with the 20-byte ASCII
// secret "12345678901234567890".
var rfc6238SHA1 = []struct {
	unix int64
	code string
}{
	{59, "94287082"},
	{1111111109, "07081804"},
	{1111111111, "14050471"},
	{1234567890, "89005924"},
	{2000000000, "69279037"},
	{20000000000, "65353130"},
}

var rfc6238Secret = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))

func TestTOTPRFC6238Vectors(t *testing.T) {
	opts8 := totp.ValidateOpts{Period: 30, Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA1}
	for _, tc := range rfc6238SHA1 {
		t.Run(tc.code, func(t *testing.T) {
			at := time.Unix(tc.unix, 0).UTC()
			got, err := totp.GenerateCodeCustom(rfc6238Secret, at, opts8)
			if err != nil || got != tc.code {
				t.Fatalf("GenerateCodeCustom(%d) = %q, %v; want %q", tc.unix, got, err, tc.code)
			}
			if ok, err := totp.ValidateCustom(tc.code, rfc6238Secret, at, opts8); !ok || err != nil {
				t.Fatalf("ValidateCustom(%q, %d) = %v, %v; want true", tc.code, tc.unix, ok, err)
			}
			// Our 6-digit check is the same HOTP value mod 10^6: the
			// vector's last six digits, at its step.
			f := &SecondFactors{now: func() time.Time { return at }}
			step, ok := f.matchTOTP(rfc6238Secret, tc.code[2:], -1)
			if !ok || step != tc.unix/30 {
				t.Fatalf("matchTOTP(%q) at %d = %d, %v; want step %d", tc.code[2:], tc.unix, step, ok, tc.unix/30)
			}
		})
	}
}

// codeAt is the 6-digit code of secret at t.
func codeAt(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatalf("GenerateCodeCustom: %v", err)
	}
	return c
}

func TestTOTPSkew(t *testing.T) {
	now := time.Unix(1_800_000_015, 0) // mid-step
	step := now.Unix() / 30
	f := &SecondFactors{now: func() time.Time { return now }}
	at := func(d int64) string { return codeAt(t, rfc6238Secret, time.Unix((step+d)*30, 0)) }
	tests := []struct {
		name  string
		code  string
		after int64
		want  int64 // -1: refused
	}{
		{"two steps early", at(-2), -1, -1},
		{"one step early", at(-1), -1, step - 1},
		{"current step", at(0), -1, step},
		{"one step late", at(1), -1, step + 1},
		{"two steps late", at(2), -1, -1},
		{"with a space", at(0)[:3] + " " + at(0)[3:], -1, step},
		{"current step already used", at(0), step, -1},
		{"earlier step than the last used", at(-1), step, -1},
		{"later step than the last used", at(1), step, step + 1},
		{"five digits", at(0)[:5], -1, -1},
		{"seven digits", at(0) + "0", -1, -1},
		{"letters", "12a456", -1, -1},
		{"empty", "", -1, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := f.matchTOTP(rfc6238Secret, tc.code, tc.after)
			if tc.want < 0 {
				if ok {
					t.Fatalf("matchTOTP(%q) = step %d, want refused", tc.code, got)
				}
				return
			}
			if !ok || got != tc.want {
				t.Fatalf("matchTOTP(%q) = %d, %v; want %d", tc.code, got, ok, tc.want)
			}
		})
	}
}

// newTestFactors returns SecondFactors on e's store with a fresh key.
func newTestFactors(t testing.TB, e *testEnv) *SecondFactors {
	t.Helper()
	box, err := NewEphemeralSecretBox()
	if err != nil {
		t.Fatal(err)
	}
	return NewSecondFactors(e.store, box, "Gatehouse Test", e.clock.Now, nil)
}

// enrol turns TOTP on for u and returns the secret and the recovery codes.
func enrol(t testing.TB, f *SecondFactors, u User) (string, []string) {
	t.Helper()
	ctx := context.Background()
	secret, url, err := f.BeginTOTP(ctx, u.ID, u.Email)
	if err != nil {
		t.Fatalf("BeginTOTP: %v", err)
	}
	if !strings.HasPrefix(url, "otpauth://totp/") || !strings.Contains(url, "secret="+secret) {
		t.Fatalf("otpauth URL %q does not carry the secret %q", url, secret)
	}
	codes, err := f.ConfirmTOTP(ctx, u.ID, codeAt(t, secret, f.now()))
	if err != nil {
		t.Fatalf("ConfirmTOTP: %v", err)
	}
	return secret, codes
}

func TestTOTPEnrolVerifyDisable(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		f := newTestFactors(t, e)
		u, _ := e.register(t, "ann@example.com", "correct horse battery")

		if got, err := f.Factors(ctx, u.ID); err != nil || len(got) != 0 {
			t.Fatalf("Factors before = %v, %v; want []", got, err)
		}
		secret, url, err := f.BeginTOTP(ctx, u.ID, u.Email)
		if err != nil {
			t.Fatalf("BeginTOTP: %v", err)
		}
		if !strings.Contains(url, "issuer=Gatehouse") || !strings.Contains(url, "ann@example.com") {
			t.Errorf("otpauth URL %q lacks issuer or account", url)
		}
		wrong := codeAt(t, secret, e.clock.Now().Add(5*time.Minute))
		if _, err := f.ConfirmTOTP(ctx, u.ID, wrong); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("ConfirmTOTP(wrong) = %v, want ErrInvalidCode", err)
		}
		if got, _ := f.Factors(ctx, u.ID); len(got) != 0 {
			t.Fatalf("Factors with a pending enrolment = %v, want []", got)
		}
		confirm := codeAt(t, secret, e.clock.Now())
		codes, err := f.ConfirmTOTP(ctx, u.ID, confirm)
		if err != nil {
			t.Fatalf("ConfirmTOTP: %v", err)
		}
		checkRecoveryCodes(t, codes)
		if got, _ := f.Factors(ctx, u.ID); !slices.Equal(got, []string{FactorTOTP}) {
			t.Fatalf("Factors = %v, want [totp]", got)
		}
		if _, _, err := f.BeginTOTP(ctx, u.ID, u.Email); !errors.Is(err, ErrConflict) {
			t.Fatalf("BeginTOTP when on = %v, want ErrConflict", err)
		}
		if _, err := f.ConfirmTOTP(ctx, u.ID, confirm); !errors.Is(err, ErrConflict) {
			t.Fatalf("ConfirmTOTP when on = %v, want ErrConflict", err)
		}

		// The confirming code's step is used up.
		if err := f.Verify(ctx, u.ID, confirm); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("Verify(confirming code) = %v, want ErrInvalidCode", err)
		}
		e.clock.add(30 * time.Second)
		next := codeAt(t, secret, e.clock.Now())
		if err := f.Verify(ctx, u.ID, next); err != nil {
			t.Fatalf("Verify(next step) = %v", err)
		}
		if err := f.Verify(ctx, u.ID, next); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("Verify(replayed) = %v, want ErrInvalidCode", err)
		}

		// Each recovery code once, typed in any case and grouping.
		for i, c := range codes {
			typed := c
			switch i % 3 {
			case 1:
				typed = strings.ToUpper(strings.ReplaceAll(c, "-", ""))
			case 2:
				typed = " " + strings.ReplaceAll(c, "-", " ") + " "
			}
			if err := f.Verify(ctx, u.ID, typed); err != nil {
				t.Fatalf("Verify(recovery code %d %q) = %v", i, typed, err)
			}
			if err := f.Verify(ctx, u.ID, c); !errors.Is(err, ErrInvalidCode) {
				t.Fatalf("Verify(recovery code %d again) = %v, want ErrInvalidCode", i, err)
			}
		}

		e.clock.add(30 * time.Second)
		if err := f.DisableTOTP(ctx, u.ID, codeAt(t, secret, e.clock.Now().Add(5*time.Minute))); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("DisableTOTP(wrong) = %v, want ErrInvalidCode", err)
		}
		if err := f.DisableTOTP(ctx, u.ID, codeAt(t, secret, e.clock.Now())); err != nil {
			t.Fatalf("DisableTOTP = %v", err)
		}
		if got, _ := f.Factors(ctx, u.ID); len(got) != 0 {
			t.Fatalf("Factors after disable = %v, want []", got)
		}
		if err := f.Verify(ctx, u.ID, codeAt(t, secret, e.clock.Now().Add(30*time.Second))); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("Verify after disable = %v, want ErrInvalidCode", err)
		}
		if keys := e.dump(t); containsKey(keys, ":totp") {
			t.Fatalf("TOTP keys left after disable: %v", keys)
		}
	})
}

// checkRecoveryCodes checks the shape and uniqueness of fresh codes.
func checkRecoveryCodes(t *testing.T, codes []string) {
	t.Helper()
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes, want 10", len(codes))
	}
	seen := map[string]bool{}
	for _, c := range codes {
		n, ok := normalizeRecoveryCode(c)
		if !ok || len(c) != 19 || strings.Count(c, "-") != 3 || c != strings.ToLower(c) {
			t.Fatalf("recovery code %q is not xxxx-xxxx-xxxx-xxxx", c)
		}
		if seen[n] {
			t.Fatalf("recovery code %q twice", c)
		}
		seen[n] = true
	}
}

func TestTOTPReplayAcrossReplicas(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		a := newTestFactors(t, e)
		u, _ := e.register(t, "bob@example.com", "correct horse battery")
		secret, _ := enrol(t, a, u)

		// A second gateway: its own client, the same Redis, key and prefix.
		rdb2 := newRedisClient(&redis.Options{Addr: e.rdb.(*redis.Client).Options().Addr})
		t.Cleanup(func() { _ = rdb2.Close() })
		store2 := NewStore(rdb2, e.prefix)
		b := NewSecondFactors(store2, a.box, "Gatehouse Test", e.clock.Now, nil)

		e.clock.add(30 * time.Second)
		code := codeAt(t, secret, e.clock.Now())
		if err := a.Verify(ctx, u.ID, code); err != nil {
			t.Fatalf("replica A Verify = %v", err)
		}
		if err := b.Verify(ctx, u.ID, code); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("replica B Verify(same code) = %v, want ErrInvalidCode", err)
		}

		// The same fresh code sent to both replicas at once: one wins.
		e.clock.add(30 * time.Second)
		code = codeAt(t, secret, e.clock.Now())
		const tries = 8
		var wg sync.WaitGroup
		errs := make([]error, tries)
		for i := range tries {
			f := a
			if i%2 == 1 {
				f = b
			}
			wg.Go(func() { errs[i] = f.Verify(ctx, u.ID, code) })
		}
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrInvalidCode):
				t.Errorf("try %d: %v, want nil or ErrInvalidCode", i, err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d concurrent verifications of one code succeeded, want 1", ok, tries)
		}
	})
}

func TestTOTPPendingExpires(t *testing.T) {
	e := newMiniEnv(t, nil)
	ctx := context.Background()
	f := newTestFactors(t, e)
	u, _ := e.register(t, "cy@example.com", "correct horse battery")
	tests := []struct {
		name  string
		after time.Duration
		want  error
	}{
		{"within 10 minutes", 10*time.Minute - time.Second, nil},
		{"after 10 minutes", 10*time.Minute + time.Second, ErrInvalidCode},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_ = f.Reset(ctx, u.ID)
			secret, _, err := f.BeginTOTP(ctx, u.ID, u.Email)
			if err != nil {
				t.Fatalf("BeginTOTP: %v", err)
			}
			e.advance(tc.after)
			_, err = f.ConfirmTOTP(ctx, u.ID, codeAt(t, secret, e.clock.Now()))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("ConfirmTOTP after %v = %v, want %v", tc.after, err, tc.want)
			}
		})
	}
}

func TestTOTPSecretsNeverInClear(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		f := newTestFactors(t, e)
		u, _ := e.register(t, "dee@example.com", "correct horse battery")
		pending, _, err := f.BeginTOTP(ctx, u.ID, u.Email)
		if err != nil {
			t.Fatal(err)
		}
		checkNotInStore(t, e, pending)
		secret, codes := enrol(t, f, u)
		checkNotInStore(t, e, secret)
		for _, c := range codes {
			n, _ := normalizeRecoveryCode(c)
			checkNotInStore(t, e, c, n)
		}
		if !containsKey(e.dump(t), "}:totp ") {
			t.Fatalf("no totp record in the store: %v", e.dump(t))
		}
	})
}

// checkNotInStore fails if the dump of the store holds any of secrets, as
// typed, upper or lower case, or as the raw bytes of a base32 secret.
func checkNotInStore(t *testing.T, e *testEnv, secrets ...string) {
	t.Helper()
	dump := strings.Join(e.dump(t), "\n")
	for _, s := range secrets {
		forms := []string{s, strings.ToLower(s), strings.ToUpper(s)}
		if raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(s)); err == nil && len(raw) >= 10 {
			forms = append(forms, string(raw), base64.StdEncoding.EncodeToString(raw))
		}
		for _, form := range forms {
			if strings.Contains(dump, form) {
				t.Fatalf("the store holds %q in clear:\n%s", s, dump)
			}
		}
	}
}

func TestTOTPSealedSecretIsBoundToKeyAndUser(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		f := newTestFactors(t, e)
		ann, _ := e.register(t, "ann@example.com", "correct horse battery")
		bob, _ := e.register(t, "bob@example.com", "correct horse battery")
		secret, _ := enrol(t, f, ann)
		enrol(t, f, bob)

		// Ann's record copied over Bob's: Ann's code does not open it.
		rec, err := e.rdb.Get(ctx, e.store.totpKey(ann.ID)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.Set(ctx, e.store.totpKey(bob.ID), rec, 0).Err(); err != nil {
			t.Fatal(err)
		}
		e.clock.add(30 * time.Second)
		code := codeAt(t, secret, e.clock.Now())
		if err := f.Verify(ctx, bob.ID, code); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("Verify of a record moved to another user = %v, want ErrInvalidCode", err)
		}

		// Another key cannot open Ann's own record.
		other := newTestFactors(t, e)
		if err := other.Verify(ctx, ann.ID, code); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("Verify under another key = %v, want ErrInvalidCode", err)
		}
		if err := f.Verify(ctx, ann.ID, code); err != nil {
			t.Fatalf("Verify under the right key and user = %v", err)
		}
	})
}

func TestTOTPWithoutKey(t *testing.T) {
	e := newMiniEnv(t, nil)
	ctx := context.Background()
	u, _ := e.register(t, "eve@example.com", "correct horse battery")
	off := NewSecondFactors(e.store, nil, "", e.clock.Now, nil)
	if off.TOTPAvailable() {
		t.Fatal("TOTPAvailable without a key = true")
	}
	if _, _, err := off.BeginTOTP(ctx, u.ID, u.Email); !errors.Is(err, ErrTOTPUnavailable) {
		t.Fatalf("BeginTOTP without a key = %v, want ErrTOTPUnavailable", err)
	}
	if _, err := off.ConfirmTOTP(ctx, u.ID, "123456"); !errors.Is(err, ErrTOTPUnavailable) {
		t.Fatalf("ConfirmTOTP without a key = %v, want ErrTOTPUnavailable", err)
	}
	// Enrolled while a key was configured, then the key went away: TOTP
	// codes can no longer be checked, recovery codes still can.
	secret, codes := enrol(t, newTestFactors(t, e), u)
	e.clock.add(30 * time.Second)
	if err := off.Verify(ctx, u.ID, codeAt(t, secret, e.clock.Now())); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("Verify(totp) without a key = %v, want ErrInvalidCode", err)
	}
	if err := off.Verify(ctx, u.ID, codes[0]); err != nil {
		t.Fatalf("Verify(recovery) without a key = %v", err)
	}
	if err := off.DisableTOTP(ctx, u.ID, codes[1]); err != nil {
		t.Fatalf("DisableTOTP(recovery) without a key = %v", err)
	}
}

func TestSecondFactorsReset(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		f := newTestFactors(t, e)
		u, _ := e.register(t, "fay@example.com", "correct horse battery")
		enrol(t, f, u)
		if _, _, err := f.BeginTOTP(ctx, u.ID, u.Email); !errors.Is(err, ErrConflict) {
			t.Fatalf("BeginTOTP = %v, want ErrConflict", err)
		}
		if err := e.rdb.HSet(ctx, e.store.passkeysKey(u.ID), "x", "{}").Err(); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.Factors(ctx, u.ID); !slices.Equal(got, []string{FactorTOTP, FactorPasskey}) {
			t.Fatalf("Factors = %v, want [totp passkey]", got)
		}
		if err := f.Reset(ctx, u.ID); err != nil {
			t.Fatalf("Reset: %v", err)
		}
		if got, _ := f.Factors(ctx, u.ID); len(got) != 0 {
			t.Fatalf("Factors after Reset = %v, want []", got)
		}
		if keys := e.dump(t); containsKey(keys, ":totp") || containsKey(keys, ":passkeys") {
			t.Fatalf("second-factor keys left after Reset: %v", keys)
		}
		// The account and its session are not the Reset's to remove.
		if !containsKey(e.dump(t), "user:fay@example.com") {
			t.Fatal("Reset removed the account")
		}
	})
}

func TestQRCode(t *testing.T) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: "Gatehouse", AccountName: "qr@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	url := k.URL()
	b, err := QRCodePNG(url, 240)
	if err != nil {
		t.Fatalf("QRCodePNG: %v", err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width != 240 || cfg.Height != 240 {
		t.Fatalf("QR code = %+v, %v; want a 240x240 PNG", cfg, err)
	}
	d, err := QRCodeDataURL(url, 120)
	if err != nil || !strings.HasPrefix(string(d), "data:image/png;base64,") {
		t.Fatalf("QRCodeDataURL = %.40q, %v", d, err)
	}
	if _, err := QRCodePNG("https://example.com/", 100); err == nil {
		t.Fatal("QRCodePNG of a non-otpauth URL succeeded")
	}
}

// containsKey reports whether a line of a dump contains part.
func containsKey(lines []string, part string) bool {
	for _, l := range lines {
		if strings.Contains(l, part) {
			return true
		}
	}
	return false
}

package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestNormalizeEmail(t *testing.T) {
	ok := []struct{ in, want string }{
		{"ann@example.com", "ann@example.com"},
		{"  Ann@Example.COM\t\n", "ann@example.com"},
		{"a.b+tag@sub.example.co.uk", "a.b+tag@sub.example.co.uk"},
		{"root@localhost", "root@localhost"},
		{"o'brien@example.com", "o'brien@example.com"},
		{"JÖRG@bücher.example", "jörg@xn--bcher-kva.example"},
		{"jörg@xn--bcher-kva.example", "jörg@xn--bcher-kva.example"},
		{"Σ@example.com", "σ@example.com"},
		{"ς@example.com", "σ@example.com"},
		{"σ@example.com", "σ@example.com"},
		{"STRASSE@example.com", "strasse@example.com"},
		{"straße@example.com", "strasse@example.com"},
		{"ａｎｎ@ＥＸＡＭＰＬＥ.com", "ann@example.com"},         // full-width: NFKC
		{"ﬁ@example.com", "fi@example.com"},            // ligature: NFKC
		{"Ꭰ@example.com", "ꭰ@example.com"},             // Cherokee folds to capitals; stored lower
		{"ann@my_host.example", "ann@my_host.example"}, // kept for accounts made before IDNA
		{strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64) + "@example.com"},
	}
	for _, c := range ok {
		got, err := NormalizeEmail(c.in)
		if err != nil || got != c.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q, nil", c.in, got, err, c.want)
		}
	}
	bad := []string{
		"",
		"   ",
		"ann",
		"ann@",
		"@example.com",
		"ann@@example.com",
		"ann@b@example.com",
		"ann@example",
		"ann@.example.com",
		"ann@example..com",
		"ann@example.com.",
		"ann@-example.com",
		".ann@example.com",
		"ann.@example.com",
		"an..n@example.com",
		"an n@example.com",
		"ann@exa mple.com",
		"ann\x00@example.com",
		"ann\r\n@example.com",
		"ann\x7f@example.com",
		"\"ann\"@example.com",
		"ann<x>@example.com",
		"ann,bob@example.com",
		"ann;@example.com",
		"ann\\@example.com",
		"a\u200bnn@example.com", // zero-width space
		"a\u200dnn@example.com", // zero-width joiner
		"a\u2060nn@example.com", // word joiner
		"a\ufeffnn@example.com", // BOM
		"a\u202enn@example.com", // right-to-left override
		"a\u2066nn@example.com", // left-to-right isolate
		"a\u00adnn@example.com", // soft hyphen
		"a\u034fnn@example.com", // combining grapheme joiner
		"a\ufe0fnn@example.com", // variation selector
		"a\u3164nn@example.com", // Hangul filler
		"a\u00a0nn@example.com", // no-break space
		"a\u3000nn@example.com", // ideographic space
		"a\ue000nn@example.com", // private use
		"a\u2800nn@example.com", // braille pattern blank
		"ann@example\u3002com",  // ideographic full stop as a dot
		"ann@example\uff61com",  // half-width ideographic full stop
		"a\u2028nn@example.com", // line separator
		"a\u0085nn@example.com", // next line (C1 control)
		"a\u115fnn@example.com", // Hangul choseong filler
		"a\u00a8nn@example.com", // diaeresis: NFKC leaves a space and a combining mark
		"a\u2474nn@example.com", // parenthesized digit one: NFKC leaves "(1)"
		"ann\u2603@example.com", // snowman: a symbol
		"a\ufffdnn@example.com", // replacement character
		"ann@xn--zz.example",    // broken punycode
		"a\xffnn@example.com",   // invalid UTF-8
		"ann@example.com\U000e0041",
		strings.Repeat("a", 65) + "@example.com",
		"a@" + strings.Repeat("b", 250) + ".com",
	}
	for _, in := range bad {
		if got, err := NormalizeEmail(in); !errors.Is(err, ErrInvalidEmail) {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want ErrInvalidEmail", in, got, err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	cases := []struct {
		name string
		pw   string
		min  int
		ok   bool
	}{
		{"empty", "", 0, false},
		{"short", "1234567", 8, false},
		{"min", "12345678", 8, true},
		{"runes not bytes", "ééééééé", 8, false}, // 7 characters, 14 bytes
		{"runes count", "éééééééé", 8, true},
		{"72 bytes", strings.Repeat("a", 72), 8, true},
		{"73 bytes", strings.Repeat("a", 73), 8, false},
		{"25 euros is 75 bytes", strings.Repeat("€", 25), 8, false},
		{"24 euros is 72 bytes", strings.Repeat("€", 24), 8, true},
	}
	for _, c := range cases {
		err := checkPassword(c.pw, c.min)
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, ErrWeakPassword)) {
			t.Errorf("%s: checkPassword = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestEmailDomainAllowed(t *testing.T) {
	allowed := []string{"example.com", " @Corp.Example ", ".partner.example"}
	cases := map[string]bool{
		"a@example.com":        true,
		"a@corp.example":       true,
		"a@x.partner.example":  true,
		"a@partner.example":    false,
		"a@sub.example.com":    false,
		"a@example.com.evil":   false,
		"a@evilexample.com":    false,
		"a@xpartner.example":   false,
		"a@partner.example.io": false,
	}
	for email, want := range cases {
		if got := emailDomainAllowed(email, allowed); got != want {
			t.Errorf("emailDomainAllowed(%q) = %v, want %v", email, got, want)
		}
	}
	if !emailDomainAllowed("a@anything.example", nil) {
		t.Error("an empty list must allow any domain")
	}
}

// TestStoreUserUpdatesCheckTheRecord: deleteUser and replaceUserHash only
// touch the account they were given (same id; same hash for the rehash).
func TestStoreUserUpdatesCheckTheRecord(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.register(t, "ann@example.com", "password1")
		rec, err := e.store.getUser(ctx, "ann@example.com")
		if err != nil {
			t.Fatal(err)
		}
		unchanged := func(what string) {
			t.Helper()
			if got, err := e.store.getUser(ctx, "ann@example.com"); err != nil || *got != *rec {
				t.Errorf("%s: account = %+v, %v; want it unchanged", what, got, err)
			}
		}

		other := strings.Repeat("0", 32)
		if err := e.store.deleteUser(ctx, "ann@example.com", other); err != ErrUserNotFound {
			t.Errorf("deleteUser(other id) = %v, want ErrUserNotFound", err)
		}
		unchanged("deleteUser(other id)")

		stale := *rec
		stale.Hash = "$2a$04$stale"
		if err := e.store.replaceUserHash(ctx, &stale, "$2a$05$new"); err != nil {
			t.Errorf("replaceUserHash(stale hash) = %v, want nil", err)
		}
		unchanged("replaceUserHash(stale hash)")
		stale = *rec
		stale.ID = other
		if err := e.store.replaceUserHash(ctx, &stale, "$2a$05$new"); err != nil {
			t.Errorf("replaceUserHash(other id) = %v, want nil", err)
		}
		unchanged("replaceUserHash(other id)")
		gone := *rec
		gone.Email = "nobody@example.com"
		if err := e.store.replaceUserHash(ctx, &gone, "$2a$05$new"); err != nil {
			t.Errorf("replaceUserHash(no account) = %v, want nil", err)
		}
		if _, err := e.store.getUser(ctx, "nobody@example.com"); err != ErrUserNotFound {
			t.Errorf("replaceUserHash created an account: %v", err)
		}

		if err := e.store.replaceUserHash(ctx, rec, "$2a$05$new"); err != nil {
			t.Fatalf("replaceUserHash: %v", err)
		}
		if got, err := e.store.getUser(ctx, "ann@example.com"); err != nil || got.Hash != "$2a$05$new" || got.ID != rec.ID {
			t.Errorf("account after replaceUserHash = %+v, %v", got, err)
		}
		if err := e.store.deleteUser(ctx, "ann@example.com", rec.ID); err != nil {
			t.Errorf("deleteUser: %v", err)
		}
		if err := e.store.deleteUser(ctx, "ann@example.com", rec.ID); err != ErrUserNotFound {
			t.Errorf("deleteUser again = %v, want ErrUserNotFound", err)
		}
	})
}

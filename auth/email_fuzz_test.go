package auth

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNormalizeEmail checks the normaliser's properties on any input: it
// never panics, it either refuses with ErrInvalidEmail or returns valid
// UTF-8 that is lower case, has exactly one "@", fits the length limits,
// and is its own normal form (idempotent). The seed corpus is in
// testdata/fuzz/FuzzNormalizeEmail.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"ann@example.com", "  Ann@Example.COM\t", "σ@x.com", "ς@x.com", "Σ@x.com",
		"JÖRG@bücher.example", "a\u2800b@x.com", "ann@example\u3002com", "ａｎｎ@example.com",
		"straße@x.com", "Ꭰ@x.com", "İ@x.com", "ann@xn--bcher-kva.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeEmail(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidEmail) || out != "" {
				t.Fatalf("NormalizeEmail(%q) = %q, %v; want \"\", ErrInvalidEmail", in, out, err)
			}
			return
		}
		if !utf8.ValidString(out) {
			t.Fatalf("NormalizeEmail(%q) = %q: invalid UTF-8", in, out)
		}
		if strings.ToLower(out) != out {
			t.Fatalf("NormalizeEmail(%q) = %q: not lower case", in, out)
		}
		at := strings.IndexByte(out, '@')
		if at <= 0 || strings.Count(out, "@") != 1 || at > maxLocalBytes || len(out) > maxEmailBytes {
			t.Fatalf("NormalizeEmail(%q) = %q: not one local part and one domain within the limits", in, out)
		}
		again, err := NormalizeEmail(out)
		if err != nil || again != out {
			t.Fatalf("NormalizeEmail(%q) = %q, but NormalizeEmail(%q) = %q, %v: not idempotent", in, out, out, again, err)
		}
	})
}

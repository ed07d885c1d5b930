package auth

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var tokenShape = regexp.MustCompile(`^gh1\.[0-9a-f]{32}\.[1-9][0-9]*\.[A-Za-z0-9_-]{43}$`)

// TestTokenShapeAndUniqueness makes 10k tokens: all distinct, all of the
// documented shape, each carrying 32 random bytes, its user id and its end.
func TestTokenShapeAndUniqueness(t *testing.T) {
	const n = 10000
	end := time.Unix(1893456000, 0) // 2030-01-01
	seen := make(map[string]bool, n)
	secrets := make(map[string]bool, n)
	for range n {
		id, err := newUserID()
		if err != nil {
			t.Fatal(err)
		}
		if !isUserID(id) {
			t.Fatalf("newUserID = %q, want 32 lower-case hex", id)
		}
		tok, err := newToken(id, end)
		if err != nil {
			t.Fatal(err)
		}
		if !tokenShape.MatchString(tok) {
			t.Fatalf("token %q does not have the documented shape", tok)
		}
		if seen[tok] {
			t.Fatalf("duplicate token %q", tok)
		}
		seen[tok] = true
		secret := tok[strings.LastIndexByte(tok, '.')+1:]
		raw, err := base64.RawURLEncoding.DecodeString(secret)
		if err != nil || len(raw) != 32 {
			t.Fatalf("secret %q decodes to %d bytes (%v), want 32", secret, len(raw), err)
		}
		if secrets[secret] {
			t.Fatalf("duplicate secret %q", secret)
		}
		secrets[secret] = true
		gotID, gotEnd, ok := parseToken(tok)
		if !ok || gotID != id || gotEnd != end.Unix() {
			t.Fatalf("parseToken(%q) = %q, %d, %v; want %q, %d, true", tok, gotID, gotEnd, ok, id, end.Unix())
		}
	}
}

func TestParseTokenRejects(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 2)
	secret := strings.Repeat("A", 43)
	good := "gh1." + id + ".1893456000." + secret
	if _, _, ok := parseToken(good); !ok {
		t.Fatalf("parseToken(%q) refused a well-formed token", good)
	}
	bad := map[string]string{
		"empty":            "",
		"other version":    "gh2." + id + ".1893456000." + secret,
		"upper-case id":    "gh1." + strings.ToUpper(id) + ".1893456000." + secret,
		"short id":         "gh1." + id[1:] + ".1893456000." + secret,
		"long id":          "gh1." + id + "0.1893456000." + secret,
		"no end":           "gh1." + id + ".." + secret,
		"leading zero end": "gh1." + id + ".01893456000." + secret,
		"negative end":     "gh1." + id + ".-1893456000." + secret,
		"hex end":          "gh1." + id + ".1f." + secret,
		"huge end":         "gh1." + id + "." + strings.Repeat("9", 13) + "." + secret,
		"short secret":     "gh1." + id + ".1893456000." + secret[1:],
		"long secret":      "gh1." + id + ".1893456000." + secret + "A",
		"padded secret":    "gh1." + id + ".1893456000." + secret[2:] + "==",
		"std base64":       "gh1." + id + ".1893456000." + secret[1:] + "+",
		"space":            "gh1." + id + ".1893456000." + secret[1:] + " ",
		"trailing dot":     good + ".",
		"cookie splice":    "gh1." + id + ".1893456000;" + secret,
		"bearer jwt":       "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
		"huge":             strings.Repeat("A", 1<<16),
	}
	for name, tok := range bad {
		if _, _, ok := parseToken(tok); ok {
			t.Errorf("%s: parseToken(%q) accepted", name, tok)
		}
	}
}

func TestParseTokenAllocations(t *testing.T) {
	tok, err := newToken(strings.Repeat("a", 32), time.Unix(1893456000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { parseToken(tok) }); n != 0 {
		t.Errorf("parseToken allocates %v times, want 0 (it runs for every Bearer header)", n)
	}
}

func FuzzParseToken(f *testing.F) {
	tok, _ := newToken(strings.Repeat("a", 32), time.Unix(1893456000, 0))
	f.Add(tok)
	f.Add("gh1.")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, end, ok := parseToken(s)
		if !ok {
			return
		}
		// Whatever parses must be exactly what newToken would write.
		if !tokenShape.MatchString(s) {
			t.Fatalf("parseToken accepted %q, which is not of the token shape", s)
		}
		want := "gh1." + id + "." + strconv.FormatInt(end, 10) + "."
		if !strings.HasPrefix(s, want) {
			t.Fatalf("parseToken(%q) = %q, %d: does not round-trip", s, id, end)
		}
	})
}

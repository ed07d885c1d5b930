package credential

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func tok(prefix, c string) string {
	return prefix + "0123456789abcdef0123456789abcdef.9999999999." + strings.Repeat(c, SecretLen)
}

var (
	tokA   = tok(SessionPrefix, "A")
	tokB   = tok(SessionPrefix, "B")
	apiTok = tok(APITokenPrefix, "C")
)

// TestRead pins the one rule by which the proxy, forward-auth and the
// gateway's own endpoints read a request's credential.
func TestRead(t *testing.T) {
	const name = "gatehouse_session"
	tests := []struct {
		name string
		h    http.Header
		want Found
		all  []string
	}{
		{"none", http.Header{}, Found{}, nil},
		{"cookie", http.Header{"Cookie": {"a=1; gatehouse_session=" + tokA}}, Found{Token: tokA, Kind: Session, FromCookie: true, Cookie: true}, []string{tokA}},
		{"tossed empty cookie first", http.Header{"Cookie": {"gatehouse_session=; gatehouse_session=" + tokA}}, Found{Token: tokA, Kind: Session, FromCookie: true, Cookie: true}, []string{tokA}},
		{"empty cookie line first", http.Header{"Cookie": {"gatehouse_session=", "gatehouse_session=" + tokA}}, Found{Token: tokA, Kind: Session, FromCookie: true, Cookie: true}, []string{tokA}},
		{"quoted cookie", http.Header{"Cookie": {`gatehouse_session="` + tokA + `"`}}, Found{Token: tokA, Kind: Session, FromCookie: true, Cookie: true}, []string{tokA}},
		{"same cookie twice", http.Header{"Cookie": {"gatehouse_session=" + tokA + "; gatehouse_session=" + tokA}}, Found{Token: tokA, Kind: Session, FromCookie: true, Cookie: true}, []string{tokA}},
		// A sibling subdomain tossed a second cookie in: neither counts.
		{"two different cookies", http.Header{"Cookie": {"gatehouse_session=" + tokA + "; gatehouse_session=" + tokB}}, Found{Cookie: true, Tossed: true}, []string{tokA, tokB}},
		{"garbage beside the real one", http.Header{"Cookie": {"gatehouse_session=garbage; gatehouse_session=" + tokA}}, Found{Cookie: true, Tossed: true}, []string{tokA}},
		{"tossed cookies and a bearer", http.Header{"Cookie": {"gatehouse_session=x; gatehouse_session=y"}, "Authorization": {"Bearer " + tokA}}, Found{Cookie: true, Tossed: true}, []string{tokA}},
		{"cookie not token-shaped", http.Header{"Cookie": {"gatehouse_session=junk"}}, Found{FromCookie: true, Cookie: true}, nil},
		{"API token as the cookie", http.Header{"Cookie": {"gatehouse_session=" + apiTok}}, Found{FromCookie: true, Cookie: true}, []string{apiTok}},
		{"only empty cookies", http.Header{"Cookie": {`gatehouse_session=; gatehouse_session=""`}}, Found{}, nil},
		{"bearer", http.Header{"Authorization": {"Bearer " + tokA}}, Found{Token: tokA, Kind: Session, Bearer: true}, []string{tokA}},
		{"API token bearer", http.Header{"Authorization": {"Bearer " + apiTok}}, Found{Token: apiTok, Kind: APIToken, Bearer: true}, []string{apiTok}},
		{"bearer scheme case", http.Header{"Authorization": {"bEARER " + tokA}}, Found{Token: tokA, Kind: Session, Bearer: true}, []string{tokA}},
		{"foreign bearer first", http.Header{"Authorization": {"Bearer eyJ.x.y", "Bearer " + tokA}}, Found{Token: tokA, Kind: Session, Bearer: true}, []string{tokA}},
		{"truncated token", http.Header{"Authorization": {"Bearer " + tokA[:len(tokA)-1]}}, Found{}, nil},
		{"other prefix shape", http.Header{"Authorization": {"Bearer ght2." + tokA[4:]}}, Found{}, nil},
		{"cookie wins over bearer", http.Header{"Cookie": {"gatehouse_session=" + tokB}, "Authorization": {"Bearer " + tokA}}, Found{Token: tokB, Kind: Session, FromCookie: true, Cookie: true, Bearer: true}, []string{tokB, tokA}},
		{"stale cookie hides bearer", http.Header{"Cookie": {"gatehouse_session=junk"}, "Authorization": {"Bearer " + tokA}}, Found{FromCookie: true, Cookie: true, Bearer: true}, []string{tokA}},
		{"other cookie name", http.Header{"Cookie": {"gatehouse_session2=" + tokA}}, Found{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Read(tc.h, name); got != tc.want {
				t.Errorf("Read = %+v, want %+v", got, tc.want)
			}
			if got := All(tc.h, name, nil, 8); !slices.Equal(got, tc.all) {
				t.Errorf("All = %q, want %q", got, tc.all)
			}
		})
	}
}

func TestAllIsBounded(t *testing.T) {
	var b strings.Builder
	for i := range 550 {
		b.WriteString("gatehouse_session=" + tok(SessionPrefix, string(rune('A'+i%26)))[:len(tokA)-2] + string(rune('a'+i/26%26)) + string(rune('a'+i%26)) + "; ")
	}
	h := http.Header{"Cookie": {b.String()}}
	if got := len(All(h, "gatehouse_session", nil, 8)); got != 8 {
		t.Errorf("All kept %d tokens, want the bound 8", got)
	}
}

func TestReadAllocs(t *testing.T) {
	h := http.Header{"Cookie": {"theme=dark; gatehouse_session=" + tokA}, "Authorization": {"Bearer " + tokB}}
	if n := testing.AllocsPerRun(100, func() { Read(h, "gatehouse_session") }); n != 0 {
		t.Errorf("Read allocates %v times, want 0 (it runs on every request)", n)
	}
}

func TestStripTokens(t *testing.T) {
	tests := []struct {
		name       string
		h          http.Header
		cookie     []string
		authorized []string
	}{
		{"session cookie", http.Header{"Cookie": {"a=1; gatehouse_session=" + tokA + "; b=2"}}, []string{"a=1; b=2"}, nil},
		{"renamed cookie holding a token", http.Header{"Cookie": {"old_session=" + tokA + "; theme=dark"}}, []string{"theme=dark"}, nil},
		{"API token in any cookie", http.Header{"Cookie": {"x=" + apiTok}}, nil, nil},
		{"garbage session cookie", http.Header{"Cookie": {"gatehouse_session=junk", "k=v"}}, []string{"k=v"}, nil},
		{"untouched", http.Header{"Cookie": {"a=1; b=2"}}, []string{"a=1; b=2"}, nil},
		// What a lenient parser upstream (Node, Python, PHP, Rack) would
		// still read as the token.
		{"token after a blank", http.Header{"Cookie": {"a= " + tokA + "; k=v"}}, []string{"k=v"}, nil},
		{"token after a tab", http.Header{"Cookie": {"a=\t" + tokA, "k=v"}}, []string{"k=v"}, nil},
		{"quoted token with blanks", http.Header{"Cookie": {`a=" ` + apiTok + ` "; k=v`}}, []string{"k=v"}, nil},
		{"percent-encoded token", http.Header{"Cookie": {"a=" + strings.ReplaceAll(tokA, ".", "%2E") + "; k=v"}}, []string{"k=v"}, nil},
		{"plus before a token", http.Header{"Cookie": {"a=+" + apiTok + "; k=v"}}, []string{"k=v"}, nil},
		{"percent, not a token", http.Header{"Cookie": {"a=50%25; b=x+y"}}, []string{"a=50%25; b=x+y"}, nil},
		{"bearers", http.Header{"Authorization": {"Bearer " + apiTok, "Bearer foreign", "Basic x"}}, nil, []string{"Bearer foreign", "Basic x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			StripTokens(tc.h, "gatehouse_session")
			if got := tc.h["Cookie"]; !slices.Equal(got, tc.cookie) {
				t.Errorf("Cookie = %q, want %q", got, tc.cookie)
			}
			if got := tc.h["Authorization"]; !slices.Equal(got, tc.authorized) {
				t.Errorf("Authorization = %q, want %q", got, tc.authorized)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		tok  string
		kind Kind
	}{
		{tokA, Session}, {apiTok, APIToken}, {"gh1.x", NotAToken}, {tokA + "x", NotAToken},
		{strings.Replace(tokA, ".9999999999.", ".0999999999.", 1), NotAToken}, {strings.Replace(tokA, "0123", "ABCD", 1), NotAToken},
		{strings.Repeat("a", MaxTokenLen+1), NotAToken},
	} {
		if k, _, _, _ := Parse(tc.tok); k != tc.kind {
			t.Errorf("Parse(%q) kind = %d, want %d", tc.tok, k, tc.kind)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Parse(apiTok) }); n != 0 {
		t.Errorf("Parse allocates %v times", n)
	}
}

func TestIdentityGroups(t *testing.T) {
	id := Identity{Groups: "admins,dev-ops,ops"}
	for g, want := range map[string]bool{"admins": true, "ops": true, "dev-ops": true, "dev": false, "admin": false, "": false} {
		if got := id.InGroup(g); got != want {
			t.Errorf("InGroup(%q) = %v, want %v", g, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { id.InGroup("ops") }); n != 0 {
		t.Errorf("InGroup allocates %v times", n)
	}
}

func TestAMR(t *testing.T) {
	for _, tc := range []struct {
		id   Identity
		want string
	}{
		{Identity{Method: MethodPassword}, "pwd"},
		{Identity{Method: MethodPassword, MFA: true, SecondFactor: FactorOTP}, "pwd,otp"},
		{Identity{Method: MethodPassword, MFA: true, SecondFactor: FactorHardwareKey}, "pwd,hwk"},
		{Identity{Method: MethodPasskey, MFA: true, SecondFactor: FactorHardwareKey}, "hwk"},
		{Identity{Method: MethodToken}, "tok"},
	} {
		if got := strings.Join(tc.id.AMR(), ","); got != tc.want {
			t.Errorf("AMR(%+v) = %s, want %s", tc.id, got, tc.want)
		}
	}
}

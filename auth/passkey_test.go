package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
)

func TestNewRelyingPartyRefuses(t *testing.T) {
	tests := []struct {
		name    string
		rpID    string
		origins []string
	}{
		{"empty rp id", "", nil},
		{"IP rp id", "127.0.0.1", nil},
		{"rp id with a scheme", "https://example.com", nil},
		{"rp id with a port", "example.com:443", nil},
		{"origin without scheme", "example.com", []string{"example.com"}},
		{"origin with another scheme", "example.com", []string{"ftp://example.com"}},
		{"origin with a path", "example.com", []string{"https://example.com/app"}},
		{"origin with a query", "example.com", []string{"https://example.com?x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewRelyingParty(tc.rpID, tc.origins); err == nil {
				t.Fatalf("NewRelyingParty(%q, %q) succeeded, want an error", tc.rpID, tc.origins)
			}
		})
	}
	for _, ok := range []struct {
		rpID    string
		origins []string
	}{{"localhost", nil}, {"example.com", []string{"https://example.com", "https://app.example.com:8443/"}}} {
		if _, err := NewRelyingParty(ok.rpID, ok.origins); err != nil {
			t.Errorf("NewRelyingParty(%q, %q) = %v", ok.rpID, ok.origins, err)
		}
	}
}

func TestRelyingPartyRequestOrigin(t *testing.T) {
	rp, err := NewRelyingParty("example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		origin string
		ok     bool
	}{
		{"https://example.com", true},
		{"https://app.example.com:8443", true},
		{"http://example.com/", true},
		{"https://evilexample.com", false},
		{"https://example.com.evil.net", false},
		{"https://127.0.0.1", false},
		{"https://example.com/path", false},
		{"javascript:alert(1)", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(tc.origin, func(t *testing.T) {
			wa, bound, err := rp.begin(tc.origin)
			if !tc.ok {
				if !errors.Is(err, ErrPasskeysUnavailable) {
					t.Fatalf("begin(%q) = %v, want ErrPasskeysUnavailable", tc.origin, err)
				}
				return
			}
			if err != nil || bound != strings.TrimSuffix(tc.origin, "/") || !slices.Equal(wa.Config.RPOrigins, []string{bound}) {
				t.Fatalf("begin(%q) = %v, %q, %v; want a relying party bound to it", tc.origin, wa, bound, err)
			}
		})
	}
	fixed, err := NewRelyingParty("example.com", []string{"https://auth.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	// Configured origins: the request's origin is not consulted.
	if wa, bound, err := fixed.begin("https://evil.example.net"); err != nil || bound != "" || !slices.Equal(wa.Config.RPOrigins, []string{"https://auth.example.com"}) {
		t.Fatalf("fixed begin = %v, %q, %v; want the configured origins, unbound", wa, bound, err)
	}
}

func TestPasskeyName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"YubiKey 5", "YubiKey 5"},
		{"  spaced \t  out  ", "spaced out"},
		{"", "Passkey"},
		{"\u200b\u202e", "Passkey"},
		{"a\x00b\nc", "abc"},
		{strings.Repeat("é", 100), strings.Repeat("é", 64)},
	}
	for _, tc := range tests {
		if got := passkeyName(tc.in); got != tc.want {
			t.Errorf("passkeyName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// newPasskeyFactors is SecondFactors for passkeys on e with rp id
// example.com and origin https://example.com.
func newPasskeyFactors(t testing.TB, e *testEnv) *SecondFactors {
	t.Helper()
	rp, err := NewRelyingParty("example.com", []string{"https://example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return NewSecondFactors(e.store, nil, "", e.clock.Now, rp)
}

// addTestPasskey stores a passkey record for u as a registration would.
func addTestPasskey(t testing.TB, e *testEnv, u User, id string, signCount uint32) {
	t.Helper()
	rec := &passkeyRecord{
		Credential: webauthn.Credential{ID: []byte(id), PublicKey: []byte("not a key"), Authenticator: webauthn.Authenticator{SignCount: signCount}},
		Name:       "key " + id, Email: u.Email, Created: e.clock.Now().UTC(),
	}
	if err := e.store.addPasskey(context.Background(), u.ID, rec); err != nil {
		t.Fatalf("addPasskey: %v", err)
	}
}

func TestPasskeyOptions(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		f := newPasskeyFactors(t, e)
		u, _ := e.register(t, "gil@example.com", "correct horse battery")
		addTestPasskey(t, e, u, "existing", 0)

		opts, state, err := f.BeginPasskeyRegistration(ctx, "https://example.com", u.ID, u.Email)
		if err != nil {
			t.Fatalf("BeginPasskeyRegistration: %v", err)
		}
		var reg struct {
			PublicKey struct {
				RP   struct{ ID string } `json:"rp"`
				User struct {
					ID, Name string
				} `json:"user"`
				Challenge              string `json:"challenge"`
				AuthenticatorSelection struct {
					ResidentKey      string `json:"residentKey"`
					UserVerification string `json:"userVerification"`
				} `json:"authenticatorSelection"`
				ExcludeCredentials []struct{ ID string } `json:"excludeCredentials"`
			} `json:"publicKey"`
		}
		if err := json.Unmarshal(opts, &reg); err != nil {
			t.Fatalf("registration options %s: %v", opts, err)
		}
		pk := reg.PublicKey
		if pk.RP.ID != "example.com" || pk.User.ID != base64.RawURLEncoding.EncodeToString([]byte(u.ID)) || pk.User.Name != u.Email ||
			pk.AuthenticatorSelection.ResidentKey != "required" || pk.AuthenticatorSelection.UserVerification != "required" ||
			len(pk.ExcludeCredentials) != 1 || pk.ExcludeCredentials[0].ID != credentialField([]byte("existing")) || len(pk.Challenge) < 22 {
			t.Fatalf("registration options = %s", opts)
		}
		if !isStateID(state) {
			t.Fatalf("state id %q", state)
		}
		if ttl := e.rdb.PTTL(ctx, e.store.ceremonyKey(state)).Val(); ttl <= 0 || ttl > CeremonyTTL {
			t.Fatalf("ceremony state TTL %v, want within (0, %v]", ttl, CeremonyTTL)
		}

		opts, _, err = f.BeginPasskeyLogin(ctx, "https://example.com")
		if err != nil {
			t.Fatalf("BeginPasskeyLogin: %v", err)
		}
		var login struct {
			PublicKey map[string]any `json:"publicKey"`
		}
		if err := json.Unmarshal(opts, &login); err != nil {
			t.Fatal(err)
		}
		if _, ok := login.PublicKey["allowCredentials"]; ok || login.PublicKey["userVerification"] != "required" || login.PublicKey["rpId"] != "example.com" {
			t.Fatalf("login options = %s; want no allowCredentials and user verification required", opts)
		}

		opts, _, err = f.BeginPasskeySecondFactor(ctx, "https://example.com", u.ID)
		if err != nil {
			t.Fatalf("BeginPasskeySecondFactor: %v", err)
		}
		if !strings.Contains(string(opts), `"allowCredentials":[{"type":"public-key","id":"`+credentialField([]byte("existing"))+`"`) {
			t.Fatalf("second-factor options = %s; want the user's passkey allowed", opts)
		}
		other, _ := e.register(t, "hal@example.com", "correct horse battery")
		if _, _, err := f.BeginPasskeySecondFactor(ctx, "https://example.com", other.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("BeginPasskeySecondFactor without passkeys = %v, want ErrNotFound", err)
		}
	})
}

func TestPasskeyCeremonyState(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		f := newPasskeyFactors(t, e)
		u, _ := e.register(t, "ida@example.com", "correct horse battery")
		addTestPasskey(t, e, u, "k1", 0)
		begin := func(kind string) string {
			var state string
			var err error
			switch kind {
			case ceremonyLogin:
				_, state, err = f.BeginPasskeyLogin(ctx, "https://example.com")
			case ceremonyRegister:
				_, state, err = f.BeginPasskeyRegistration(ctx, "https://example.com", u.ID, u.Email)
			default:
				_, state, err = f.BeginPasskeySecondFactor(ctx, "https://example.com", u.ID)
			}
			if err != nil {
				t.Fatalf("begin %s: %v", kind, err)
			}
			return state
		}
		finish := map[string]func(state string) error{
			ceremonyLogin: func(s string) error { _, _, err := f.FinishPasskeyLogin(ctx, s, []byte(`{}`)); return err },
			ceremonyRegister: func(s string) error {
				_, err := f.FinishPasskeyRegistration(ctx, u.ID, u.Email, "", s, []byte(`{}`))
				return err
			},
			ceremonySecondFactor: func(s string) error { return f.FinishPasskeySecondFactor(ctx, u.ID, s, []byte(`{}`)) },
		}
		kinds := []string{ceremonyLogin, ceremonyRegister, ceremonySecondFactor}
		for _, began := range kinds {
			for _, finished := range kinds {
				t.Run(began+" finished as "+finished, func(t *testing.T) {
					state := begin(began)
					if err := finish[finished](state); !errors.Is(err, ErrInvalidCode) {
						t.Fatalf("finish = %v, want ErrInvalidCode", err)
					}
					// Whatever the outcome, the state was taken.
					if n := e.rdb.Exists(ctx, e.store.ceremonyKey(state)).Val(); n != 0 {
						t.Fatal("the ceremony state outlived its finish")
					}
				})
			}
		}
		t.Run("another user's ceremony", func(t *testing.T) {
			state := begin(ceremonySecondFactor)
			other, _ := e.register(t, "jo@example.com", "correct horse battery")
			if err := f.FinishPasskeySecondFactor(ctx, other.ID, state, []byte(`{}`)); !errors.Is(err, ErrInvalidCode) {
				t.Fatalf("finish as another user = %v, want ErrInvalidCode", err)
			}
		})
		for _, bad := range []string{"", "short", strings.Repeat("a", 42) + "!", "../../user:ida@example.com"} {
			if _, _, err := f.FinishPasskeyLogin(ctx, bad, []byte(`{}`)); !errors.Is(err, ErrInvalidCode) {
				t.Errorf("FinishPasskeyLogin(state %q) = %v, want ErrInvalidCode", bad, err)
			}
		}
	})
}

func TestPasskeyCeremonyExpires(t *testing.T) {
	e := newMiniEnv(t, nil)
	ctx := context.Background()
	f := newPasskeyFactors(t, e)
	_, state, err := f.BeginPasskeyLogin(ctx, "https://example.com")
	if err != nil {
		t.Fatal(err)
	}
	e.advance(CeremonyTTL + time.Second)
	if _, _, err := f.FinishPasskeyLogin(ctx, state, []byte(`{}`)); !errors.Is(err, ErrInvalidCode) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("FinishPasskeyLogin after %v = %v, want ErrInvalidCode (expired)", CeremonyTTL, err)
	}
}

func TestPasskeysUnavailable(t *testing.T) {
	e := newMiniEnv(t, nil)
	ctx := context.Background()
	f := NewSecondFactors(e.store, nil, "", nil, nil)
	if f.PasskeysAvailable() {
		t.Fatal("PasskeysAvailable without a relying party")
	}
	if _, _, err := f.BeginPasskeyLogin(ctx, "https://example.com"); !errors.Is(err, ErrPasskeysUnavailable) {
		t.Fatalf("BeginPasskeyLogin = %v, want ErrPasskeysUnavailable", err)
	}
	if err := f.FinishPasskeySecondFactor(ctx, "x", "y", nil); !errors.Is(err, ErrPasskeysUnavailable) {
		t.Fatalf("FinishPasskeySecondFactor = %v, want ErrPasskeysUnavailable", err)
	}
}

func TestPasskeyListAndRemove(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		f := newPasskeyFactors(t, e)
		ann, _ := e.register(t, "ann@example.com", "correct horse battery")
		bob, _ := e.register(t, "bob@example.com", "correct horse battery")
		addTestPasskey(t, e, ann, "first", 0)
		e.clock.add(time.Second)
		addTestPasskey(t, e, ann, "second", 0)
		addTestPasskey(t, e, bob, "bobs", 0)
		if err := e.store.addPasskey(ctx, ann.ID, &passkeyRecord{Credential: webauthn.Credential{ID: []byte("first")}}); !errors.Is(err, ErrConflict) {
			t.Fatalf("adding a registered credential again = %v, want ErrConflict", err)
		}

		keys, err := f.ListPasskeys(ctx, ann.ID)
		if err != nil || len(keys) != 2 || keys[0].Name != "key first" || keys[1].Name != "key second" {
			t.Fatalf("ListPasskeys = %+v, %v; want first and second, oldest first", keys, err)
		}
		bobs := credentialField([]byte("bobs"))
		tests := []struct {
			name     string
			user, id string
			want     error
		}{
			{"another user's passkey", ann.ID, bobs, ErrNotFound},
			{"unknown id", ann.ID, "nope", ErrNotFound},
			{"empty id", ann.ID, "", ErrNotFound},
			{"own passkey", ann.ID, keys[0].ID, nil},
			{"own passkey again", ann.ID, keys[0].ID, ErrNotFound},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if err := f.RemovePasskey(ctx, tc.user, tc.id); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
					t.Fatalf("RemovePasskey = %v, want %v", err, tc.want)
				}
			})
		}
		if got, _ := f.Factors(ctx, bob.ID); !slices.Equal(got, []string{FactorPasskey}) {
			t.Fatalf("Bob's factors = %v, want [passkey]: his passkey must survive Ann's removals", got)
		}
	})
}

func TestPasskeySignCount(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u, _ := e.register(t, "kim@example.com", "correct horse battery")
		addTestPasskey(t, e, u, "counted", 5)
		addTestPasskey(t, e, u, "uncounted", 0)
		tests := []struct {
			name  string
			id    string
			count uint32
			ok    bool
		}{
			{"same count (a clone, or a replica raced)", "counted", 5, false},
			{"lower count", "counted", 4, false},
			{"higher count", "counted", 6, true},
			{"the same higher count again", "counted", 6, false},
			{"no counter kept", "uncounted", 0, true},
			{"no counter kept, again", "uncounted", 0, true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				cred := &webauthn.Credential{ID: []byte(tc.id), Authenticator: webauthn.Authenticator{SignCount: tc.count}}
				err := e.store.usePasskey(ctx, u.ID, cred, e.clock.Now())
				if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidCode)) {
					t.Fatalf("usePasskey(count %d) = %v, want ok %v", tc.count, err, tc.ok)
				}
			})
		}
		f := newPasskeyFactors(t, e)
		clone := &webauthn.Credential{ID: []byte("counted"), Authenticator: webauthn.Authenticator{SignCount: 7, CloneWarning: true}}
		if err := f.recordUse(ctx, u.ID, clone); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("recordUse with a clone warning = %v, want ErrInvalidCode", err)
		}
	})
}

func TestScriptHandler(t *testing.T) {
	srv := httptest.NewServer(ScriptHandler())
	t.Cleanup(srv.Close)
	tests := []struct {
		method, inm string
		status      int
	}{
		{"GET", "", 200},
		{"HEAD", "", 200},
		{"GET", scriptETag, 304},
		{"POST", "", 405},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.inm, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+"/account/gatehouse.js", nil)
			if tc.inm != "" {
				req.Header.Set("If-None-Match", tc.inm)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.status != 200 {
				return
			}
			h := res.Header
			if h.Get("Content-Type") != "text/javascript; charset=utf-8" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("ETag") != scriptETag {
				t.Fatalf("headers %v", h)
			}
			if tc.method == "GET" && !strings.Contains(string(body), "navigator.credentials.create") {
				t.Fatal("body is not gatehouse.js")
			}
		})
	}
}

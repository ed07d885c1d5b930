package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// TestSigmaIsOneAccount: "σ", "ς" and "Σ" fold to one letter, so they
// name one account (strings.ToLower made "σ@" and "ς@" two).
func TestSigmaIsOneAccount(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u, _ := e.register(t, "σ@example.com", "password1")
		for _, spelling := range []string{"ς@example.com", "Σ@EXAMPLE.COM"} {
			if _, _, err := e.svc.Register(ctx, spelling, "password2"); !errors.Is(err, ErrEmailTaken) {
				t.Errorf("Register(%q) = %v, want ErrEmailTaken", spelling, err)
			}
			got, _, err := e.svc.Login(ctx, spelling, "password1", "192.0.2.1", "")
			if err != nil || got != u {
				t.Errorf("Login(%q) = %+v, %v; want %+v", spelling, got, err, u)
			}
		}
	})
}

// TestInvalidEmailOverHTTP: blanks, the ideographic full stop and
// compatibility forms that NFKC leaves outside IdentifierClass are 400
// invalid_email at registration and at login.
func TestInvalidEmailOverHTTP(t *testing.T) {
	g := newTestGateway(t, nil)
	for _, email := range []string{
		"a\u2800nn@example.com", // braille pattern blank
		"ann@example\u3002com",  // ideographic full stop as the dot
		"a\u00a8nn@example.com", // diaeresis: NFKC leaves a space
		"ann\u3000@example.com", // ideographic space
		"a\u200bnn@example.com", // zero-width space
		"ann\u0007@example.com", // a control
	} {
		for _, path := range []string{"/register", "/login"} {
			res := g.do(request{method: "POST", path: path, contentType: jsonType, body: credsJSON(email, "password1")})
			checkError(t, res, apierror.InvalidEmail)
		}
	}
}

// TestLegacyAccountMigrated: an account stored under the old
// normalisation (strings.ToLower), whose key the new one maps elsewhere,
// is found by the spelling its owner used, moved under the new key on
// that sign-in, and reachable by every spelling afterwards; its email
// cannot be registered a second time, before or after the move.
func TestLegacyAccountMigrated(t *testing.T) {
	cases := []struct{ typed, legacy, normal string }{
		{"ς@example.com", "ς@example.com", "σ@example.com"},
		{"Ann@Bücher.example", "ann@bücher.example", "ann@xn--bcher-kva.example"},
		{"straße@example.com", "straße@example.com", "strasse@example.com"},
	}
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		for _, c := range cases {
			hash, err := bcrypt.GenerateFromPassword([]byte("password1"), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := newUserID()
			old := userRecord{ID: id, Email: c.legacy, Hash: string(hash), Created: time.Now().UTC()}
			b, _ := json.Marshal(&old)
			// Written as the old code did: under strings.ToLower of the input.
			if err := e.rdb.Set(ctx, e.store.userKey(legacyEmailKey(c.typed)), b, 0).Err(); err != nil {
				t.Fatal(err)
			}
			if _, _, err := e.svc.Register(ctx, c.typed, "password2"); !errors.Is(err, ErrEmailTaken) {
				t.Errorf("%s: Register before the move = %v, want ErrEmailTaken", c.typed, err)
			}
			u, _, err := e.svc.Login(ctx, c.typed, "password1", "192.0.2.1", "")
			if err != nil || u.ID != id || u.Email != c.normal {
				t.Fatalf("%s: Login = %+v, %v; want id %s, email %s", c.typed, u, err, id, c.normal)
			}
			if n := e.rdb.Exists(ctx, e.store.userKey(c.legacy)).Val(); n != 0 {
				t.Errorf("%s: legacy key still there after the move", c.typed)
			}
			moved, err := e.store.getUser(ctx, c.normal)
			if err != nil || moved.ID != id || moved.Hash != string(hash) {
				t.Errorf("%s: new key = %+v, %v; want the same account", c.typed, moved, err)
			}
			if u2, _, err := e.svc.Login(ctx, c.normal, "password1", "192.0.2.1", ""); err != nil || u2.ID != id {
				t.Errorf("%s: Login by the new form = %+v, %v", c.typed, u2, err)
			}
			if _, _, err := e.svc.Register(ctx, c.typed, "password2"); !errors.Is(err, ErrEmailTaken) {
				t.Errorf("%s: Register after the move = %v, want ErrEmailTaken", c.typed, err)
			}
		}
	})
}

// TestLegacyAccountLosesToNewKey: when the new key already holds an
// account, a legacy record is never copied over it.
func TestLegacyAccountLosesToNewKey(t *testing.T) {
	e := newMiniEnv(t, nil)
	ctx := context.Background()
	u, _ := e.register(t, "σ@example.com", "password1")
	hash, _ := bcrypt.GenerateFromPassword([]byte("password9"), bcrypt.MinCost)
	id, _ := newUserID()
	b, _ := json.Marshal(&userRecord{ID: id, Email: "ς@example.com", Hash: string(hash), Created: time.Now().UTC()})
	if err := e.rdb.Set(ctx, e.store.userKey("ς@example.com"), b, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, _, err := e.svc.Login(ctx, "ς@example.com", "password1", "192.0.2.1", ""); err != nil || got != u {
		t.Errorf("Login = %+v, %v; want the account under the new key %+v", got, err, u)
	}
	if cur, err := e.store.getUser(ctx, "σ@example.com"); err != nil || cur.ID != u.ID {
		t.Errorf("new key = %+v, %v; want %s kept", cur, err, u.ID)
	}
}

// TestPasswordReplacementCharacter: a JSON password with a lone surrogate
// (which encoding/json turns into U+FFFD) or U+FFFD itself is 400
// weak_password at registration and at login; the bytes such a password
// would have been stored as never sign in.
func TestPasswordReplacementCharacter(t *testing.T) {
	g := newTestGateway(t, nil)
	g.register("ann@example.com", "password1")
	for _, pw := range []string{`"pass\ud800word1"`, `"pass\ufffdword1"`, `"password1\udfff"`} {
		for _, path := range []string{"/register", "/login"} {
			body := `{"email":"ann@example.com","password":` + pw + `}`
			if path == "/register" {
				body = `{"email":"bob@example.com","password":` + pw + `}`
			}
			res := g.do(request{method: "POST", path: path, contentType: jsonType, body: body})
			checkError(t, res, apierror.WeakPassword)
		}
	}
	res := g.do(request{method: "POST", path: "/login", contentType: formType, body: "email=ann%40example.com&password=pass%FFword1"})
	if res.status != http.StatusBadRequest {
		t.Errorf("form login with an invalid byte: status = %d, want 400", res.status)
	}
}

// TestMigrateEmails: the one pass over the keyspace moves every account
// whose key the new normalisation maps elsewhere, reports the ones it
// cannot move (a collision, an address now invalid), closes the gap where
// another spelling could register a second account, and moves nothing
// when run again.
func TestMigrateEmails(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		put := func(key string) string {
			t.Helper()
			hash, _ := bcrypt.GenerateFromPassword([]byte("password1"), bcrypt.MinCost)
			id, _ := newUserID()
			b, _ := json.Marshal(&userRecord{ID: id, Email: key, Hash: string(hash), Created: time.Now().UTC()})
			if err := e.rdb.Set(ctx, e.store.userKey(key), b, 0).Err(); err != nil {
				t.Fatal(err)
			}
			return id
		}
		sigma := put("ς@example.com")
		put("ann@bücher.example")
		kept, _ := e.register(t, "strasse@example.com", "password1")
		put("straße@example.com") // collides with the account above
		put("a\u2800b@example.com")
		e.register(t, "plain@example.com", "password1")

		m, err := e.svc.MigrateEmails(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Scanned < 6 || m.Moved != 2 || len(m.Collided) != 1 || m.Collided[0] != "straße@example.com" ||
			len(m.Invalid) != 1 || m.Invalid[0] != "a\u2800b@example.com" {
			t.Errorf("MigrateEmails = %+v; want at least 6 scanned, 2 moved, straße collided, the blank invalid", m)
		}
		if _, _, err := e.svc.Register(ctx, "σ@example.com", "password2"); !errors.Is(err, ErrEmailTaken) {
			t.Errorf("Register(σ) after the migration = %v, want ErrEmailTaken", err)
		}
		if u, _, err := e.svc.Login(ctx, "Σ@example.com", "password1", "192.0.2.1", ""); err != nil || u.ID != sigma {
			t.Errorf("Login(Σ) = %+v, %v; want the moved account %s", u, err, sigma)
		}
		if u, _, err := e.svc.Login(ctx, "ann@bücher.example", "password1", "192.0.2.1", ""); err != nil || u.Email != "ann@xn--bcher-kva.example" {
			t.Errorf("Login(bücher) = %+v, %v", u, err)
		}
		if u, _, err := e.svc.Login(ctx, "straße@example.com", "password1", "192.0.2.1", ""); err != nil || u.ID != kept.ID {
			t.Errorf("Login(straße) = %+v, %v; want the account under the new key %s", u, err, kept.ID)
		}
		again, err := e.svc.MigrateEmails(ctx)
		if err != nil || again.Moved != 0 {
			t.Errorf("second MigrateEmails = %+v, %v; want nothing moved", again, err)
		}
	})
}

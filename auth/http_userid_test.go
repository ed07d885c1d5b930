package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

// The documented request log carries the user id when it is known; for the
// gateway's own endpoints only package auth knows it, so it reports it
// through the request's credential.Info: after a successful login or
// registration and on /me with a valid session, never for a failure.
func TestHandlersReportUserID(t *testing.T) {
	e := newMiniEnv(t, nil)
	var mu sync.Mutex
	var got []string
	hs := NewHandlers(e.cfg, e.svc, HandlerOptions{})
	serve := func(method, path, body string, hdr ...string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		info := &credential.Info{}
		hs[path].ServeHTTP(w, r.WithContext(credential.NewContext(r.Context(), info)))
		if info.UserID != "" {
			mu.Lock()
			got = append(got, path+" "+info.UserID)
			mu.Unlock()
		}
		return w
	}
	take := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}

	w := serve("POST", "/register", `{"email":"ann@example.com","password":"password123"}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("register: status = %d, want 201", w.Code)
	}
	u, tok, err := e.svc.Login(t.Context(), "ann@example.com", "password123", "192.0.2.1", "")
	if err != nil {
		t.Fatal(err)
	}
	if ids := take(); len(ids) != 1 || ids[0] != "/register "+u.ID {
		t.Errorf("after register: reported %q, want [/register %s]", ids, u.ID)
	}

	if w := serve("POST", "/login", `{"email":"ann@example.com","password":"password123"}`); w.Code != http.StatusOK {
		t.Fatalf("login: status = %d, want 200", w.Code)
	}
	if ids := take(); len(ids) != 1 || ids[0] != "/login "+u.ID {
		t.Errorf("after login: reported %q, want [/login %s]", ids, u.ID)
	}

	if w := serve("GET", "/me", "", "Authorization", "Bearer "+tok); w.Code != http.StatusOK {
		t.Fatalf("me: status = %d, want 200", w.Code)
	}
	if ids := take(); len(ids) != 1 || ids[0] != "/me "+u.ID {
		t.Errorf("after me: reported %q, want [/me %s]", ids, u.ID)
	}

	// Failures report nothing, and a token's claimed id is not proof.
	serve("POST", "/login", `{"email":"ann@example.com","password":"wrong-password"}`)
	serve("POST", "/register", `{"email":"ann@example.com","password":"password123"}`)
	serve("POST", "/logout", "", "Authorization", "Bearer "+tok)
	serve("GET", "/me", "", "Authorization", "Bearer "+tok)
	if ids := take(); len(ids) != 0 {
		t.Errorf("after failures and logout: reported %q, want nothing", ids)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// README "Probes and signals": on SIGTERM "/readyz turns 503, the listener stops
// accepting, in-flight requests drain". While a request drains, a probe of
// /readyz must be answered 503 (not refused: the admin listener is what
// tells the orchestrator the replica is going away), and the in-flight
// request still completes.
func TestAuditReadyzAnswers503WhileDraining(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	}))
	t.Cleanup(up.Close)
	var released bool
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	g := newTestGateway(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
shutdown_timeout: 20s
upstreams:
  app: %s
routes:
  - path: /
    policy: public
`, up.URL), nil)

	type answer struct {
		status int
		body   string
		err    error
	}
	inflight := make(chan answer, 1)
	go func() {
		resp, err := http.Get(g.public + "/slow")
		if err != nil {
			inflight <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		inflight <- answer{resp.StatusCode, string(b), err}
	}()
	<-entered

	stopped := make(chan error, 1)
	go func() { stopped <- g.stop() }()

	client := &http.Client{Timeout: time.Second}
	var last string
	saw503 := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !saw503; {
		resp, err := client.Get(g.admin + "/readyz")
		if err != nil {
			last = err.Error()
		} else {
			resp.Body.Close()
			last = resp.Status
			saw503 = resp.StatusCode == http.StatusServiceUnavailable
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	released = true
	if !saw503 {
		t.Errorf("/readyz during the drain: last answer %q, want 503 Service Unavailable", last)
	}
	a := <-inflight
	if a.err != nil || a.status != http.StatusOK || a.body != "done" {
		t.Errorf("in-flight request = %d %q %v, want 200 \"done\"", a.status, a.body, a.err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("run returned %v, want nil (exit 0)", err)
	}
}

// README "Logs": one log line per request with "user id when
// known". The gateway's own endpoints know it after a successful login or
// registration and on /me with a valid session.
func TestAuditOwnEndpointLogLinesCarryUserID(t *testing.T) {
	g := newTestGateway(t, embeddedConfig, nil)
	c := newClient(t)
	st, _, body := do(t, c, "POST", g.public+"/register", "application/json", `{"email":"logs@example.com","password":"password123"}`)
	if st != http.StatusCreated {
		t.Fatalf("register = %d %s", st, body)
	}
	var reg struct{ User struct{ ID string } }
	if err := json.Unmarshal([]byte(body), &reg); err != nil || reg.User.ID == "" {
		t.Fatalf("register body %s (%v)", body, err)
	}
	if st, _, body := do(t, c, "POST", g.public+"/login", "application/json", `{"email":"logs@example.com","password":"password123"}`); st != http.StatusOK {
		t.Fatalf("login = %d %s", st, body)
	}
	if st, _, body := do(t, c, "GET", g.public+"/me", "", ""); st != http.StatusOK {
		t.Fatalf("me = %d %s", st, body)
	}
	if err := g.stop(); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"POST /register": false, "POST /login": false, "GET /me": false}
	for _, line := range strings.Split(g.logs.String(), "\n") {
		var rec struct {
			Msg, Method, Path string
			UserID            string `json:"user_id"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "request" {
			continue
		}
		k := rec.Method + " " + rec.Path
		if _, ok := want[k]; ok && rec.UserID == reg.User.ID {
			want[k] = true
		}
	}
	for k, ok := range want {
		if !ok {
			t.Errorf("the log line of %s lacks user_id %s", k, reg.User.ID)
		}
	}
}

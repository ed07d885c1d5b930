package auth

import (
	"github.com/gatehouse-dev/gatehouse/auth/credential"

	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/redistest"
	"github.com/gatehouse-dev/gatehouse/config"
)

// TestLoginWithManyCookiesBounded: a login that brings 550 token-shaped
// session cookies (each naming another user id) costs a bounded number of
// Redis commands, counted with INFO commandstats on a real redis-server:
// the same as a login with none, plus the previous session's MULTI/EXEC
// (one DEL, one ZREM), plus one MULTI/EXEC holding one DEL and one ZREM per
// user id of the next maxEndTokens tokens. The old code sent one
// transaction per cookie (550 DEL, 550 ZREM).
func TestLoginWithManyCookiesBounded(t *testing.T) {
	inst := redistest.Server(t, redistest.WithPassword("commandstats"))
	rdb, closeFn, err := OpenRedis(config.Redis{URL: inst.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeFn() })
	cfg := testConfig()
	cfg.Auth.MaxLoginFailures = 100
	svc, err := NewService(NewStore(rdb, inst.KeyPrefix), cfg, ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := svc.Register(ctx, "ann@example.com", "password1"); err != nil {
		t.Fatal(err)
	}
	h := NewHandlers(cfg, svc, HandlerOptions{})
	srv := httptest.NewServer(h[cfg.Auth.LoginPath])
	t.Cleanup(srv.Close)

	end := time.Now().Add(time.Hour).Unix()
	var cookies []string
	for i := range 550 {
		cookies = append(cookies, fmt.Sprintf("%s=gh1.%032x.%d.%s", cfg.Session.CookieName, i+1, end, strings.Repeat("A", credential.SecretLen)))
	}
	login := func(cookie string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(credsJSON("ann@example.com", "password1")))
		req.Header.Set("Content-Type", jsonType)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("login: status = %d", resp.StatusCode)
		}
	}
	admin := inst.Client(t)
	measure := func(cookie string) map[string]int {
		t.Helper()
		login("") // warm: connections open, device key read
		if err := admin.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		login(cookie)
		info, err := admin.Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		return redistest.ParseCommandStats(info)
	}
	quiet := measure("")
	many := measure(strings.Join(cookies, "; "))
	// The first cookie is the previous session (ended by endPrevious, as
	// with one cookie); the next maxEndTokens go in one transaction.
	want := map[string]int{"multi": 2, "exec": 2, "del": 2, "zrem": 1 + maxEndTokens, "hdel": 1 + maxEndTokens}
	for cmd, extra := range want {
		if got := many[cmd] - quiet[cmd]; got != extra {
			t.Errorf("%s: %d more calls than a login without cookies, want %d (commandstats %v)", cmd, got, extra, many)
		}
	}
	total := func(m map[string]int) (n int) {
		for _, c := range m {
			n += c
		}
		return n
	}
	// Per token at most a ZREM and an HDEL of its user's index and info
	// (every fake cookie here names another user), in bounded transactions.
	if d, bound := total(many)-total(quiet), 6+2*(1+maxEndTokens); d > bound {
		t.Errorf("550 cookies cost %d more commands than none, want at most %d (commandstats %v)", d, bound, many)
	}
}

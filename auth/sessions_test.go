package auth

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/auth/redistest"
	"github.com/gatehouse-dev/gatehouse/config"
)

// shortSessions makes sessions end within seconds, so that a real
// redis-server can be watched expiring them: 12s absolute, 4s idle. The
// steps below leave at least 1.6s of slack on a loaded machine (CI runs
// several packages' tests at once on two cores).
func shortSessions(cfg *config.Config) {
	cfg.Session.TTL = config.Duration(12 * time.Second)
	cfg.Session.IdleTimeout = config.Duration(4 * time.Second)
}

func TestSessionLifecycle(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u, tok := e.register(t, "  Ann@Example.com ", "password1")
		if u.Email != "ann@example.com" || !isUserID(u.ID) {
			t.Fatalf("Register user = %+v, want normalised email and a user id", u)
		}
		if !credential.IsToken(tok) {
			t.Fatalf("IsToken(%q) = false for a token Register made", tok)
		}
		s := e.mustAuth(t, tok, u)
		if want := e.clock.Now().Add(time.Hour); !s.Expires.Equal(want) {
			t.Errorf("Expires = %v, want %v (now + ttl)", s.Expires, want)
		}

		u2, tok2, err := e.svc.Login(ctx, "ANN@example.com", "password1", "192.0.2.1", "")
		if err != nil || u2 != u {
			t.Fatalf("Login = %+v, %v; want %+v", u2, err, u)
		}
		if tok2 == tok {
			t.Fatal("Login returned the existing token; every login must make a new session")
		}
		// Without previousToken, the first session is another device's.
		e.mustAuth(t, tok, u)
		e.mustAuth(t, tok2, u)

		if err := e.svc.Logout(ctx, tok, false); err != nil {
			t.Fatalf("Logout: %v", err)
		}
		e.mustNotAuth(t, tok)
		e.mustAuth(t, tok2, u)
		members, err := e.rdb.ZRange(ctx, e.store.indexKey(u.ID), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(members) != 1 || members[0] != tokenHash(tok2) {
			t.Errorf("index after logout = %v, want only the hash of the second token", members)
		}

		// Logging out without a (live) session is a success.
		for _, tok := range []string{tok, "", "not-a-token", tok2 + "x"} {
			if err := e.svc.Logout(ctx, tok, false); err != nil {
				t.Errorf("Logout(%q) = %v, want nil", tok, err)
			}
		}
	})
}

// TestIdleExpiry: a session unused for idle_timeout ends; each use restarts
// the timer.
func TestIdleExpiry(t *testing.T) {
	t.Parallel() // it sleeps on a real server
	forEachStore(t, shortSessions, func(t *testing.T, e *testEnv) {
		u, tok := e.register(t, "ann@example.com", "password1")
		e.advance(2400 * time.Millisecond)
		e.mustAuth(t, tok, u)
		// 4.8s after creation, past one idle period: alive only because the
		// use above restarted the timer.
		e.advance(2400 * time.Millisecond)
		e.mustAuth(t, tok, u)
		e.advance(5200 * time.Millisecond) // 10s: idle for 5.2s, before the 12s end
		e.mustNotAuth(t, tok)
	})
}

// TestAbsoluteExpiry: a session in constant use still ends at its absolute
// end, and no refresh sets its key's TTL past that end.
func TestAbsoluteExpiry(t *testing.T) {
	t.Parallel() // it sleeps on a real server
	forEachStore(t, shortSessions, func(t *testing.T, e *testEnv) {
		u, tok := e.register(t, "ann@example.com", "password1")
		end := e.clock.Now().Add(12 * time.Second)
		for range 4 { // 2.4s .. 9.6s
			e.advance(2400 * time.Millisecond)
			s := e.mustAuth(t, tok, u)
			if !s.Expires.Equal(end) {
				t.Fatalf("Expires = %v, want %v; the absolute end must never move", s.Expires, end)
			}
			if left, ttl := end.Sub(e.clock.Now()), e.pttl(t, tok); ttl > left {
				t.Fatalf("PTTL = %v after a refresh, past the absolute end in %v", ttl, left)
			}
		}
		e.advance(2600 * time.Millisecond) // 12.2s
		e.mustNotAuth(t, tok)
		// Not just refused by the clock: the key itself is gone.
		id, _, _ := parseToken(tok)
		if n := e.rdb.Exists(context.Background(), e.store.sessionKey(id, tok)).Val(); n != 0 {
			t.Errorf("session key still exists after the absolute end")
		}
	})
}

// TestIdleRefreshCappedAtAbsoluteEnd moves only the gateway's clock to 5
// minutes before the end of a session with a 10-minute idle timeout: the
// refresh must set PTTL to at most those 5 minutes.
func TestIdleRefreshCappedAtAbsoluteEnd(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		u, tok := e.register(t, "ann@example.com", "password1")
		if ttl := e.pttl(t, tok); ttl > 10*time.Minute || ttl < 9*time.Minute {
			t.Fatalf("PTTL of a new session = %v, want the 10m idle timeout", ttl)
		}
		e.clock.add(55 * time.Minute) // the gateway's clock only
		e.mustAuth(t, tok, u)
		if ttl := e.pttl(t, tok); ttl > 5*time.Minute || ttl < 4*time.Minute {
			t.Fatalf("PTTL after a refresh 5m before the end = %v, want at most 5m", ttl)
		}
		e.clock.add(5 * time.Minute) // exactly at the end: refused without asking Redis
		e.mustNotAuth(t, tok)
	})
}

// TestNoIdleTimeout: idle_timeout 0 gives the key the absolute lifetime.
func TestNoIdleTimeout(t *testing.T) {
	forEachStore(t, func(cfg *config.Config) { cfg.Session.IdleTimeout = 0 }, func(t *testing.T, e *testEnv) {
		u, tok := e.register(t, "ann@example.com", "password1")
		e.clock.add(30 * time.Minute)
		e.mustAuth(t, tok, u)
		if ttl := e.pttl(t, tok); ttl > 30*time.Minute || ttl < 29*time.Minute {
			t.Fatalf("PTTL = %v, want the 30m left of the absolute lifetime", ttl)
		}
	})
}

// TestTamperedToken: any change to a token finds no session, in particular
// a later end.
func TestTamperedToken(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		u, tok := e.register(t, "ann@example.com", "password1")
		other, _ := e.register(t, "bob@example.com", "password1")
		id, end, _ := parseToken(tok)
		secret := tok[strings.LastIndexByte(tok, '.')+1:]
		flip := "A"
		if secret[0] == 'A' {
			flip = "B"
		}
		tampered := map[string]string{
			"later end":    "gh1." + id + "." + strconv.FormatInt(end+86400, 10) + "." + secret,
			"earlier end":  "gh1." + id + "." + strconv.FormatInt(end-1, 10) + "." + secret,
			"other user":   "gh1." + other.ID + "." + strconv.FormatInt(end, 10) + "." + secret,
			"secret":       "gh1." + id + "." + strconv.FormatInt(end, 10) + "." + flip + secret[1:],
			"not a token":  tok[:len(tok)-1],
			"upper-cased":  strings.ToUpper(tok),
			"extra suffix": tok + "=",
		}
		for name, bad := range tampered {
			if _, err := e.svc.Authenticate(context.Background(), bad); err != ErrSessionNotFound {
				t.Errorf("%s: Authenticate = %v, want ErrSessionNotFound", name, err)
			}
		}
		e.mustAuth(t, tok, u)
	})
}

func TestLogoutAll(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u, t1 := e.register(t, "ann@example.com", "password1")
		bob, tb := e.register(t, "bob@example.com", "password1")
		var toks = []string{t1}
		for range 2 {
			_, tok, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", "")
			if err != nil {
				t.Fatal(err)
			}
			toks = append(toks, tok)
		}

		// A token forged with Ann's user id and a random secret is no
		// session, so it cannot end hers.
		forged, err := newToken(u.ID, e.clock.Now().Add(time.Hour).Truncate(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Logout(ctx, forged, true); err != nil {
			t.Fatalf("Logout(forged, all) = %v, want nil", err)
		}
		for _, tok := range toks {
			e.mustAuth(t, tok, u)
		}

		if err := e.svc.Logout(ctx, toks[1], true); err != nil {
			t.Fatalf("Logout(all): %v", err)
		}
		for _, tok := range toks {
			e.mustNotAuth(t, tok)
		}
		e.mustAuth(t, tb, bob)
		if n := e.rdb.ZCard(ctx, e.store.indexKey(u.ID)).Val(); n != 0 {
			t.Errorf("index has %d members after logout all, want 0", n)
		}
	})
}

func TestRevokeSessions(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u, t1 := e.register(t, "ann@example.com", "password1")
		bob, tb := e.register(t, "bob@example.com", "password1")
		_, t2, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Logout(ctx, t2, false); err != nil {
			t.Fatal(err)
		}
		_, t3, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", "")
		if err != nil {
			t.Fatal(err)
		}
		n, err := e.svc.RevokeSessions(ctx, " ANN@example.com")
		if err != nil || n != 2 {
			t.Fatalf("RevokeSessions = %d, %v; want 2 live sessions ended", n, err)
		}
		e.mustNotAuth(t, t1)
		e.mustNotAuth(t, t3)
		e.mustAuth(t, tb, bob)
		if n, err := e.svc.RevokeSessions(ctx, "ann@example.com"); err != nil || n != 0 {
			t.Errorf("second RevokeSessions = %d, %v; want 0, nil", n, err)
		}
		if _, err := e.svc.RevokeSessions(ctx, "nobody@example.com"); err != ErrUserNotFound {
			t.Errorf("RevokeSessions(unknown) = %v, want ErrUserNotFound", err)
		}
		// The account still works.
		if _, tok, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", ""); err != nil {
			t.Fatalf("Login after revoke: %v", err)
		} else {
			e.mustAuth(t, tok, u)
		}
	})
}

func TestDeleteUser(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u, t1 := e.register(t, "ann@example.com", "password1")
		bob, tb := e.register(t, "bob@example.com", "password1")
		if err := e.svc.DeleteUser(ctx, "Ann@Example.com"); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		e.mustNotAuth(t, t1)
		e.mustAuth(t, tb, bob)
		if _, _, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", ""); err != ErrInvalidCredentials {
			t.Errorf("Login of a deleted account = %v, want ErrInvalidCredentials", err)
		}
		if err := e.svc.DeleteUser(ctx, "ann@example.com"); err != ErrUserNotFound {
			t.Errorf("second DeleteUser = %v, want ErrUserNotFound", err)
		}
		// The email is free again, for a new account with a new id.
		u2, t2 := e.register(t, "ann@example.com", "password2")
		if u2.ID == u.ID {
			t.Error("re-registered account got the deleted account's id")
		}
		e.mustNotAuth(t, t1)
		e.mustAuth(t, t2, u2)
		for _, line := range e.dump(t) {
			if strings.Contains(line, u.ID) {
				t.Errorf("key of the deleted account left behind: %s", line)
			}
		}
	})
}

// TestIndexTrimmed: members of the session index whose absolute end passed
// are removed at the next login.
func TestIndexTrimmed(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u, _ := e.register(t, "ann@example.com", "password1")
		e.clock.add(2 * time.Hour) // the first session's end has passed
		_, tok, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", "")
		if err != nil {
			t.Fatal(err)
		}
		members := e.rdb.ZRange(ctx, e.store.indexKey(u.ID), 0, -1).Val()
		if len(members) != 1 || members[0] != tokenHash(tok) {
			t.Errorf("index = %v, want only the new session", members)
		}
		if ttl := e.rdb.PTTL(ctx, e.store.indexKey(u.ID)).Val(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("index PTTL = %v, want at most the session's 1h", ttl)
		}
	})
}

// TestAuthenticateOneCommandMiniredis counts commands on miniredis: exactly
// one per Authenticate, none for a token past its end or of the wrong shape.
func TestAuthenticateOneCommandMiniredis(t *testing.T) {
	e := newMiniEnv(t, nil)
	u, tok := e.register(t, "ann@example.com", "password1")
	before := e.mr.CommandCount()
	for range 10 {
		e.mustAuth(t, tok, u)
	}
	e.mustNotAuth(t, "not-a-token")
	if got := e.mr.CommandCount() - before; got != 10 {
		t.Errorf("10 Authenticate calls sent %d commands, want 10", got)
	}
	e.clock.add(2 * time.Hour)
	before = e.mr.CommandCount()
	e.mustNotAuth(t, tok)
	if got := e.mr.CommandCount() - before; got != 0 {
		t.Errorf("Authenticate of an ended token sent %d commands, want 0", got)
	}
}

// TestAuthenticateOneCommand counts with INFO commandstats on a real
// redis-server: N Authenticate calls are exactly N GETEX and nothing else
// (no pipeline, no script, no EXPIRE). It needs a server of its own, since
// CONFIG RESETSTAT and the counts are server-wide; WithPassword makes
// redistest start one even when GATEHOUSE_TEST_REDIS_URL is set.
func TestAuthenticateOneCommand(t *testing.T) {
	inst := redistest.Server(t, redistest.WithPassword("commandstats"))
	rdb, closeFn, err := OpenRedis(config.Redis{URL: inst.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeFn() })
	e := &testEnv{name: "redis-server", rdb: rdb, inst: inst, prefix: inst.KeyPrefix}
	e.init(t, nil)
	u, tok := e.register(t, "ann@example.com", "password1")
	e.mustAuth(t, tok, u) // the connection is open and handshaken

	admin := inst.Client(t)
	ctx := context.Background()
	if err := admin.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 25
	for range n {
		e.mustAuth(t, tok, u)
	}
	info, err := admin.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := redistest.ParseCommandStats(info)
	if calls["getex"] != n {
		t.Errorf("getex calls = %d, want %d (commandstats %v)", calls["getex"], n, calls)
	}
	for cmd, c := range calls {
		switch cmd {
		case "getex", "info", "config|resetstat":
		default:
			t.Errorf("%d unexpected %q calls during Authenticate (commandstats %v)", c, cmd, calls)
		}
	}
}

// cmdHook is a go-redis hook that shows a test every command before it is
// sent, single or pipelined; an error from before fails the call without
// sending it (as a timeout would).
type cmdHook struct {
	before func(cmd redis.Cmder) error
}

func (h cmdHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h cmdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := h.before(cmd); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (h cmdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if err := h.before(cmd); err != nil {
				for _, c := range cmds {
					c.SetErr(err)
				}
				return err
			}
		}
		return next(ctx, cmds)
	}
}

// TestDeleteUserRevokeFails: when ending the sessions fails, DeleteUser
// fails with the account intact, so that a retry can still name the user
// id; the retry then ends every session and deletes the account.
func TestDeleteUserRevokeFails(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u, t1 := e.register(t, "ann@example.com", "password1")
		_, t2, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", "")
		if err != nil {
			t.Fatal(err)
		}
		bob, tb := e.register(t, "bob@example.com", "password1")
		// The sweep of the session index starts with ZRANGE: fail the first.
		var failed atomic.Bool
		e.rdb.AddHook(cmdHook{before: func(cmd redis.Cmder) error {
			if cmd.Name() == "zrange" && failed.CompareAndSwap(false, true) {
				return errors.New("injected: i/o timeout")
			}
			return nil
		}})

		if err := e.svc.DeleteUser(ctx, "ann@example.com"); !errors.Is(err, ErrStoreUnavailable) {
			t.Fatalf("DeleteUser with a failing revoke = %v, want ErrStoreUnavailable", err)
		}
		if !failed.Load() {
			t.Fatal("DeleteUser never swept the session index")
		}
		if rec, err := e.store.getUser(ctx, "ann@example.com"); err != nil || rec.ID != u.ID {
			t.Fatalf("account after a failed DeleteUser = %+v, %v; want it intact", rec, err)
		}

		if err := e.svc.DeleteUser(ctx, "ann@example.com"); err != nil {
			t.Fatalf("second DeleteUser: %v", err)
		}
		e.mustNotAuth(t, t1)
		e.mustNotAuth(t, t2)
		e.mustAuth(t, tb, bob)
		if _, err := e.store.getUser(ctx, "ann@example.com"); err != ErrUserNotFound {
			t.Errorf("account after the second DeleteUser: %v, want ErrUserNotFound", err)
		}
		for _, line := range e.dump(t) {
			if strings.Contains(line, u.ID) {
				t.Errorf("key of the deleted account left behind: %s", line)
			}
		}
	})
}

// TestDeleteUserSweepsRacingLogin: a session created after DeleteUser's
// first sweep but before the account is gone (a login whose re-read of the
// account still found it) is ended by the sweep after the delete.
func TestDeleteUserSweepsRacingLogin(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u, t1 := e.register(t, "ann@example.com", "password1")
		var racing string
		var raced atomic.Bool
		// WATCH of the account comes after the first sweep and before the
		// delete: the racing login's session appears there.
		e.rdb.AddHook(cmdHook{before: func(cmd redis.Cmder) error {
			if cmd.Name() == "watch" && raced.CompareAndSwap(false, true) {
				now := e.clock.Now()
				tok, err := e.store.createSession(ctx, u, now.Add(time.Hour), now, 10*time.Minute, newSessionMeta{})
				if err != nil {
					return err
				}
				racing = tok
			}
			return nil
		}})
		if err := e.svc.DeleteUser(ctx, "ann@example.com"); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		if racing == "" {
			t.Fatal("no session was created during DeleteUser")
		}
		e.mustNotAuth(t, t1)
		e.mustNotAuth(t, racing)
	})
}

// TestDeleteUserKeepsNewAccount: an account deleted and registered again
// between DeleteUser's read and its delete is another person's: it stays.
func TestDeleteUserKeepsNewAccount(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		old, t1 := e.register(t, "ann@example.com", "password1")
		var renewed User
		var newTok string
		var raced atomic.Bool
		e.rdb.AddHook(cmdHook{before: func(cmd redis.Cmder) error {
			if cmd.Name() == "watch" && raced.CompareAndSwap(false, true) {
				if err := e.rdb.Del(ctx, e.store.userKey("ann@example.com")).Err(); err != nil {
					return err
				}
				var err error
				renewed, newTok, err = e.svc.Register(ctx, "ann@example.com", "password2")
				return err
			}
			return nil
		}})
		if err := e.svc.DeleteUser(ctx, "ann@example.com"); err != ErrUserNotFound {
			t.Fatalf("DeleteUser of a replaced account = %v, want ErrUserNotFound", err)
		}
		e.mustNotAuth(t, t1)
		e.mustAuth(t, newTok, renewed)
		if rec, err := e.store.getUser(ctx, "ann@example.com"); err != nil || rec.ID != renewed.ID || rec.ID == old.ID {
			t.Errorf("account = %+v, %v; want the new one %s", rec, err, renewed.ID)
		}
	})
}

// TestLogoutAllDeletesOnce: logging out everywhere deletes the sessions in
// one sweep; the caller's session is among them and is not deleted again.
func TestLogoutAllDeletesOnce(t *testing.T) {
	forEachStore(t, nil, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		_, t1 := e.register(t, "ann@example.com", "password1")
		_, t2, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", "")
		if err != nil {
			t.Fatal(err)
		}
		var dels atomic.Int32
		e.rdb.AddHook(cmdHook{before: func(cmd redis.Cmder) error {
			if cmd.Name() == "del" {
				dels.Add(1)
			}
			return nil
		}})
		if err := e.svc.Logout(ctx, t2, true); err != nil {
			t.Fatalf("Logout(all): %v", err)
		}
		if n := dels.Load(); n != 1 {
			t.Errorf("Logout(all) sent %d DEL commands, want 1", n)
		}
		e.mustNotAuth(t, t1)
		e.mustNotAuth(t, t2)
	})
}

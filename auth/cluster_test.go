package auth

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-dev/gatehouse/auth/redistest"
	"github.com/gatehouse-dev/gatehouse/config"
)

// The service suite's essentials against a real three-master Redis Cluster.
// Every multi-key operation of the layout (the session MULTI, logout,
// logout everywhere, revocation in batches, the throttle pipelines) must
// work there: a MULTI whose keys are in different slots is refused with
// CROSSSLOT, and a pipeline must be split by node. The session key and the
// session index of one user share a slot through the hash tag {u:<id>};
// account and throttle keys are single-key commands and land anywhere.

// clusterEnv is one Cluster shared by the subtests, each with its own key
// prefix and service.
type clusterEnv struct {
	cluster *redistest.ClusterInstance
	rdb     *redis.ClusterClient
	base    string // key prefix; subtests add their own part
	n       int
}

func newClusterEnv(t *testing.T) *clusterEnv {
	t.Helper()
	c := redistest.Cluster(t)
	base := c.Nodes[0].KeyPrefix
	rdb, closeFn, err := OpenRedis(config.Redis{Cluster: &config.Cluster{Addrs: c.Addrs}, KeyPrefix: base}, nil)
	if err != nil {
		t.Fatalf("OpenRedis(cluster): %v", err)
	}
	t.Cleanup(func() { _ = closeFn() })
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("OpenRedis(cluster) returned %T, want *redis.ClusterClient", rdb)
	}
	return &clusterEnv{cluster: c, rdb: cc, base: base}
}

// env returns a fresh store and service under a prefix of their own.
func (c *clusterEnv) env(t *testing.T, tune func(*config.Config)) *testEnv {
	t.Helper()
	c.n++
	e := &testEnv{name: "cluster", rdb: c.rdb, prefix: c.base + "s" + strconv.Itoa(c.n) + ":"}
	e.init(t, tune)
	return e
}

// keysByNode counts the keys under prefix on each master. SCAN on a
// ClusterClient asks one node only, so each master is scanned itself.
func (c *clusterEnv) keysByNode(t *testing.T, prefix string) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	ctx := context.Background()
	err := c.rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		n := 0
		iter := node.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		mu.Lock()
		counts[node.Options().Addr] = n
		mu.Unlock()
		return iter.Err()
	})
	if err != nil {
		t.Fatalf("scan masters: %v", err)
	}
	return counts
}

func (c *clusterEnv) slot(t *testing.T, key string) int64 {
	t.Helper()
	s, err := c.rdb.ClusterKeySlot(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("CLUSTER KEYSLOT %s: %v", key, err)
	}
	return s
}

func TestClusterServiceSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node Redis Cluster; skipped in -short mode")
	}
	t.Parallel() // starting a cluster takes seconds
	c := newClusterEnv(t)
	ctx := context.Background()

	// The layout really spreads over the nodes, or this suite would prove
	// nothing about cross-slot commands: users' keys land on several
	// masters, and one user's session key and index share a slot that is
	// (for most users) not the slot of the account key.
	t.Run("layout spans nodes", func(t *testing.T) {
		e := c.env(t, nil)
		otherSlot := 0
		for i := range 12 {
			email := "user" + strconv.Itoa(i) + "@example.com"
			u, tok := e.register(t, email, "password1")
			sk, idx := e.store.sessionKey(u.ID, tok), e.store.indexKey(u.ID)
			if a, b := c.slot(t, sk), c.slot(t, idx); a != b {
				t.Fatalf("session key slot %d != index slot %d: MULTI would fail with CROSSSLOT", a, b)
			}
			if c.slot(t, sk) != c.slot(t, e.store.userKey(email)) {
				otherSlot++
			}
		}
		if otherSlot == 0 {
			t.Errorf("every account key shares its user's session slot: the test cannot see cross-slot mistakes")
		}
		used := 0
		for _, n := range c.keysByNode(t, e.prefix) {
			if n > 0 {
				used++
			}
		}
		if used < 2 {
			t.Errorf("keys on %d of %d masters, want at least 2", used, len(c.cluster.Addrs))
		}
	})

	t.Run("register login authenticate logout", func(t *testing.T) {
		e := c.env(t, nil)
		u, t1 := e.register(t, "ann@example.com", "password1")
		e.mustAuth(t, t1, u)
		if _, _, err := e.svc.Register(ctx, "ANN@example.com", "password2"); err != ErrEmailTaken {
			t.Fatalf("Register of a taken email = %v, want ErrEmailTaken", err)
		}
		// Login replaces the token the client brought along.
		u2, t2, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", t1)
		if err != nil || u2 != u {
			t.Fatalf("Login = %+v, %v", u2, err)
		}
		e.mustNotAuth(t, t1)
		s := e.mustAuth(t, t2, u)
		if !s.Expires.After(e.clock.Now()) {
			t.Errorf("Expires = %v, want after now", s.Expires)
		}
		if ttl := e.pttl(t, t2); ttl <= 0 || ttl > 10*time.Minute {
			t.Errorf("session PTTL = %v, want (0, idle 10m]", ttl)
		}
		if err := e.svc.Logout(ctx, t2, false); err != nil {
			t.Fatalf("Logout: %v", err)
		}
		e.mustNotAuth(t, t2)
		if n := c.rdb.ZCard(ctx, e.store.indexKey(u.ID)).Val(); n != 0 {
			t.Errorf("index has %d members after logout, want 0", n)
		}
		if err := e.svc.Logout(ctx, t2, false); err != nil {
			t.Errorf("second Logout = %v, want nil", err)
		}
		wantInvalid(t, e.login("ann@example.com", "wrong-password", "192.0.2.1"))
		wantInvalid(t, e.login("nobody@example.com", "password1", "192.0.2.1"))
	})

	t.Run("logout all", func(t *testing.T) {
		e := c.env(t, nil)
		u, t1 := e.register(t, "ann@example.com", "password1")
		bob, tb := e.register(t, "bob@example.com", "password1")
		toks := []string{t1}
		for range 3 {
			_, tok, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", "")
			if err != nil {
				t.Fatal(err)
			}
			toks = append(toks, tok)
		}
		for _, tok := range toks {
			e.mustAuth(t, tok, u)
		}
		if err := e.svc.Logout(ctx, toks[2], true); err != nil {
			t.Fatalf("Logout(all): %v", err)
		}
		for _, tok := range toks {
			e.mustNotAuth(t, tok)
		}
		e.mustAuth(t, tb, bob)
		if n := c.rdb.Exists(ctx, e.store.indexKey(u.ID)).Val(); n != 0 {
			t.Errorf("index still exists after logout all")
		}
	})

	t.Run("revoke sessions in batches", func(t *testing.T) {
		e := c.env(t, nil)
		u, t1 := e.register(t, "ann@example.com", "password1")
		bob, tb := e.register(t, "bob@example.com", "password1")
		// More than one DEL batch, so revokeAll's loop runs twice.
		want := revokeBatch + 20
		toks := []string{t1}
		end := e.clock.Now().Add(time.Hour)
		for range want - 1 {
			tok, err := e.store.createSession(ctx, u, end, e.clock.Now(), 10*time.Minute, newSessionMeta{})
			if err != nil {
				t.Fatalf("createSession: %v", err)
			}
			toks = append(toks, tok)
		}
		n, err := e.svc.RevokeSessions(ctx, "Ann@Example.com")
		if err != nil || n != want {
			t.Fatalf("RevokeSessions = %d, %v; want %d", n, err, want)
		}
		for _, tok := range []string{toks[0], toks[len(toks)/2], toks[len(toks)-1]} {
			e.mustNotAuth(t, tok)
		}
		e.mustAuth(t, tb, bob)
		// The account record stays with the account; no session key may.
		if got := c.keysByNode(t, e.store.prefix+"{u:"+u.ID+"}:s"); sum(got) != 0 {
			t.Errorf("%d keys of the revoked user left: %v", sum(got), got)
		}
		if _, tok, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", ""); err != nil {
			t.Fatalf("Login after revoke: %v", err)
		} else {
			e.mustAuth(t, tok, u)
		}
	})

	t.Run("delete user", func(t *testing.T) {
		e := c.env(t, nil)
		u, t1 := e.register(t, "ann@example.com", "password1")
		bob, tb := e.register(t, "bob@example.com", "password1")
		_, t2, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DeleteUser(ctx, "Ann@Example.com"); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		e.mustNotAuth(t, t1)
		e.mustNotAuth(t, t2)
		e.mustAuth(t, tb, bob)
		if n := c.rdb.Exists(ctx, e.store.userKey("ann@example.com"), e.store.indexKey(u.ID)).Val(); n != 0 {
			t.Errorf("%d of account and index keys left after DeleteUser", n)
		}
		wantInvalid(t, e.login("ann@example.com", "password1", "192.0.2.9"))
		if err := e.svc.DeleteUser(ctx, "ann@example.com"); err != ErrUserNotFound {
			t.Errorf("second DeleteUser = %v, want ErrUserNotFound", err)
		}
		u2, tok := e.register(t, "ann@example.com", "password2")
		if u2.ID == u.ID {
			t.Errorf("re-registered account has the deleted account's id")
		}
		e.mustAuth(t, tok, u2)
	})

	t.Run("throttle counters", func(t *testing.T) {
		e := c.env(t, nil)
		e.register(t, "ann@example.com", "password1")
		keys := e.store.throttleKeys("ann@example.com", "192.0.2.1")
		slots := map[int64]bool{}
		for _, k := range keys {
			slots[c.slot(t, k)] = true
		}
		if len(slots) < 2 {
			t.Logf("the three counters share a slot (unlikely); the pipelines are not split here")
		}
		for range 3 {
			wantInvalid(t, e.login("ann@example.com", "wrong-password", "192.0.2.1"))
		}
		wantCounters(t, c.rdb, keys, [3]string{"3", "3", "3"})
		wantThrottled(t, e.login("ann@example.com", "password1", "192.0.2.1"), 15*time.Minute)
		// Refused attempts do not count.
		wantCounters(t, c.rdb, keys, [3]string{"3", "3", "3"})

		// Another address may log in; its success gives back its
		// reservation and resets its own email-and-address window.
		if err := e.login("ann@example.com", "password1", "192.0.2.2"); err != nil {
			t.Fatalf("login from another address: %v", err)
		}
		other := e.store.throttleKeys("ann@example.com", "192.0.2.2")
		wantCounters(t, c.rdb, other, [3]string{"", "3", "0"})
		wantCounters(t, c.rdb, keys, [3]string{"3", "3", "3"})
	})

	t.Run("concurrent registration", func(t *testing.T) {
		e := c.env(t, nil)
		const n = 50
		spellings := []string{"ann@example.com", "ANN@example.com", " ann@Example.com "}
		errs := make([]error, n)
		users := make([]User, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				users[i], _, errs[i] = e.svc.Register(ctx, spellings[i%len(spellings)], "password1")
			})
		}
		wg.Wait()
		ok, taken := 0, 0
		var winner User
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
				winner = users[i]
			case errors.Is(err, ErrEmailTaken):
				taken++
			default:
				t.Errorf("Register: %v", err)
			}
		}
		if ok != 1 || taken != n-1 {
			t.Fatalf("%d succeeded, %d ErrEmailTaken; want 1 and %d", ok, taken, n-1)
		}
		u, _, err := e.svc.Login(ctx, "ann@example.com", "password1", "192.0.2.1", "")
		if err != nil || u != winner {
			t.Errorf("Login = %+v, %v; want the one account %+v", u, err, winner)
		}
	})

	// EndSessions of several users' tokens: their keys are in different
	// slots, so it must not be one MULTI there (CROSSSLOT).
	t.Run("end sessions of several users", func(t *testing.T) {
		e := c.env(t, nil)
		var toks []string
		var users []User
		for i := range 4 {
			u, tok := e.register(t, "u"+strconv.Itoa(i)+"@example.com", "password1")
			users = append(users, u)
			toks = append(toks, tok, tok)
		}
		if err := e.svc.EndSessions(ctx, toks); err != nil {
			t.Fatalf("EndSessions: %v", err)
		}
		for i, tok := range toks {
			e.mustNotAuth(t, tok)
			if n := c.rdb.ZCard(ctx, e.store.indexKey(users[i/2].ID)).Val(); n != 0 {
				t.Errorf("user %d: %d index entries left, want 0", i/2, n)
			}
		}
	})

	// An account change and the rewrite of every session and token value
	// are one transaction in the user's slot: no CROSSSLOT, and the next
	// Authenticate sees the change.
	t.Run("groups, tokens and disable", func(t *testing.T) {
		e := c.env(t, nil)
		u, t1 := e.register(t, "g@example.com", "password1")
		_, t2, err := e.svc.Login(ctx, "g@example.com", "password1", "192.0.2.1", "")
		if err != nil {
			t.Fatal(err)
		}
		api, _, err := e.svc.CreateTokenFor(ctx, "g@example.com", "ci", time.Hour)
		if err != nil {
			t.Fatalf("CreateTokenFor: %v", err)
		}
		groupsOf := func(tok string) string {
			t.Helper()
			id, err := e.svc.Authenticate(ctx, tok)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			return id.Groups
		}
		if _, err := e.svc.SetGroups(ctx, "g@example.com", []string{"ops", "admins"}, nil); err != nil {
			t.Fatalf("SetGroups: %v", err)
		}
		for _, tok := range []string{t1, t2, api} {
			if g := groupsOf(tok); g != "admins,ops" {
				t.Errorf("groups after +admins +ops = %q, want admins,ops", g)
			}
		}
		if _, err := e.svc.SetGroups(ctx, "g@example.com", nil, []string{"admins"}); err != nil {
			t.Fatalf("SetGroups: %v", err)
		}
		for _, tok := range []string{t1, t2, api} {
			if g := groupsOf(tok); g != "ops" {
				t.Errorf("groups after -admins = %q, want ops", g)
			}
		}
		if err := e.svc.SetDisabled(ctx, "g@example.com", true); err != nil {
			t.Fatalf("SetDisabled: %v", err)
		}
		for _, tok := range []string{t1, t2, api} {
			e.mustNotAuth(t, tok)
		}
		if _, _, err := e.svc.Login(ctx, "g@example.com", "password1", "192.0.2.1", ""); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("login while disabled = %v, want ErrInvalidCredentials", err)
		}
		if err := e.svc.SetDisabled(ctx, "g@example.com", false); err != nil {
			t.Fatal(err)
		}
		_, t3, err := e.svc.Login(ctx, "g@example.com", "password1", "192.0.2.1", "")
		if err != nil {
			t.Fatalf("login after enable: %v", err)
		}
		e.mustAuth(t, t3, u)
	})

	t.Run("legacy account moved", func(t *testing.T) {
		e := c.env(t, nil)
		u, _ := e.register(t, "x@example.com", "password1")
		rec, err := e.store.getUser(ctx, "x@example.com")
		if err != nil {
			t.Fatal(err)
		}
		// As the old code stored "ς@example.com": under its own key.
		rec.Email = "ς@example.com"
		b, _ := json.Marshal(rec)
		if err := c.rdb.Set(ctx, e.store.userKey("ς@example.com"), b, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.rdb.Del(ctx, e.store.userKey("x@example.com")).Err(); err != nil {
			t.Fatal(err)
		}
		got, _, err := e.svc.Login(ctx, "ς@example.com", "password1", "192.0.2.1", "")
		if err != nil || got.ID != u.ID || got.Email != "σ@example.com" {
			t.Errorf("Login = %+v, %v; want id %s as σ@example.com", got, err, u.ID)
		}
		if n := c.rdb.Exists(ctx, e.store.userKey("ς@example.com")).Val(); n != 0 {
			t.Errorf("legacy key still there")
		}
		// MigrateEmails visits every master: keys of several slots.
		for _, old := range []string{"ann@bücher.example", "straße@example.com", "ꮓ@example.com"} {
			id, _ := newUserID()
			b, _ := json.Marshal(&userRecord{ID: id, Email: old, Hash: rec.Hash, Created: rec.Created})
			if err := c.rdb.Set(ctx, e.store.userKey(old), b, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		m, err := e.svc.MigrateEmails(ctx)
		if err != nil || m.Moved != 2 || m.Scanned < 4 {
			t.Errorf("MigrateEmails = %+v, %v; want at least 4 scanned, 2 moved", m, err)
		}
	})
}

// wantCounters asserts the values of three throttle counters ("" = no
// such key) and that every existing one has a TTL.
func wantCounters(t *testing.T, rdb redis.UniversalClient, keys throttleKeys, want [3]string) {
	t.Helper()
	ctx := context.Background()
	for i, k := range keys {
		v, err := rdb.Get(ctx, k).Result()
		if err == redis.Nil {
			v, err = "", nil
		}
		if err != nil {
			t.Fatalf("GET counter %d: %v", i, err)
		}
		if v != want[i] {
			t.Errorf("counter %d = %q, want %q", i, v, want[i])
		}
		if v == "" {
			continue
		}
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Errorf("counter %d has PTTL %v, want a window", i, ttl)
		}
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

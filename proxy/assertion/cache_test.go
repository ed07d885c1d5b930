package assertion

import (
	"bytes"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestSignReusesYoungAssertion(t *testing.T) {
	f := newTestKey(t)
	clock := newTestClock()
	s := mustSigner(t, mustKeySet(t, f), time.Minute, clock) // reuse window: 15s
	first, err := s.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(15*time.Second - time.Nanosecond)
	again, err := s.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Error("same claims within ttl/4: signed again, want the cached assertion")
	}
	clock.Advance(time.Nanosecond)
	later, err := s.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	if later == first {
		t.Error("same claims ttl/4 after iat: reused, want a fresh assertion")
	}
	_, payload := segments(t, later)
	if want := `"iat":` + strconv.FormatInt(clock.Now().Unix(), 10); !bytes.Contains(payload, []byte(want)) {
		t.Errorf("fresh assertion %s lacks %s", payload, want)
	}
}

// TestSignChangedClaimGivesNewAssertion: every claim that can change for a
// live session is part of the cache key, so a change is stated on the very
// next request.
func TestSignChangedClaimGivesNewAssertion(t *testing.T) {
	f := newTestKey(t)
	clock := newTestClock()
	ks := mustKeySet(t, f)
	s := mustSigner(t, ks, time.Minute, clock)
	k := newVerifier(t, newJWKSServer(t, ks).url)
	base, err := s.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		claims func(*Claims)
	}{
		{"group removed", func(c *Claims) { c.Groups = []string{"ops"} }},
		{"group added", func(c *Claims) { c.Groups = append(c.Groups, "zeta") }},
		{"groups joined differently", func(c *Claims) { c.Groups = []string{"admins,ops"} }},
		{"no groups", func(c *Claims) { c.Groups = nil }},
		{"email", func(c *Claims) { c.Email = "ada@example.org" }},
		{"second factor dropped", func(c *Claims) { c.AMR = []string{"pwd"} }},
		{"session", func(c *Claims) { c.SessionID = "s-2" }},
		{"subject", func(c *Claims) { c.Subject = "fedcba9876543210fedcba9876543210" }},
		{"audience", func(c *Claims) { c.Audience = "billing" }},
		{"field boundary moved", func(c *Claims) { c.Email, c.SessionID = "ada@example.coms", "-1" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testClaims()
			tc.claims(&c)
			tok, err := s.Sign(c)
			if err != nil {
				t.Fatal(err)
			}
			if tok == base {
				t.Fatal("changed claims got the cached assertion")
			}
			_, got, err := verify(k, tok, c.Audience, clock)
			if err != nil {
				t.Fatal(err)
			}
			if got.Email != c.Email || got.SID != c.SessionID || got.Subject != c.Subject || len(got.Groups) != len(c.Groups) || len(got.AMR) != len(c.AMR) {
				t.Errorf("verified claims %+v do not state %+v", got, c)
			}
		})
	}
}

func TestSignNoReusePastSessionEnd(t *testing.T) {
	f := newTestKey(t)
	clock := newTestClock()
	s := mustSigner(t, mustKeySet(t, f), time.Minute, clock)
	c := testClaims()
	c.SessionEnd = testStart.Add(5 * time.Second)
	if _, err := s.Sign(c); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Second) // still within the reuse window
	if tok, err := s.Sign(c); !errors.Is(err, ErrSessionEnded) {
		t.Errorf("Sign at SessionEnd = %q, %v; want ErrSessionEnded", tok, err)
	}
}

func TestSignNoReuseAfterClockStepsBack(t *testing.T) {
	f := newTestKey(t)
	clock := newTestClock()
	s := mustSigner(t, mustKeySet(t, f), time.Minute, clock)
	first, err := s.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(-2 * time.Second)
	again, err := s.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	if again == first {
		t.Error("reused an assertion whose iat is in the future")
	}
}

// TestNewSignerStartsEmpty: a reload (new key set, new Signer) never serves
// what the previous Signer cached, even for the same key.
func TestNewSignerStartsEmpty(t *testing.T) {
	f := newTestKey(t)
	clock := newTestClock()
	ks := mustKeySet(t, f)
	a, err := mustSigner(t, ks, time.Minute, clock).Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	b, err := mustSigner(t, ks, time.Minute, clock).Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("a new Signer served an assertion it did not sign (ECDSA signatures are randomised)")
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache()
	reuse := 15 * time.Second
	const n = 3 * cacheShards * cacheShardCap
	var last []byte
	for i := range n {
		last = appendKey(nil, &Claims{Audience: "app", Subject: "u", SessionID: strconv.Itoa(i)})
		c.put(last, "tok"+strconv.Itoa(i), testStart, testStart, reuse)
	}
	total := 0
	for i := range c.shards {
		if m := len(c.shards[i].m); m > cacheShardCap {
			t.Errorf("shard %d holds %d entries, cap %d", i, m, cacheShardCap)
		} else {
			total += m
		}
	}
	if total > cacheShards*cacheShardCap || total < cacheShards*cacheShardCap/2 {
		t.Errorf("cache holds %d entries after %d puts, want about %d", total, n, cacheShards*cacheShardCap)
	}
	if tok, ok := c.get(last, testStart, reuse); !ok || tok != "tok"+strconv.Itoa(n-1) {
		t.Errorf("most recent entry: %q, %v; want it cached", tok, ok)
	}
}

func TestCacheEvictsOldEntriesFirst(t *testing.T) {
	c := newCache()
	now := testStart
	reuse := 15 * time.Second
	var keys [][]byte
	// Fill one shard: stale entries, then one young entry.
	for i := 0; len(keys) < cacheShardCap; i++ {
		k := []byte("k" + strconv.Itoa(i))
		if c.shard(k) == &c.shards[0] {
			keys = append(keys, k)
		}
	}
	for _, k := range keys[:cacheShardCap-1] {
		c.put(k, "old", now.Add(-time.Minute), now, reuse)
	}
	young := keys[cacheShardCap-1]
	c.put(young, "young", now, now, reuse)
	for i := cacheShardCap; ; i++ {
		k := []byte("k" + strconv.Itoa(i*7919))
		if c.shard(k) == &c.shards[0] {
			c.put(k, "new", now, now, reuse)
			break
		}
	}
	if tok, ok := c.get(young, now, reuse); !ok || tok != "young" {
		t.Errorf("young entry evicted while stale ones remained: %q, %v", tok, ok)
	}
	if n := len(c.shards[0].m); n != 2 {
		t.Errorf("shard holds %d entries after the sweep, want 2", n)
	}
}

func TestSignConcurrent(t *testing.T) {
	f := newTestKey(t)
	clock := newTestClock()
	s := mustSigner(t, mustKeySet(t, f), time.Minute, clock)
	var wg sync.WaitGroup
	toks := make([][]string, 4)
	for g := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := testClaims()
			for i := range 50 {
				c.SessionID = strconv.Itoa(i % 5)
				tok, err := s.Sign(c)
				if err != nil {
					t.Error(err)
					return
				}
				toks[g] = append(toks[g], tok)
				if i%10 == 0 {
					clock.Advance(time.Second)
				}
			}
		}()
	}
	wg.Wait()
	for g := range toks {
		if len(toks[g]) != 50 {
			t.Errorf("goroutine %d got %d tokens, want 50", g, len(toks[g]))
		}
	}
}

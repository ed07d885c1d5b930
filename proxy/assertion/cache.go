package assertion

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"time"
)

// The reuse cache's bounds. An entry is a token (about 600 bytes) and its
// key (about 100), so the cache holds at most a few MiB however many
// sessions are active; beyond that it only signs more often.
const (
	cacheShards   = 32 // a power of two; enough that two cores rarely meet on a lock
	cacheShardCap = 128
)

// cache maps an exact encoding of the signed claims to the assertion signed
// for them. The key is the whole encoding, never a hash of it, so two
// identities can never share an entry.
type cache struct {
	seed   maphash.Seed
	shards [cacheShards]shard
}

// shard is one lock and its part of the entries, padded so that two shards'
// locks do not share a cache line.
type shard struct {
	mu sync.Mutex
	m  map[string]entry
	_  [48]byte
}

// entry is one cached assertion and the iat it was signed with.
type entry struct {
	token string
	iat   time.Time
}

func newCache() *cache {
	c := &cache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]entry, cacheShardCap)
	}
	return c
}

func (c *cache) shard(key []byte) *shard {
	return &c.shards[maphash.Bytes(c.seed, key)&(cacheShards-1)]
}

// get returns the cached token for key if it was signed at most reuse ago
// (and not in the future: after a clock step backwards, sign afresh rather
// than hand out an iat the upstream would see as not yet valid).
func (c *cache) get(key []byte, now time.Time, reuse time.Duration) (string, bool) {
	sh := c.shard(key)
	sh.mu.Lock()
	e, ok := sh.m[string(key)]
	sh.mu.Unlock()
	if !ok || !young(e.iat, now, reuse) {
		return "", false
	}
	return e.token, true
}

// put stores token for key. A full shard first drops what is too old to be
// reused, then, if still full, an arbitrary entry (map order is random), so
// memory stays bounded at the cost of an occasional extra signature.
func (c *cache) put(key []byte, token string, iat, now time.Time, reuse time.Duration) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[string(key)]; !ok && len(sh.m) >= cacheShardCap {
		for k, e := range sh.m {
			if !young(e.iat, now, reuse) {
				delete(sh.m, k)
			}
		}
		if len(sh.m) >= cacheShardCap {
			for k := range sh.m {
				delete(sh.m, k)
				break
			}
		}
	}
	sh.m[string(key)] = entry{token: token, iat: iat}
}

// young reports whether an assertion issued at iat may still be reused at
// now.
func young(iat, now time.Time, reuse time.Duration) bool {
	age := now.Sub(iat)
	return age >= 0 && age < reuse
}

// appendKey encodes every signed claim that varies per request, each
// length-prefixed so that no two different claim sets encode alike
// (groups ["a,b"] and ["a","b"] differ). The issuer, the key and the ttl are
// fixed per Signer and need no place in the key.
func appendKey(b []byte, c *Claims) []byte {
	for _, s := range [...]string{c.Audience, c.Subject, c.Email, c.SessionID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, list := range [...][]string{c.Groups, c.AMR} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, s := range list {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

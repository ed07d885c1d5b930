package assertion

import (
	"strconv"
	"testing"
	"time"
)

func newBenchSigner(b *testing.B) (*Signer, Claims) {
	b.Helper()
	f := newTestKey(b)
	s, err := NewSigner(mustKeySet(b, f), "https://gate.example", time.Minute, func() time.Time { return testStart })
	if err != nil {
		b.Fatal(err)
	}
	return s, testClaims()
}

// BenchmarkSign is the full cost of one assertion: claims JSON, ECDSA P-256,
// compact serialisation. The cache is off.
func BenchmarkSign(b *testing.B) {
	s, c := newBenchSigner(b)
	s.cache = nil
	b.ReportAllocs()
	defer startCPU(b)()
	for b.Loop() {
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignMiss signs a new identity every time with the cache on: the
// uncached cost plus the cache's lookup, insert and eviction.
func BenchmarkSignMiss(b *testing.B) {
	s, c := newBenchSigner(b)
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	b.ReportAllocs()
	defer startCPU(b)()
	i := 0
	for b.Loop() {
		c.SessionID = ids[i&(len(ids)-1)]
		i++
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignCached is a request of a session whose assertion is young:
// what almost every request of an active user costs.
func BenchmarkSignCached(b *testing.B) {
	s, c := newBenchSigner(b)
	if _, err := s.Sign(c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer startCPU(b)()
	for b.Loop() {
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignCachedParallel is the same under concurrency, many sessions
// spread over the shards.
func BenchmarkSignCachedParallel(b *testing.B) {
	s, c := newBenchSigner(b)
	ids := make([]string, 256)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
		c.SessionID = ids[i]
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer startCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		c := testClaims()
		i := 0
		for pb.Next() {
			c.SessionID = ids[i%len(ids)]
			i++
			if _, err := s.Sign(c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

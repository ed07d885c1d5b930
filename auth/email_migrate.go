package auth

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// EmailMigration is what MigrateEmails did.
type EmailMigration struct {
	// Scanned is how many account keys were looked at: at least all there
	// were, maybe more (SCAN may return a key twice, and may return the
	// new keys of accounts moved during the pass).
	Scanned int
	// Moved is how many accounts were moved under their new key.
	Moved int
	// Collided are old keys whose new key already holds another account:
	// both stay, and only the one under the new key can sign in.
	Collided []string
	// Invalid are old keys that NormalizeEmail now refuses (a blank or a
	// symbol in the address): those accounts cannot sign in any more.
	Invalid []string
}

// MigrateEmails moves every account stored under a form of its email that
// NormalizeEmail now maps elsewhere (accounts made before PRECIS and IDNA:
// "ς@x.com", "ann@bücher.example") under its new key, as a sign-in with the
// old spelling would (see getUserOrLegacy). Until it has run, a
// registration by another spelling of such an address (σ for ς) is not
// refused, because nothing stands under the new key yet; run it once after
// upgrading. It is safe to run again, concurrently with traffic and from
// several replicas: every move is a SET NX, and an old key is deleted only
// while it still holds the account copied. It SCANs every account key
// (every master of a Cluster), so it costs a pass over the keyspace.
func (s *Service) MigrateEmails(ctx context.Context) (m EmailMigration, err error) {
	defer func() { s.metrics.storeError(err) }()
	err = s.store.forEachAccountKey(ctx, func(ctx context.Context, old string) error {
		m.Scanned++
		email, err := NormalizeEmail(old)
		if err != nil {
			if !slices.Contains(m.Invalid, old) {
				m.Invalid = append(m.Invalid, old)
			}
			return nil
		}
		if email == old {
			return nil
		}
		rec, err := s.store.getUser(ctx, old)
		if err != nil {
			if err == ErrUserNotFound {
				return nil // moved or deleted since the SCAN saw it
			}
			return err
		}
		now, err := s.store.migrateUser(ctx, rec, email)
		if err != nil {
			return err
		}
		if now.ID != rec.ID {
			if !slices.Contains(m.Collided, old) {
				m.Collided = append(m.Collided, old)
			}
			return nil
		}
		m.Moved++
		return nil
	})
	return m, err
}

// forEachAccountKey calls fn with the email of every account key (as
// stored), one key at a time. SCAN on a ClusterClient asks one node only,
// so on a Cluster every master is visited, one after another.
func (s *Store) forEachAccountKey(ctx context.Context, fn func(ctx context.Context, email string) error) error {
	keyPrefix := s.prefix + "user:"
	visit := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, escapeGlob(keyPrefix)+"*", 500).Iterator()
		for iter.Next(ctx) {
			if err := fn(ctx, strings.TrimPrefix(iter.Val(), keyPrefix)); err != nil {
				return err
			}
		}
		if err := iter.Err(); err != nil {
			return storeErr("user_get", err)
		}
		return nil
	}
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return visit(ctx, s.rdb)
	}
	var mu sync.Mutex
	var masters []*redis.Client
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters = append(masters, c)
		return nil
	}); err != nil {
		return storeErr("user_get", err)
	}
	for _, c := range masters {
		if err := visit(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// escapeGlob escapes the characters SCAN MATCH treats as a pattern.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

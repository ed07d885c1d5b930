package auth

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// maxEndTokens bounds how many distinct tokens EndSessions ends. A login
// or registration ends every token the request carried, and a client can
// bring hundreds of token-shaped cookies: without a cap each would cost a
// transaction. A browser holds one session cookie (a few with a tossed
// one); eight is ample, and tokens past it are left alone: they are the
// client's own, and merely stay valid until they end.
const maxEndTokens = 8

// EndSessions ends the sessions of tokens (anything that is not a token is
// skipped; duplicates count once; at most maxEndTokens are considered). Its
// cost is bounded whatever len(tokens): one MULTI/EXEC on a single Redis
// (or Sentinel); on a Redis Cluster, where the keys of different users are
// in different slots, one MULTI/EXEC per distinct user id among the tokens
// considered, so at most maxEndTokens.
func (s *Service) EndSessions(ctx context.Context, tokens []string) (err error) {
	defer func() { s.metrics.storeError(err) }()
	var users []string
	hashes := map[string][]string{}
	seen := map[string]bool{}
	for _, t := range tokens {
		if len(seen) == maxEndTokens {
			break
		}
		userID, _, ok := parseToken(t)
		if !ok || seen[t] {
			continue
		}
		seen[t] = true
		if hashes[userID] == nil {
			users = append(users, userID)
		}
		hashes[userID] = append(hashes[userID], tokenHash(t))
	}
	if len(users) == 0 {
		return nil
	}
	return s.store.deleteSessions(ctx, users, hashes)
}

// deleteSessions removes the sessions whose token hashes are hashes[u] for
// each u in users, with their index entries: in one transaction (one DEL
// of every session key, one ZREM per user's index), or on a Cluster in one
// per user (the keys of one user share a hash tag, hence a slot).
func (s *Store) deleteSessions(ctx context.Context, users []string, hashes map[string][]string) error {
	keysOf := func(u string) ([]string, []any) {
		hs := hashes[u]
		keys := make([]string, len(hs))
		members := make([]any, len(hs))
		for i, h := range hs {
			keys[i] = s.sessionKeyHash(u, h)
			members[i] = h
		}
		return keys, members
	}
	if _, cluster := s.rdb.(*redis.ClusterClient); !cluster {
		_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			var all []string
			for _, u := range users {
				keys, members := keysOf(u)
				all = append(all, keys...)
				p.ZRem(ctx, s.indexKey(u), members...)
				p.HDel(ctx, s.infoKey(s.indexKey(u)), hashes[u]...)
			}
			p.Del(ctx, all...)
			return nil
		})
		if err != nil {
			return storeErr("session_delete", err)
		}
		return nil
	}
	for _, u := range users {
		keys, members := keysOf(u)
		_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, keys...)
			p.ZRem(ctx, s.indexKey(u), members...)
			p.HDel(ctx, s.infoKey(s.indexKey(u)), hashes[u]...)
			return nil
		})
		if err != nil {
			return storeErr("session_delete", err)
		}
	}
	return nil
}

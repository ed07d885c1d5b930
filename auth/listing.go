package auth

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// indexEntry is one live session or token of a listing.
type indexEntry struct {
	hash     string
	v        sessionValue
	end      time.Time
	lastUsed *time.Time
}

// listIndex returns the live entries of a user's index, newest first, from
// its info hash. It never reads the session or token keys themselves (PTTL
// and OBJECT IDLETIME do not touch a key, GET would): so OBJECT IDLETIME is
// the time since the hot path last used the key, and a listing does not
// make every session look just used. With an LFU maxmemory-policy Redis
// has no idle time; lastUsed is then nil.
func (s *Store) listIndex(ctx context.Context, c redis.Cmdable, userID, idx string, keyOf func(userID, h string) string, now time.Time) ([]indexEntry, error) {
	info, err := c.HGetAll(ctx, s.infoKey(idx)).Result()
	if err != nil {
		return nil, err
	}
	var out []indexEntry
	for h, raw := range info {
		v, ok := decodeSession(raw, userID)
		if !ok || len(h) != 64 {
			continue
		}
		key := keyOf(userID, h)
		pttl, err := c.PTTL(ctx, key).Result()
		if err != nil {
			return nil, err
		}
		if pttl < 0 {
			continue // expired or revoked; the info field goes with the index trim
		}
		score, err := c.ZScore(ctx, idx, h).Result()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			return nil, err
		}
		e := indexEntry{hash: h, v: v, end: time.UnixMilli(int64(score)).UTC()}
		if idle, err := c.ObjectIdleTime(ctx, key).Result(); err == nil {
			t := now.Add(-idle).UTC().Truncate(time.Second)
			if t.Before(v.Created) {
				t = v.Created.UTC()
			}
			e.lastUsed = &t
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b indexEntry) int {
		if c := b.v.Created.Compare(a.v.Created); c != 0 {
			return c
		}
		return compareStrings(a.hash, b.hash)
	})
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// createdAt returns the creation time of the entry of idx whose handle is
// sid; the zero time for one without info (a session from before info
// hashes existed).
func (s *Store) createdAt(ctx context.Context, idx, userID, sid string) (time.Time, error) {
	h, err := s.findHash(ctx, idx, sid)
	if errors.Is(err, ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	raw, err := s.rdb.HGet(ctx, s.infoKey(idx), h).Result()
	if err == redis.Nil {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, storeErr("session_get", err)
	}
	v, _ := decodeSession(raw, userID)
	return v.Created.UTC(), nil
}

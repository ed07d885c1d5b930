package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

// SessionInfo is a session as GET /me/sessions shows it.
type SessionInfo struct {
	ID         string     `json:"id"`
	CreatedAt  time.Time  `json:"created_at"`
	LastSeenAt *time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	IP         string     `json:"ip"`
	UserAgent  string     `json:"user_agent"`
	MFA        bool       `json:"mfa"`
	Method     string     `json:"method"`
	Current    bool       `json:"current"`
}

// Sessions lists the live sessions of userID, newest first; the one whose
// handle is current is marked.
func (s *Service) Sessions(ctx context.Context, userID, current string) ([]SessionInfo, error) {
	entries, err := s.store.listIndex(ctx, s.store.rdb, userID, s.store.indexKey(userID), s.store.sessionKeyHash, s.now())
	if err != nil {
		return nil, storeErr("session_get", err)
	}
	out := make([]SessionInfo, 0, len(entries))
	for _, e := range entries {
		id := handleOfHash(e.hash)
		out = append(out, SessionInfo{ID: id, CreatedAt: e.v.Created.UTC(), LastSeenAt: e.lastUsed, ExpiresAt: e.end,
			IP: e.v.IP, UserAgent: e.v.UserAgent, MFA: e.v.MFA, Method: string(e.v.Method), Current: id == current})
	}
	return out, nil
}

// RevokeSession ends userID's session whose handle is id. Another user's
// handle, or one that names nothing, is ErrNotFound: nothing to learn by
// probing.
func (s *Service) RevokeSession(ctx context.Context, userID, id string) error {
	h, err := s.store.findHash(ctx, s.store.indexKey(userID), id)
	if err != nil {
		return err
	}
	ok, err := s.store.deleteSessionHash(ctx, userID, h)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	return nil
}

// RevokeOtherSessions ends every session of userID but the one whose
// handle is keep, and returns how many ended.
func (s *Service) RevokeOtherSessions(ctx context.Context, userID, keep string) (int, error) {
	h, err := s.store.findHash(ctx, s.store.indexKey(userID), keep)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	return s.store.revokeIndex(ctx, userID, s.store.indexKey(userID), s.store.sessionKeyHash, h)
}

// ChangePassword sets a new password for the user of the session id, after
// checking the current one exactly as a login does (the same throttle,
// counting a wrong one as a failed login, the same bcrypt work). On
// success every other session and every API token of the user ends; the
// current session stays. Errors: ErrInvalidCredentials, ErrWeakPassword,
// *ThrottledError, ErrStoreUnavailable.
func (s *Service) ChangePassword(ctx context.Context, id credential.Identity, clientIP, current, next string) error {
	if err := checkPasswordText(current); err != nil {
		return err
	}
	if err := checkPassword(next, s.minPassword); err != nil {
		return err
	}
	rec, err := s.store.getUser(ctx, id.Email)
	if errors.Is(err, ErrUserNotFound) || (err == nil && rec.ID != id.UserID) {
		return ErrInvalidCredentials
	}
	if err != nil {
		return err
	}
	keys := s.store.throttleKeys(id.Email, clientIP)
	wait, err := s.store.throttleReserve(ctx, keys, s.limits, s.window)
	if err != nil {
		return err
	}
	if wait > 0 {
		return &ThrottledError{RetryAfter: wait}
	}
	var cmpErr error
	if err := s.runHash(ctx, func() { cmpErr = bcrypt.CompareHashAndPassword([]byte(rec.Hash), []byte(current)) }); err != nil {
		s.releaseThrottle(ctx, keys, false)
		return err
	}
	if cmpErr != nil {
		return ErrInvalidCredentials // the reservation stays: a failure
	}
	s.releaseThrottle(ctx, keys, true)
	return s.setPassword(ctx, rec, next, id.SID)
}

// setPassword hashes next, stores it as rec's password if the account is
// still rec, and ends every session but the one whose handle is keep ("" =
// all) and every API token.
func (s *Service) setPassword(ctx context.Context, rec *userRecord, next, keep string) error {
	var h []byte
	var err error
	if slotErr := s.runHash(ctx, func() { h, err = bcrypt.GenerateFromPassword([]byte(next), s.cost) }); slotErr != nil {
		return slotErr
	}
	if err != nil {
		return fmt.Errorf("auth: hash password: %w", err)
	}
	if err := s.store.setUserHash(ctx, rec, string(h)); err != nil {
		return err
	}
	// A login that checked the old password while this ran re-reads the
	// account after creating its session and deletes it (Login); these
	// sweeps end everything that existed before.
	if _, err := s.RevokeOtherSessions(ctx, rec.ID, keep); err != nil {
		return err
	}
	_, err = s.store.revokeTokens(ctx, rec.ID)
	return err
}

// CreateToken makes an API token named name for the user of id, lasting
// ttl (at most auth.tokens.max_ttl), and returns it (shown once) with its
// info. An API token cannot mint tokens: the caller refuses that before.
func (s *Service) CreateToken(ctx context.Context, id credential.Identity, name string, ttl time.Duration) (string, TokenInfo, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "" || len(name) > maxTokenName || !utf8.ValidString(name) || strings.ContainsFunc(name, isControl):
		return "", TokenInfo{}, fmt.Errorf("%w: name must be 1 to %d printable characters", ErrInvalidTokenRequest, maxTokenName)
	case ttl < time.Second || ttl > s.maxTokenTTL:
		return "", TokenInfo{}, fmt.Errorf("%w: ttl must be between 1s and %s", ErrInvalidTokenRequest, s.maxTokenTTL)
	}
	now := s.now()
	end := now.Add(ttl).Truncate(time.Second)
	creator := ""
	if id.Method != credential.MethodToken {
		creator = id.SID // "" for the operator's tokens create
	}
	return s.store.createToken(ctx, User{ID: id.UserID, Email: id.Email}, name, end, now, creator)
}

// Tokens lists the user's live API tokens, newest first.
func (s *Service) Tokens(ctx context.Context, userID string) ([]TokenInfo, error) {
	ts, err := s.store.listTokens(ctx, s.store.rdb, userID, s.now())
	if err != nil {
		return nil, storeErr("session_get", err)
	}
	return ts, nil
}

// RevokeToken ends the user's API token whose id is tokenID (ErrNotFound
// for anything else).
func (s *Service) RevokeToken(ctx context.Context, userID, tokenID string) error {
	return s.store.revokeToken(ctx, userID, tokenID)
}

// created returns when the session of id was created (its info entry).
func (s *Service) created(ctx context.Context, id credential.Identity) (time.Time, error) {
	idx := s.store.indexKey(id.UserID)
	if id.Method == credential.MethodToken {
		idx = s.store.tokenIndexKey(id.UserID)
	}
	return s.store.createdAt(ctx, idx, id.UserID, id.SID)
}

// Groups returns the groups of a normalised email and its account: the
// union of auth.groups and the account's own, sorted.
func (s *Service) Groups(email string, stored []string) []string {
	id := credential.Identity{Groups: s.groups.merge(email, joinGroups(stored))}
	return id.GroupList()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkPasswordText refuses a password no account can have (longer than
// bcrypt's limit), before any work.
func checkPasswordText(pw string) error {
	if len(pw) > maxPasswordBytes {
		return fmt.Errorf("%w: longer than %d bytes", ErrWeakPassword, maxPasswordBytes)
	}
	return nil
}

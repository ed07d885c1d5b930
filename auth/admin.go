package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/config"
)

// UserInfo is an account as the operator commands show it.
type UserInfo struct {
	Email string `json:"email"`
	ID    string `json:"id"`
	// Groups are the effective groups: the account's and auth.groups'.
	Groups []string `json:"groups"`
	// AccountGroups are the groups set on the account by the operator.
	AccountGroups []string  `json:"account_groups"`
	SecondFactors []string  `json:"second_factors"`
	Disabled      bool      `json:"disabled"`
	Created       time.Time `json:"created"`
}

// ErrInvalidGroup is a group name outside [a-z0-9][a-z0-9._-]{0,63}.
var ErrInvalidGroup = fmt.Errorf("invalid group name")

// Users lists every account, sorted by email. On a Cluster it scans every
// master.
func (s *Service) Users(ctx context.Context) ([]UserInfo, error) {
	emails, err := s.store.scanUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]UserInfo, 0, len(emails))
	for _, email := range emails {
		u, err := s.User(ctx, email)
		if err == ErrUserNotFound {
			continue // deleted while listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// User returns the account of email.
func (s *Service) User(ctx context.Context, email string) (UserInfo, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return UserInfo{}, err
	}
	rec, err := s.store.getUser(ctx, email)
	if err != nil {
		return UserInfo{}, err
	}
	a, err := s.store.getAccount(ctx, rec.ID)
	if err != nil {
		return UserInfo{}, err
	}
	factors, err := s.factors.Factors(ctx, rec.ID)
	if err != nil {
		return UserInfo{}, err
	}
	return s.userInfo(rec, a, factors), nil
}

func (s *Service) userInfo(rec *userRecord, a *accountRecord, factors []string) UserInfo {
	u := UserInfo{Email: rec.Email, ID: rec.ID, AccountGroups: slices.Clone(a.Groups), Disabled: a.Disabled,
		Created: rec.Created, Groups: s.Groups(rec.Email, a.Groups), SecondFactors: factors}
	if u.AccountGroups == nil {
		u.AccountGroups = []string{}
	}
	if u.Groups == nil {
		u.Groups = []string{}
	}
	return u
}

// SetGroups adds and removes groups of the account of email and returns
// its account groups. The change and the rewrite of every live session and
// API token of the user are one transaction: it holds at the user's next
// request on every replica, and a login racing it sees either the old
// account and is rewritten, or the new one.
func (s *Service) SetGroups(ctx context.Context, email string, add, remove []string) ([]string, error) {
	for _, g := range append(slices.Clone(add), remove...) {
		if !config.ValidGroupName(g) {
			return nil, fmt.Errorf("%w: %q", ErrInvalidGroup, g)
		}
	}
	rec, err := s.userRecord(ctx, email)
	if err != nil {
		return nil, err
	}
	a, err := s.store.changeAccount(ctx, rec.ID, func(a *accountRecord) error {
		a.Email = rec.Email
		a.Groups = applyGroups(a.Groups, add, remove)
		return nil
	}, true, false)
	if err != nil {
		return nil, err
	}
	return a.Groups, nil
}

// SetDisabled disables or enables the account of email. Disabling ends
// every session and API token of the user in the same transaction; a
// disabled account's login fails like a wrong password.
func (s *Service) SetDisabled(ctx context.Context, email string, disabled bool) error {
	rec, err := s.userRecord(ctx, email)
	if err != nil {
		return err
	}
	_, err = s.store.changeAccount(ctx, rec.ID, func(a *accountRecord) error {
		a.Email = rec.Email
		a.Disabled = disabled
		return nil
	}, false, disabled)
	return err
}

// SetPassword sets the password of the account of email (the operator's
// way) and ends every session and API token of the user.
func (s *Service) SetPassword(ctx context.Context, email, password string) error {
	if err := checkPassword(password, s.minPassword); err != nil {
		return err
	}
	rec, err := s.userRecord(ctx, email)
	if err != nil {
		return err
	}
	return s.setPassword(ctx, rec, password, "")
}

// CreateTokenFor makes an API token for the account of email (the
// operator's `tokens create`).
func (s *Service) CreateTokenFor(ctx context.Context, email, name string, ttl time.Duration) (string, TokenInfo, error) {
	rec, err := s.userRecord(ctx, email)
	if err != nil {
		return "", TokenInfo{}, err
	}
	return s.CreateToken(ctx, credential.Identity{UserID: rec.ID, Email: rec.Email}, name, ttl)
}

// UserID returns the id of the account of email.
func (s *Service) UserID(ctx context.Context, email string) (string, error) {
	rec, err := s.userRecord(ctx, email)
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}

func (s *Service) userRecord(ctx context.Context, email string) (*userRecord, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	return s.store.getUser(ctx, email)
}

// scanUsers returns the emails of every account, sorted.
func (s *Store) scanUsers(ctx context.Context) ([]string, error) {
	var emails []string
	err := s.forEachAccountKey(ctx, func(_ context.Context, email string) error {
		emails = append(emails, email)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(emails)
	return slices.Compact(emails), nil
}

// AddUser creates an account without a session, whatever auth.registration
// and auth.allowed_email_domains say (the operator's way). The email and
// password rules still apply.
func (s *Service) AddUser(ctx context.Context, email, password string) (u User, err error) {
	defer func() { s.metrics.storeError(err) }()
	raw := email
	email, err = NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	if err := checkPassword(password, s.minPassword); err != nil {
		return User{}, err
	}
	if err := s.store.emailTaken(ctx, email, legacyEmailKey(raw)); err != nil {
		return User{}, err
	}
	rec, err := s.newUserRecord(ctx, email, password)
	if err != nil {
		return User{}, err
	}
	if err := s.store.createUser(ctx, rec); err != nil {
		return User{}, err
	}
	return rec.user(), nil
}

// DeleteUser deletes the account of email and ends all its sessions. On an
// error the account may still exist, and calling it again is safe.
// Errors: ErrInvalidEmail, ErrUserNotFound (also when the account was
// deleted and registered again meanwhile: the new one stays),
// ErrStoreUnavailable.
func (s *Service) DeleteUser(ctx context.Context, email string) (err error) {
	defer func() { s.metrics.storeError(err) }()
	raw := email
	email, err = NormalizeEmail(email)
	if err != nil {
		return err
	}
	rec, err := s.store.getUserOrLegacy(ctx, email, legacyEmailKey(raw))
	if err != nil {
		return err
	}
	// Sessions go first, while the account still exists: if this fails
	// (a timeout, very many sessions), a retry of DeleteUser or
	// RevokeSessions can still find the user id. Deleting the account
	// first would leave sessions that nothing can name until they expire.
	if _, err := s.store.revokeAll(ctx, rec.ID); err != nil {
		return err
	}
	// Only the account that was swept: one deleted and registered again in
	// between is another person's, with sessions of its own.
	delErr := s.store.deleteUser(ctx, rec.Email, rec.ID)
	if delErr != nil && !errors.Is(delErr, ErrUserNotFound) {
		return delErr
	}
	// A login past its password check may have created a session after the
	// first sweep. Login re-reads the account after creating its session:
	// one that still saw the account created its session before the
	// account was gone, so this second sweep finds it in the index; one
	// that did not deletes its own session.
	if _, err := s.store.revokeAll(ctx, rec.ID); err != nil {
		return err
	}
	if _, err := s.store.revokeTokens(ctx, rec.ID); err != nil {
		return err
	}
	// A new account of the same email gets a new id, so nothing would
	// ever use these again; they go so that no secret outlives its account.
	if err := s.factors.Reset(ctx, rec.ID); err != nil {
		return err
	}
	if err := s.store.deleteAccount(ctx, rec.ID); err != nil {
		return err
	}
	return delErr
}

// RevokeSessions ends every session of the account of email and returns
// how many were alive. Errors: ErrInvalidEmail, ErrUserNotFound,
// ErrStoreUnavailable.
func (s *Service) RevokeSessions(ctx context.Context, email string) (n int, err error) {
	defer func() { s.metrics.storeError(err) }()
	raw := email
	email, err = NormalizeEmail(email)
	if err != nil {
		return 0, err
	}
	rec, err := s.store.getUserOrLegacy(ctx, email, legacyEmailKey(raw))
	if err != nil {
		return 0, err
	}
	return s.store.revokeAll(ctx, rec.ID)
}

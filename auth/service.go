package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/config"
)

// cleanupTimeout bounds the store calls that tidy up after a request whose
// own context may already be cancelled (giving back a throttle reservation).
const cleanupTimeout = time.Second

// ServiceOptions are NewService's optional dependencies; the zero value is
// valid.
type ServiceOptions struct {
	// Now is the clock; nil means the store's clock (time.Now by default).
	Now func() time.Time
	// Logger receives problems that are not returned (a failed clean-up);
	// nil discards them.
	Logger *slog.Logger
	// Metrics counts logins, registrations and store errors; nil counts
	// nothing.
	Metrics *Metrics
	// Hashes caps concurrent bcrypt work, so a flood of logins queues
	// instead of starving the proxy of CPU. Share one between the Services
	// a process builds (a hot reload builds a new one) so that the cap
	// holds across them; nil means a limiter of its own, half the CPUs.
	Hashes *HashLimiter
	// Factors is the accounts' second factor; nil means the one cfg
	// configures (NewSecondFactorsFromConfig with the key of
	// auth.totp.encryption_key_file, so TOTP is off without one). The
	// command passes its own to give the embedded store an ephemeral key.
	Factors *SecondFactors
}

// Service is accounts and sessions: the operations behind /register,
// /login, /logout, /me, the proxy's session check and the users/sessions
// commands. It is safe for concurrent use.
type Service struct {
	store   *Store
	now     func() time.Time
	log     *slog.Logger
	metrics *Metrics

	hashes  *HashLimiter
	factors *SecondFactors
	// dummyHash is a real bcrypt hash of the configured cost, compared
	// against when the email has no account, so that an unknown email and
	// a wrong password cost the same time.
	dummyHash []byte

	cost             int
	minPassword      int
	registrationOpen bool
	allowedDomains   []string
	limits           throttleLimits
	window           time.Duration
	maxRegistrations int64 // per client address per window; 0 = no limit
	devices          deviceSigner
	ttl              time.Duration
	idle             time.Duration
	maxTokenTTL      time.Duration
	groups           fileGroups
}

// NewService returns a Service on store configured by cfg.Auth and
// cfg.Session. It computes one bcrypt hash of the configured cost, so it
// takes as long as a login.
func NewService(store *Store, cfg *config.Config, opts ServiceOptions) (*Service, error) {
	if store == nil || cfg == nil {
		return nil, errors.New("auth: NewService needs a store and a config")
	}
	// cfg passed config.Validate (Load runs it): nothing is checked again
	// here, so that `gatehouse check` and serve cannot disagree.
	a, sess := cfg.Auth, cfg.Session
	s := &Service{
		store:            store,
		now:              opts.Now,
		log:              opts.Logger,
		metrics:          opts.Metrics,
		cost:             a.BcryptCost,
		minPassword:      a.PasswordMinLength,
		registrationOpen: a.Registration == config.RegistrationOpen,
		allowedDomains:   a.AllowedEmailDomains,
		limits:           throttleLimitsFor(a.MaxLoginFailures),
		window:           time.Duration(a.LoginFailureWindow),
		maxRegistrations: int64(max(0, a.MaxRegistrations)),
		ttl:              time.Duration(sess.TTL),
		idle:             time.Duration(sess.IdleTimeout),
		maxTokenTTL:      time.Duration(a.Tokens.MaxTTL),
		groups:           compileGroups(a.Groups),
	}
	if s.now == nil {
		s.now = store.now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.hashes = opts.Hashes
	if s.hashes == nil {
		s.hashes = NewHashLimiter(0)
	}
	factors, err := defaultFactors(store, cfg, opts)
	if err != nil {
		return nil, err
	}
	s.factors = factors

	var pw [18]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, fmt.Errorf("auth: dummy password: %w", err)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(base64.RawURLEncoding.EncodeToString(pw[:])), s.cost)
	if err != nil {
		return nil, fmt.Errorf("auth: dummy hash: %w", err)
	}
	s.dummyHash = h
	return s, nil
}

// Authenticate returns the identity of a session or API token and, for a
// session, restarts its idle timer. It is the proxy's hot path, kept lean
// on purpose: one Redis command (GETEX for a session, GET for a token; no
// pipeline, no script), no lock, and of its own allocations only the key
// (go-redis adds about eight) and, for a user that auth.groups names, the
// merged groups. It returns ErrSessionNotFound (malformed, unknown,
// expired, revoked or altered token) or an error wrapping
// ErrStoreUnavailable; never the one for the other.
func (s *Service) Authenticate(ctx context.Context, tok string) (credential.Identity, error) {
	kind, userID, endUnix, ok := credential.Parse(tok)
	if !ok {
		return credential.Identity{}, ErrSessionNotFound
	}
	end := time.Unix(endUnix, 0)
	left := end.Sub(s.now())
	if left < time.Millisecond {
		// Past its absolute end: no need to ask Redis, whose copy has
		// expired too.
		return credential.Identity{}, ErrSessionNotFound
	}
	var sv sessionValue
	var sid string
	var err error
	if kind == credential.APIToken {
		sv, sid, ok, err = s.store.getToken(ctx, userID, tok)
	} else {
		sv, sid, ok, err = s.store.touchSession(ctx, userID, tok, sessionTTL(s.idle, left))
	}
	if err != nil {
		s.metrics.storeError(err)
		return credential.Identity{}, err
	}
	if !ok {
		return credential.Identity{}, ErrSessionNotFound
	}
	id := credential.Identity{UserID: userID, Email: sv.Email, Groups: s.groups.merge(sv.Email, sv.Groups),
		MFA: sv.MFA && sv.Method != credential.MethodToken, Method: sv.Method, SID: sid, Expires: end}
	if id.MFA {
		id.SecondFactor = sv.Factor
	}
	return id, nil
}

// Register creates an account and a first session for it, returning the
// user and the session token. Errors: ErrRegistrationClosed (also for a
// domain outside auth.allowed_email_domains), ErrInvalidEmail,
// ErrWeakPassword, ErrEmailTaken, ErrStoreUnavailable.
func (s *Service) Register(ctx context.Context, email, password string) (User, string, error) {
	return s.RegisterReplacing(ctx, email, password, "")
}

// RegisterReplacing is Register that also deletes the session of
// previousToken (the one the client brought along), as every registration
// must. previousToken may be "" or anything a client sent: it is only used
// when it is a token, and never adopted.
func (s *Service) RegisterReplacing(ctx context.Context, email, password, previousToken string) (User, string, error) {
	return s.RegisterWith(ctx, LoginRequest{Email: email, Password: password, Previous: previousToken})
}

// RegisterFrom is RegisterReplacing for a client at clientIP.
func (s *Service) RegisterFrom(ctx context.Context, email, password, clientIP, previousToken string) (User, string, error) {
	return s.RegisterWith(ctx, LoginRequest{Email: email, Password: password, ClientIP: clientIP, Previous: previousToken})
}

// RegisterWith is RegisterReplacing with what the first session records
// about its client (shown in GET /me/sessions), as LoginWith has. The
// attempts of req.ClientIP are limited by auth.max_registrations per
// auth.login_failure_window (*ThrottledError); "" is not limited (the
// operator's own tools). An email that already has an account is
// ErrEmailTaken before any hashing, and a full hash queue is ErrOverloaded.
func (s *Service) RegisterWith(ctx context.Context, req LoginRequest) (u User, tok string, err error) {
	email, password, clientIP, previousToken := req.Email, req.Password, req.ClientIP, req.Previous
	defer func() {
		s.metrics.registration(err)
		s.metrics.storeError(err)
	}()
	if !s.registrationOpen {
		return User{}, "", ErrRegistrationClosed
	}
	// Shed load first: under a registration flood most requests end here,
	// before the email is parsed or the store asked, so answering them
	// costs next to nothing.
	if s.hashes.create.full() {
		return User{}, "", ErrOverloaded
	}
	raw := email
	email, err = NormalizeEmail(email)
	if err != nil {
		return User{}, "", err
	}
	if !emailDomainAllowed(email, s.allowedDomains) {
		return User{}, "", fmt.Errorf("%w: email domain not allowed", ErrRegistrationClosed)
	}
	if err := checkPassword(password, s.minPassword); err != nil {
		return User{}, "", err
	}
	if err := s.registrationAllowed(ctx, clientIP); err != nil {
		return User{}, "", err
	}
	if err := s.store.emailTaken(ctx, email, legacyEmailKey(raw)); err != nil {
		return User{}, "", err
	}
	rec, err := s.newUserRecord(ctx, email, password)
	if err != nil {
		return User{}, "", err
	}
	if err := s.store.createUser(ctx, rec); err != nil {
		return User{}, "", err
	}
	if err := s.endPrevious(ctx, previousToken); err != nil {
		return User{}, "", err
	}
	if err := s.store.putAccount(ctx, rec.ID, &accountRecord{Email: rec.Email}); err != nil {
		return User{}, "", err
	}
	tok, err = s.newSession(ctx, rec.user(), newSessionMeta{Method: credential.MethodPassword, IP: req.ClientIP, UserAgent: req.UserAgent})
	if err != nil {
		return User{}, "", err
	}
	return rec.user(), tok, nil
}

// Login checks email and password and creates a new session, returning the
// user and its token. It first deletes the session of previousToken (the one
// the client brought along, if it is a token at all): a token held before
// logging in is never valid afterwards, and it is never adopted.
//
// Errors: ErrInvalidEmail, ErrWeakPassword (more than 72 bytes: refused,
// never cut), *ThrottledError (errors.Is ErrTooManyAttempts; decided
// before any bcrypt work, even for the right password),
// ErrInvalidCredentials (the same error, and the same bcrypt work, for an
// unknown email and a wrong password), ErrStoreUnavailable, or the
// context's error while waiting for a hash slot; ErrOverloaded when the
// queue for password checks is full.
func (s *Service) Login(ctx context.Context, email, password, clientIP, previousToken string) (u User, tok string, err error) {
	return s.LoginWith(ctx, LoginRequest{Email: email, Password: password, ClientIP: clientIP, Previous: previousToken})
}

// LoginRequest is what a login (or a registration) brings: the credentials, the client it came
// from (counted by the throttle, shown in GET /me/sessions) and the token
// it carried, which the login ends.
type LoginRequest struct {
	Email, Password string
	ClientIP        string
	UserAgent       string
	Previous        string
	// Devices are the device cookies the browser presented (see
	// device.go): one valid for this email replaces the per-email counter
	// over all addresses by a counter of that device.
	Devices []string
	// Code is the second factor (a TOTP or recovery code) of an account
	// that has one; "" for none.
	Code string
}

// LoginWith is Login with everything a session records about its client,
// and the second factor: for an account with one, a login without Code
// returns an error that is ErrMFARequired and makes no session (the
// password was right, so the attempt does not count as a failure, but it
// does not reset the throttle either: a known password must not wipe the
// count of wrong codes); a wrong Code is ErrInvalidCredentials, counted
// like a wrong password; a right one makes a session with MFA set.
func (s *Service) LoginWith(ctx context.Context, req LoginRequest) (u User, tok string, err error) {
	email, password, clientIP, devices := req.Email, req.Password, req.ClientIP, req.Devices
	defer func() {
		s.metrics.login(err)
		s.metrics.storeError(err)
	}()
	raw := email
	email, err = NormalizeEmail(email)
	if err != nil {
		return User{}, "", err
	}
	if err := checkLoginPassword(password); err != nil {
		return User{}, "", err
	}

	keys, limits := s.loginThrottle(ctx, email, clientIP, devices)
	wait, err := s.store.throttleCheck(ctx, keys, limits, s.window)
	if err != nil {
		return User{}, "", err
	}
	if wait == 0 {
		wait, err = s.store.throttleReserve(ctx, keys, limits, s.window)
		if err != nil {
			return User{}, "", err
		}
	}
	if wait > 0 {
		return User{}, "", &ThrottledError{RetryAfter: wait}
	}
	// From here the attempt holds a reservation in the three counters. A
	// failed password check keeps it; anything else gives it back.
	keep := false
	defer func() {
		if !keep {
			s.releaseThrottle(ctx, keys, err == nil)
		}
	}()

	rec, err := s.store.getUserOrLegacy(ctx, email, legacyEmailKey(raw))
	if err != nil && !errors.Is(err, ErrUserNotFound) {
		return User{}, "", err
	}
	hash := s.dummyHash
	if rec != nil {
		hash = []byte(rec.Hash)
	}
	var cmpErr error
	if err := s.runHash(ctx, func() { cmpErr = bcrypt.CompareHashAndPassword(hash, []byte(password)) }); err != nil {
		return User{}, "", err
	}
	if rec == nil || cmpErr != nil {
		if rec != nil && !errors.Is(cmpErr, bcrypt.ErrMismatchedHashAndPassword) {
			s.log.Error("auth: stored password hash unusable", "user_id", rec.ID, "err", cmpErr)
		}
		keep = true
		return User{}, "", ErrInvalidCredentials
	}

	// A disabled account answers exactly as a wrong password, after the same
	// bcrypt work: before the second factor is asked for (mfa_required
	// would tell the password was right) and before the sessions the
	// request carried are ended (a wrong password ends none).
	if a, err := s.store.getAccount(ctx, rec.ID); err != nil {
		return User{}, "", err
	} else if a.Disabled {
		keep = true
		return User{}, "", ErrInvalidCredentials
	}

	mfa, err := s.checkSecondFactor(ctx, rec, req.Code)
	if errors.Is(err, ErrInvalidCredentials) {
		keep = true
	}
	if err != nil {
		return User{}, "", err
	}

	if err := s.endPrevious(ctx, req.Previous); err != nil {
		return User{}, "", err
	}
	tok, err = s.newSession(ctx, rec.user(), newSessionMeta{MFA: mfa, Factor: credential.FactorOTP, Method: credential.MethodPassword, IP: clientIP, UserAgent: req.UserAgent})
	if errors.Is(err, ErrInvalidCredentials) {
		// A disabled account: the same answer, after the same bcrypt work,
		// as a wrong password, and counted like one.
		keep = true
		return User{}, "", err
	}
	if err != nil {
		return User{}, "", err
	}
	// DeleteUser may have removed the account, or SetPassword changed its
	// password and swept its sessions, while bcrypt ran, before this
	// session existed. Look again, so that neither a deleted account nor
	// the old password walks away with a fresh session.
	again, err := s.store.getUser(ctx, rec.Email)
	if err != nil || again.ID != rec.ID || again.Hash != rec.Hash {
		_, delErr := s.store.deleteSession(ctx, rec.ID, tok)
		if err == nil || errors.Is(err, ErrUserNotFound) {
			err = ErrInvalidCredentials
		}
		if delErr != nil {
			s.metrics.storeError(delErr)
			s.log.Warn("auth: could not delete the session of a deleted account", "err", delErr)
		}
		return User{}, "", err
	}
	if cost, err := bcrypt.Cost(hash); err == nil && cost != s.cost {
		s.upgradeHash(ctx, rec, password)
	}
	return rec.user(), tok, nil
}

// upgradeHash rehashes the password of rec, which has just been checked, at
// the configured cost, after an operator changed auth.bcrypt_cost. Without
// it, logins with an old-cost account take measurably longer or shorter
// than the dummy hash of an unknown email, which tells who has an account.
// The record is replaced only if it is still the one read (see
// Store.replaceUserHash). A failure costs nothing but a later retry: it is
// logged, and never fails the login.
func (s *Service) upgradeHash(ctx context.Context, rec *userRecord, password string) {
	var h []byte
	var err error
	if slotErr := s.runNewHash(ctx, func() { h, err = bcrypt.GenerateFromPassword([]byte(password), s.cost) }); slotErr != nil {
		err = slotErr
	}
	if err == nil {
		err = s.store.replaceUserHash(ctx, rec, string(h))
	}
	if err != nil {
		s.metrics.storeError(err)
		s.log.Warn("auth: could not rehash a password at the configured bcrypt cost", "user_id", rec.ID, "err", err)
	}
}

// releaseThrottle gives a throttle reservation back (see throttle.go). It
// runs after the request's own work, possibly with its context cancelled, so
// it gets a short context of its own; a failure only costs the user one
// attempt of the window, and is logged.
func (s *Service) releaseThrottle(ctx context.Context, keys throttleKeys, success bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := s.store.throttleRelease(ctx, keys, success); err != nil {
		s.metrics.storeError(err)
		s.log.Warn("auth: could not release a login throttle reservation", "err", err)
	}
}

// Logout ends the session of tok; with all, every session of its user.
// A token that is malformed, unknown or expired is a success: there is
// nothing to end. Only a live session can end its user's other sessions,
// so a forged token naming someone's user id cannot log them out.
func (s *Service) Logout(ctx context.Context, tok string, all bool) (err error) {
	defer func() { s.metrics.storeError(err) }()
	userID, endUnix, ok := parseToken(tok)
	if !ok {
		return nil
	}
	if all && time.Unix(endUnix, 0).After(s.now()) {
		_, live, err := s.store.getSession(ctx, userID, tok)
		if err != nil {
			return err
		}
		if live {
			// revokeAll deleted this session too.
			_, err := s.store.revokeAll(ctx, userID)
			return err
		}
	}
	_, err = s.store.deleteSession(ctx, userID, tok)
	return err
}

// endPrevious deletes the session a client brought to a login or
// registration, so that a token planted before logging in (session
// fixation) is never valid afterwards.
func (s *Service) endPrevious(ctx context.Context, previousToken string) error {
	userID, _, ok := parseToken(previousToken)
	if !ok {
		return nil
	}
	_, err := s.store.deleteSession(ctx, userID, previousToken)
	return err
}

// newSession creates a session for u lasting session.ttl (rounded down to
// whole seconds, which the token carries).
func (s *Service) newSession(ctx context.Context, u User, meta newSessionMeta) (string, error) {
	now := s.now()
	end := now.Add(s.ttl).Truncate(time.Second)
	return s.store.createSession(ctx, u, end, now, s.idle, meta)
}

// newUserRecord hashes password (waiting for a hash slot) for a new
// account of a normalised email.
func (s *Service) newUserRecord(ctx context.Context, email, password string) (*userRecord, error) {
	id, err := newUserID()
	if err != nil {
		return nil, fmt.Errorf("auth: user id: %w", err)
	}
	var h []byte
	if err := s.runNewHash(ctx, func() { h, err = bcrypt.GenerateFromPassword([]byte(password), s.cost) }); err != nil {
		return nil, err
	}
	if err != nil {
		// Length was checked before; anything else is unexpected.
		return nil, fmt.Errorf("auth: hash password: %w", err)
	}
	return &userRecord{ID: id, Email: email, Hash: string(h), Created: s.now().UTC()}, nil
}

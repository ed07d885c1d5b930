package auth

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of gatehouse_login_attempts_total{result}. "error" is anything
// else: a request cancelled while waiting for a hash slot, a corrupt account.
var loginResults = []string{
	"success", "invalid_credentials", "throttled", "invalid_request", "store_unavailable", "overloaded", "error",
}

// Values of gatehouse_registrations_total{result}.
var registrationResults = []string{
	"success", "invalid_email", "weak_password", "registration_closed", "email_taken", "throttled", "store_unavailable", "overloaded", "error",
}

// storeOps are the values of gatehouse_session_store_errors_total{op}.
var storeOps = []string{
	"authenticate", "session_create", "session_get", "session_delete", "revoke",
	"user_get", "user_create", "user_update", "user_delete", "user_migrate", "device_key", "throttle", "ping",
}

// Metrics are the auth counters. A nil *Metrics counts nothing. No label
// ever holds a user id, an email or an address.
type Metrics struct {
	logins        map[string]prometheus.Counter
	registrations map[string]prometheus.Counter
	storeErrors   map[string]prometheus.Counter
}

// NewMetrics creates the counters and registers them with reg (nil: not
// registered, still counted). Every label value is created up front, so a
// dashboard sees zeros rather than gaps, and the hot path does a map
// lookup instead of WithLabelValues.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_login_attempts_total",
		Help: "Login attempts by result.",
	}, []string{"result"})
	regs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_registrations_total",
		Help: "Registration attempts by result.",
	}, []string{"result"})
	storeErrs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_session_store_errors_total",
		Help: "Session store operations that failed (Redis unreachable, timed out or erroring), by operation.",
	}, []string{"op"})
	if reg != nil {
		reg.MustRegister(logins, regs, storeErrs)
	}
	m := &Metrics{
		logins:        map[string]prometheus.Counter{},
		registrations: map[string]prometheus.Counter{},
		storeErrors:   map[string]prometheus.Counter{},
	}
	for _, r := range loginResults {
		m.logins[r] = logins.WithLabelValues(r)
	}
	for _, r := range registrationResults {
		m.registrations[r] = regs.WithLabelValues(r)
	}
	for _, op := range storeOps {
		m.storeErrors[op] = storeErrs.WithLabelValues(op)
	}
	return m
}

func (m *Metrics) login(err error) {
	if m != nil {
		m.logins[loginResult(err)].Inc()
	}
}

func (m *Metrics) registration(err error) {
	if m != nil {
		m.registrations[registrationResult(err)].Inc()
	}
}

func loginResult(err error) string {
	switch {
	case err == nil:
		return "success"
	case errors.Is(err, ErrInvalidCredentials):
		return "invalid_credentials"
	case errors.Is(err, ErrTooManyAttempts):
		return "throttled"
	case errors.Is(err, ErrInvalidEmail), errors.Is(err, ErrWeakPassword):
		return "invalid_request"
	case errors.Is(err, ErrStoreUnavailable):
		return "store_unavailable"
	case errors.Is(err, ErrOverloaded):
		return "overloaded"
	default:
		return "error"
	}
}

func registrationResult(err error) string {
	switch {
	case err == nil:
		return "success"
	case errors.Is(err, ErrInvalidEmail):
		return "invalid_email"
	case errors.Is(err, ErrWeakPassword):
		return "weak_password"
	case errors.Is(err, ErrRegistrationClosed):
		return "registration_closed"
	case errors.Is(err, ErrEmailTaken):
		return "email_taken"
	case errors.Is(err, ErrTooManyAttempts):
		return "throttled"
	case errors.Is(err, ErrStoreUnavailable):
		return "store_unavailable"
	case errors.Is(err, ErrOverloaded):
		return "overloaded"
	default:
		return "error"
	}
}

// storeError counts err if it is a store error.
func (m *Metrics) storeError(err error) {
	if m == nil || err == nil {
		return
	}
	if c, ok := m.storeErrors[storeOp(err)]; ok {
		c.Inc()
	}
}

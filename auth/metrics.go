package auth

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// Values of gatehouse_login_attempts_total{result}. "error" is anything
// else: a request cancelled while waiting for a hash slot, a corrupt account.
var loginResults = []string{
	"success", "invalid_credentials", "too_many_attempts", "invalid_email", "weak_password", "mfa_required",
	"invalid_code", "store_unavailable", "overloaded", "error",
}

// Values of gatehouse_registrations_total{result}.
var registrationResults = []string{
	"success", "invalid_email", "weak_password", "registration_closed", "email_taken", "throttled", "store_unavailable", "overloaded", "error",
}

// storeOps are the values of gatehouse_session_store_errors_total{op}.
var storeOps = []string{
	"authenticate", "session_create", "session_get", "session_delete", "revoke",
	"user_get", "user_create", "user_update", "user_delete", "user_migrate", "device_key", "throttle", "ping",
	"totp", "passkey", "factors",
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
		count(m.logins, loginResult(err))
	}
}

// count increments the counter of label, or of "error" for a label the
// set was not created with.
func count(cs map[string]prometheus.Counter, label string) {
	if c, ok := cs[label]; ok {
		c.Inc()
		return
	}
	cs["error"].Inc()
}

func (m *Metrics) registration(err error) {
	if m != nil {
		count(m.registrations, registrationResult(err))
	}
}

// resultLabel is the result label of err: "success", the error's code (the
// one mapping of errors to codes, errorCode), or "error" for anything that
// has no code of its own.
func resultLabel(err error) string {
	if err == nil {
		return "success"
	}
	if c := errorCode(err); c != apierror.InternalError {
		return string(apierror.WireCode(c))
	}
	return "error"
}

func loginResult(err error) string        { return resultLabel(err) }
func registrationResult(err error) string { return resultLabel(err) }

// storeError counts err if it is a store error.
func (m *Metrics) storeError(err error) {
	if m == nil || err == nil {
		return
	}
	if c, ok := m.storeErrors[storeOp(err)]; ok {
		c.Inc()
	}
}

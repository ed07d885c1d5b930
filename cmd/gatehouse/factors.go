package main

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/gatehouse-dev/gatehouse/auth"
	"github.com/gatehouse-dev/gatehouse/config"
)

// ephemeralTOTP is the TOTP key of a gateway on the embedded store without
// auth.totp.encryption_key_file: made once per process, so that a reload
// does not make every enrolled secret unreadable (the embedded store's data
// lives exactly as long as the process, and the key with it).
type ephemeralTOTP struct {
	once sync.Once
	box  *auth.SecretBox
	err  error
}

func (e *ephemeralTOTP) get(logger *slog.Logger) (*auth.SecretBox, error) {
	e.once.Do(func() {
		e.box, e.err = auth.NewEphemeralSecretBox()
		if e.err == nil {
			logger.Warn("TOTP secrets are sealed with a per-process key (no auth.totp.encryption_key_file): the embedded store forgets them at exit anyway; with a real Redis set the key file")
		}
	})
	return e.box, e.err
}

// secondFactors builds the second factors cfg configures: TOTP sealed with
// the configured key, else with the embedded store the process's ephemeral
// key (eph; nil for the operator commands, which need a real Redis), else
// off (enrolment answers 403, `check` warns); passkeys for cfg's relying
// party.
func secondFactors(store *auth.Store, cfg *config.Config, eph *ephemeralTOTP, logger *slog.Logger) (*auth.SecondFactors, error) {
	var box *auth.SecretBox
	var err error
	switch {
	case len(cfg.Auth.TOTP.EncryptionKey) > 0:
		box, err = auth.NewSecretBox(cfg.Auth.TOTP.EncryptionKey)
	case cfg.Redis.Embedded() && eph != nil:
		box, err = eph.get(logger)
	}
	if err != nil {
		return nil, fmt.Errorf("totp key: %w", err)
	}
	return auth.NewSecondFactorsFromConfig(store, cfg, box, nil)
}

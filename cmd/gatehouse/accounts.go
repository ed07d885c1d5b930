package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/gatehouse-dev/gatehouse/auth"
)

// accountsTimeout bounds an operator command against the store.
const accountsTimeout = 30 * time.Second

// accounts runs `users add|delete` and `sessions revoke` against the
// configured store.
func accounts(ctx context.Context, e env, sub, path, email string) error {
	if sub != "users add" && sub != "users delete" && sub != "sessions revoke" {
		return usageError{fmt.Sprintf("unknown command %q\n%s", sub, usage)}
	}
	email, err := auth.NormalizeEmail(email)
	if err != nil {
		return accountError(err)
	}
	cfg, err := e.loadConfig(path)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return errReported
	}
	if cfg.Redis.Embedded() {
		return errors.New("redis.url is empty: the embedded store lives inside the running gateway and cannot be reached from another process; configure redis.url (or sentinel/cluster)")
	}
	// The operator commands log only warnings, and only to stderr.
	logger := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	redisLogTarget.Store(logger)
	rdb, closeStore, err := auth.OpenRedis(cfg.Redis, logger)
	if err != nil {
		return fmt.Errorf("open session store: %w", err)
	}
	defer closeStore()
	svc, err := auth.NewService(auth.NewStore(rdb, cfg.Redis.KeyPrefix), cfg, auth.ServiceOptions{Logger: logger})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, accountsTimeout)
	defer cancel()

	switch sub {
	case "users add":
		password, err := readPassword(e)
		if err != nil {
			return err
		}
		u, err := svc.AddUser(ctx, email, password)
		if err != nil {
			return accountError(err)
		}
		fmt.Fprintf(e.stdout, "created user %s (%s)\n", u.Email, u.ID)
	case "users delete":
		if err := svc.DeleteUser(ctx, email); err != nil {
			return accountError(err)
		}
		fmt.Fprintf(e.stdout, "deleted user %s and ended its sessions\n", email)
	case "sessions revoke":
		n, err := svc.RevokeSessions(ctx, email)
		if err != nil {
			return accountError(err)
		}
		fmt.Fprintf(e.stdout, "ended %d sessions of %s\n", n, email)
	}
	return nil
}

// accountError turns the service's sentinels into messages for an operator.
func accountError(err error) error {
	switch {
	case errors.Is(err, auth.ErrEmailTaken):
		return errors.New("an account with this email already exists")
	case errors.Is(err, auth.ErrInvalidEmail):
		return errors.New("the email address is not valid")
	case errors.Is(err, auth.ErrWeakPassword):
		return errors.New("the password is too short or longer than 72 bytes")
	case errors.Is(err, auth.ErrUserNotFound):
		return errors.New("no account has this email")
	case errors.Is(err, auth.ErrStoreUnavailable):
		return fmt.Errorf("the session store is unavailable: %w", err)
	}
	return err
}

// readPassword reads one line from standard input, or, on a terminal,
// prompts for it twice without echo.
func readPassword(e env) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(e.stderr, "Repeat: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords do not match")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}

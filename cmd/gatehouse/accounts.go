package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/gatehouse-dev/gatehouse/auth"
	"github.com/gatehouse-dev/gatehouse/config"
)

// accountsTimeout bounds an operator command against the store.
const accountsTimeout = 30 * time.Second

// accountCommands are the operator commands and the positional arguments
// each takes.
var accountCommands = map[string][]string{
	"users add":          {"EMAIL"},
	"users delete":       {"EMAIL"},
	"users list":         {},
	"users migrate":      {},
	"users show":         {"EMAIL"},
	"users groups":       {"EMAIL"},
	"users disable":      {"EMAIL"},
	"users enable":       {"EMAIL"},
	"users set-password": {"EMAIL"},
	"users reset-2fa":    {"EMAIL"},
	"sessions revoke":    {"EMAIL"},
	"tokens create":      {"EMAIL", "NAME"},
	"tokens list":        {"EMAIL"},
	"tokens revoke":      {"EMAIL", "ID"},
}

// accountArgs is an operator command's command line.
type accountArgs struct {
	config string
	json   bool
	ttl    time.Duration
	pos    []string
	add    []string // users groups +GROUP
	remove []string // users groups -GROUP
}

// parseAccountArgs reads -config FILE, -json and -ttl D (before or after
// the positional arguments, as -flag value or -flag=value, up to a "--");
// for `users groups`, +NAME adds and -NAME removes a group.
func (e env) parseAccountArgs(sub string, args []string) (accountArgs, error) {
	want, ok := accountCommands[sub]
	if !ok {
		return accountArgs{}, usageError{fmt.Sprintf("unknown command %q\n%s", sub, usage)}
	}
	a := accountArgs{config: "config.yaml", ttl: 720 * time.Hour}
	if v, ok := e.lookup("GATEHOUSE_CONFIG"); ok && v != "" {
		a.config = v
	}
	endOfFlags := false
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-"), "=")
		if arg == "--" && !endOfFlags {
			// After "--" nothing is a flag: "users groups EMAIL -- -json"
			// removes a group called json.
			endOfFlags = true
			continue
		}
		if endOfFlags && sub == "users groups" && strings.HasPrefix(arg, "-") {
			a.remove = append(a.remove, arg[1:])
			continue
		}
		if !strings.HasPrefix(arg, "-") || endOfFlags {
			if sub == "users groups" && strings.HasPrefix(arg, "+") {
				a.add = append(a.add, arg[1:])
				continue
			}
			a.pos = append(a.pos, arg)
			continue
		}
		needValue := func() (string, error) {
			if hasValue {
				return value, nil
			}
			if i+1 >= len(args) {
				return "", usageError{fmt.Sprintf("%s: -%s needs a value\n%s", sub, name, usage)}
			}
			i++
			return args[i], nil
		}
		switch {
		case name == "h" || name == "help":
			return a, errHelp
		case name == "config":
			v, err := needValue()
			if err != nil {
				return a, err
			}
			a.config = v
		case name == "json" && !hasValue:
			a.json = true
		case name == "ttl" && sub == "tokens create":
			v, err := needValue()
			if err != nil {
				return a, err
			}
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return a, usageError{fmt.Sprintf("%s: -ttl %q is not a positive duration such as 720h\n%s", sub, v, usage)}
			}
			a.ttl = d
		case sub == "users groups" && strings.HasPrefix(arg, "-") && !strings.HasPrefix(arg, "--"):
			a.remove = append(a.remove, arg[1:])
		default:
			return a, usageError{fmt.Sprintf("%s: unknown flag %s\n%s", sub, arg, usage)}
		}
	}
	if sub == "users groups" && len(a.pos) > len(want) {
		return a, usageError{fmt.Sprintf("%s: %q: a change is +GROUP (add) or -GROUP (remove)\n%s", sub, a.pos[len(want)], usage)}
	}
	if len(a.pos) != len(want) {
		return a, usageError{fmt.Sprintf("%s needs %s\n%s", sub, strings.Join(append([]string{""}, want...), " ")[1:], usage)}
	}
	return a, nil
}

// accounts runs an operator command against the configured store.
func accounts(ctx context.Context, e env, sub string, args []string) error {
	a, err := e.parseAccountArgs(sub, args)
	if err != nil {
		return err
	}
	if len(a.pos) > 0 {
		if a.pos[0], err = auth.NormalizeEmail(a.pos[0]); err != nil {
			return accountError(err)
		}
	}
	for _, g := range append(slices.Clone(a.add), a.remove...) {
		if !config.ValidGroupName(g) {
			return fmt.Errorf("%q is not a group name (lower-case letters, digits, '.', '_', '-'; at most 64)", g)
		}
	}
	cfg, err := e.loadConfig(a.config)
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
	store := auth.NewStore(rdb, cfg.Redis.KeyPrefix)
	factors, err := secondFactors(store, cfg, nil, logger)
	if err != nil {
		return err
	}
	svc, err := auth.NewService(store, cfg, auth.ServiceOptions{Logger: logger, Factors: factors})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, accountsTimeout)
	defer cancel()
	if err := runAccountCommand(ctx, e, svc, sub, a); err != nil {
		return accountError(err)
	}
	return nil
}

// runAccountCommand runs one parsed operator command.
func runAccountCommand(ctx context.Context, e env, svc *auth.Service, sub string, a accountArgs) error {
	email := ""
	if len(a.pos) > 0 {
		email = a.pos[0]
	}
	switch sub {
	case "users add":
		password, err := readPassword(e)
		if err != nil {
			return err
		}
		u, err := svc.AddUser(ctx, email, password)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "created user %s (%s)\n", u.Email, u.ID)
	case "users delete":
		if err := svc.DeleteUser(ctx, email); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "deleted user %s and ended its sessions and tokens\n", email)
	case "users list":
		us, err := svc.Users(ctx)
		if err != nil {
			return err
		}
		return printUsers(e.stdout, us, a.json)
	case "users show":
		return showUser(ctx, e.stdout, svc, email, a.json)
	case "users migrate":
		m, err := svc.MigrateEmails(ctx)
		if err != nil {
			return err
		}
		if a.json {
			return writeJSON(e.stdout, m)
		}
		fmt.Fprintf(e.stdout, "scanned %d account keys, moved %d under their canonical email\n", m.Scanned, m.Moved)
		for _, k := range m.Collided {
			fmt.Fprintf(e.stdout, "collision: %s stays; another account holds its canonical email\n", k)
		}
		for _, k := range m.Invalid {
			fmt.Fprintf(e.stdout, "invalid: %s is no longer a valid email and cannot sign in; delete it\n", k)
		}
	case "users groups":
		var groups []string
		if len(a.add)+len(a.remove) == 0 {
			u, err := svc.User(ctx, email)
			if err != nil {
				return err
			}
			groups = u.AccountGroups
		} else {
			var err error
			if groups, err = svc.SetGroups(ctx, email, a.add, a.remove); err != nil {
				return err
			}
		}
		u, err := svc.User(ctx, email)
		if err != nil {
			return err
		}
		if a.json {
			return writeJSON(e.stdout, map[string]any{"email": email, "account_groups": nonNil(groups), "groups": u.Groups})
		}
		fmt.Fprintf(e.stdout, "account groups: %s\neffective groups (with auth.groups): %s\n", listOrDash(groups), listOrDash(u.Groups))
	case "users disable", "users enable":
		disable := sub == "users disable"
		if err := svc.SetDisabled(ctx, email, disable); err != nil {
			return err
		}
		if disable {
			fmt.Fprintf(e.stdout, "disabled %s and ended its sessions and tokens\n", email)
		} else {
			fmt.Fprintf(e.stdout, "enabled %s\n", email)
		}
	case "users set-password":
		password, err := readPassword(e)
		if err != nil {
			return err
		}
		if err := svc.SetPassword(ctx, email, password); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "set the password of %s and ended its sessions and tokens\n", email)
	case "users reset-2fa":
		n, err := svc.ResetSecondFactors(ctx, email)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "removed the second factors of %s (TOTP, recovery codes, passkeys) and ended its %d sessions\n", email, n)
	case "sessions revoke":
		n, err := svc.RevokeSessions(ctx, email)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "ended %d sessions of %s\n", n, email)
	case "tokens create":
		tok, info, err := svc.CreateTokenFor(ctx, email, a.pos[1], a.ttl)
		if err != nil {
			return err
		}
		if a.json {
			return writeJSON(e.stdout, map[string]any{"token": tok, "id": info.ID, "name": info.Name,
				"created_at": info.CreatedAt, "expires_at": info.ExpiresAt})
		}
		// The token alone on stdout, so that a script can capture it;
		// what it is goes to stderr.
		fmt.Fprintln(e.stdout, tok)
		fmt.Fprintf(e.stderr, "token %s (%s) for %s, expires %s; it is shown only now\n", info.ID, info.Name, email, info.ExpiresAt.Format(time.RFC3339))
	case "tokens list":
		id, err := svc.UserID(ctx, email)
		if err != nil {
			return err
		}
		ts, err := svc.Tokens(ctx, id)
		if err != nil {
			return err
		}
		return printTokens(e.stdout, ts, a.json)
	case "tokens revoke":
		id, err := svc.UserID(ctx, email)
		if err != nil {
			return err
		}
		if err := svc.RevokeToken(ctx, id, a.pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked token %s of %s\n", a.pos[1], email)
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
		return errors.New("the password is too short, longer than 72 bytes, or not valid UTF-8 text")
	case errors.Is(err, auth.ErrUserNotFound):
		return errors.New("no account has this email")
	case errors.Is(err, auth.ErrStoreUnavailable):
		return fmt.Errorf("the session store is unavailable: %w", err)
	case errors.Is(err, auth.ErrNotFound):
		return errors.New("no such token of this account")
	case errors.Is(err, auth.ErrInvalidTokenRequest), errors.Is(err, auth.ErrInvalidGroup):
		return err
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

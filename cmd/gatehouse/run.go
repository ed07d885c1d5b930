package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/gatehouse-dev/gatehouse/config"
)

// usageError is wrong usage of the command line (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage:
  gatehouse [serve] [-config FILE]
  gatehouse check -config FILE
  gatehouse explain -config FILE METHOD URL
  gatehouse users add -config FILE EMAIL            (password on standard input)
  gatehouse users delete -config FILE EMAIL
  gatehouse users list -config FILE [-json]
  gatehouse users migrate -config FILE [-json]      (once after an upgrade: canonical email keys)
  gatehouse users show -config FILE EMAIL [-json]
  gatehouse users groups -config FILE EMAIL [+GROUP] [-GROUP]... [-json]
  gatehouse users disable|enable -config FILE EMAIL
  gatehouse users set-password -config FILE EMAIL   (password on standard input)
  gatehouse users reset-2fa -config FILE EMAIL
  gatehouse sessions revoke -config FILE EMAIL
  gatehouse tokens create -config FILE EMAIL NAME [-ttl 720h]
  gatehouse tokens list -config FILE EMAIL [-json]
  gatehouse tokens revoke -config FILE EMAIL ID
-config defaults to $GATEHOUSE_CONFIG, else config.yaml.`

// env is the process environment as run sees it; tests pass their own.
type env struct {
	lookup func(string) (string, bool)
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run is the whole program behind main, callable from tests: it parses args,
// runs one command and returns its error. It never calls os.Exit.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) error {
	e := env{lookup: lookupEnv, stdin: stdin, stdout: stdout, stderr: stderr}
	err := dispatch(ctx, e, args)
	if errors.Is(err, errHelp) {
		// Asked for help: the usage on stdout, exit 0.
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return err
}

// errHelp is -h or help anywhere on the command line.
var errHelp = errors.New("help requested")

func dispatch(ctx context.Context, e env, args []string) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		path, rest, err := e.parseFlags("serve", args)
		if err != nil {
			return err
		}
		if len(rest) != 0 {
			return usageError{"serve takes no arguments\n" + usage}
		}
		return serve(ctx, e, path)
	case "check":
		path, rest, err := e.parseFlags("check", args)
		if err != nil {
			return err
		}
		if len(rest) != 0 {
			return usageError{"check takes no arguments\n" + usage}
		}
		return check(e, path)
	case "explain":
		path, rest, err := e.parseFlags("explain", args)
		if err != nil {
			return err
		}
		if len(rest) != 2 {
			return usageError{"explain needs METHOD URL\n" + usage}
		}
		return explain(e, path, rest[0], rest[1])
	case "users", "sessions", "tokens":
		if len(args) == 0 {
			return usageError{cmd + " needs a subcommand\n" + usage}
		}
		return accounts(ctx, e, cmd+" "+args[0], args[1:])
	case "help":
		return errHelp
	default:
		return usageError{fmt.Sprintf("unknown command %q\n%s", cmd, usage)}
	}
}

// parseFlags reads -config (the only flag) and returns the config path and
// the remaining arguments. Flags may come before or after the arguments.
func (e env) parseFlags(name string, args []string) (string, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := "config.yaml"
	if v, ok := e.lookup("GATEHOUSE_CONFIG"); ok && v != "" {
		def = v
	}
	path := fs.String("config", def, "configuration file")
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", nil, errHelp
			}
			return "", nil, usageError{err.Error() + "\n" + usage}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
	return *path, rest, nil
}

// loadConfig loads and validates the file; its error lists every problem.
func (e env) loadConfig(path string) (*config.Config, error) {
	return config.Load(path, e.lookup)
}

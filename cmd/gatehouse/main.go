// Command gatehouse runs the Gatehouse authentication gateway and its
// operator commands (check, explain, users, sessions). See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func main() {
	// Before any client exists, so that nothing reads go-redis's logger
	// while it is set.
	redis.SetLogger(redisLogger{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
	}
	os.Exit(exitCode(err))
}

// exitCode maps run's error to the documented exit codes: 0 success, 1 a
// problem reported on stderr, 2 wrong usage.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

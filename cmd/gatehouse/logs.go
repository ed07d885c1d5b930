package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// redisLogTarget is the slog logger of the running command. go-redis logs
// through one process-wide logger (redis.SetLogger, set once in main);
// pointing it here makes its lines (sentinel switches, dial failures) JSON
// like every other line the gateway writes, instead of plain text.
var redisLogTarget atomic.Pointer[slog.Logger]

// redisLogger adapts go-redis's Printf-style logger to slog.
type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l := redisLogTarget.Load(); l != nil {
		l.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
	}
}

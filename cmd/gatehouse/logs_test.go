package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// go-redis's own lines come out as JSON through the running command's
// logger.
func TestRedisLoggerWritesJSON(t *testing.T) {
	var buf strings.Builder
	old := redisLogTarget.Load()
	t.Cleanup(func() { redisLogTarget.Store(old) })
	redisLogTarget.Store(slog.New(slog.NewJSONHandler(&buf, nil)))

	redisLogger{}.Printf(context.Background(), "sentinel: new master=%q addr=%q", "gatehouse", "127.0.0.1:6380")

	var rec struct{ Level, Msg, Detail string }
	if err := json.Unmarshal([]byte(buf.String()), &rec); err != nil {
		t.Fatalf("not one JSON line: %q (%v)", buf.String(), err)
	}
	if rec.Msg != "redis client" || rec.Level != "WARN" || !strings.Contains(rec.Detail, `new master="gatehouse"`) {
		t.Errorf("record = %+v", rec)
	}
}

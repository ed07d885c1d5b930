package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// finish records one request: metrics, then one log line at Info:
//
//	msg=request method path status duration_ms route rule user_id client_ip bytes
//
// path is the clean path (the escaped raw path for a refused one), never
// the query, which may carry tokens; no cookie or header value is logged.
func (g *Gateway) finish(st *reqState, r *http.Request) {
	status := st.w.status
	if status == 0 {
		if st.w.hijacked {
			status = http.StatusSwitchingProtocols
		} else {
			status = http.StatusOK // nothing written: net/http sends 200
		}
	}
	d := time.Since(st.start)
	if g.metrics != nil {
		g.metrics.inFlight.Dec()
		if st.route != nil && st.route.metrics != nil {
			st.route.metrics.observe(st.method, status, d)
		}
	}
	// The server's context, not st: the request may be finished.
	ctx := context.Background()
	if !g.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	path := st.clean
	if path == "" {
		path = r.URL.EscapedPath()
		if len(path) > 256 {
			path = path[:256]
		}
	}
	route := ""
	if st.route != nil {
		route = st.route.name
	}
	attrs := [...]slog.Attr{
		slog.String("method", st.method),
		slog.String("path", path),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("route", route),
		slog.Int("rule", st.rule),
		slog.String("user_id", st.userID()),
		slog.String("client_ip", st.info.ClientIP),
		slog.Int64("bytes", st.w.bytes),
	}
	n := len(attrs)
	if st.userID() == "" {
		// Drop user_id when unknown, keeping the order of the rest.
		attrs[6], attrs[7], attrs[8] = attrs[7], attrs[8], slog.Attr{}
		n--
	}
	g.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs[:n]...)
}

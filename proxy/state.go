package proxy

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

// reqState is everything the gateway knows about one request. It is
// allocated once per request and is itself the request's context (it embeds
// the server's context and answers Value(stateKey) with itself), so that
// putting it in the context costs no second allocation; the logging,
// metrics, Rewrite and ErrorHandler code read it from there. Its w field is
// the ResponseWriter wrapper that records the status and size.
type reqState struct {
	context.Context
	w     statusWriter
	start time.Time

	method string // upper-cased
	clean  string // checked path; "" until CheckPath passed
	route  *routeRT
	rule   int // matched rule index; -1 default; -2 none (own endpoint, refused early)

	// info carries the client address to the gateway's own endpoints and
	// the user id they proved back to the log line.
	info        credential.Info
	trustedPeer bool

	found  credential.Found
	id     credential.Identity
	authed bool // id is valid and goes upstream
	// assertion is the signed identity assertion that goes with id.
	assertion string
}

type stateKey struct{}

// Value answers the state key with the state itself and delegates every
// other key, so that context.WithTimeout on it still finds the server's
// cancelCtx and starts no goroutine.
func (st *reqState) Value(key any) any {
	switch key {
	case stateKey{}:
		return st
	case credential.InfoKey:
		return &st.info
	}
	return st.Context.Value(key)
}

// userID is the user of the request's log line: the session's, or the one
// a gateway endpoint proved.
func (st *reqState) userID() string {
	if st.id.UserID != "" {
		return st.id.UserID
	}
	return st.info.UserID
}

func stateFrom(ctx context.Context) *reqState {
	if st, ok := ctx.(*reqState); ok {
		return st
	}
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// statusWriter records the status and body size for the log line and
// metrics. It forwards Flush and Hijack (and Unwrap for
// http.ResponseController) so streaming and WebSocket upgrades work
// through it.
type statusWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
	// cookieName is the session cookie's: no 1xx may set it.
	cookieName string
}

// WriteHeader records the final status. A 1xx (103 Early Hints) is
// written with the header ReverseProxy copied from the upstream's 1xx,
// which its ModifyResponse never sees: the session cookie filter runs here
// for those, so that "103 + Set-Cookie" cannot plant a session either.
func (w *statusWriter) WriteHeader(code int) {
	if code < 200 {
		dropSetCookie(w.ResponseWriter.Header(), w.cookieName)
	}
	// 1xx responses (103 Early Hints, forwarded by ReverseProxy) are not
	// the final status.
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	_ = w.FlushError()
}

func (w *statusWriter) FlushError() error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	switch f := w.ResponseWriter.(type) {
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
		return nil
	}
	return http.ErrNotSupported
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := h.Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, brw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

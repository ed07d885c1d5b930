// Command verify-assertion is an example upstream that believes only the
// gateway's signed identity assertion, never X-User-Id: it fetches the
// gateway's JSON Web Key Set, verifies the assertion header of every request
// (ES256 only, issuer, audience, expiry), answers 401 to anything else, and
// hands the verified claims to the application handler.
//
//	go run ./examples/verify-assertion \
//	    -jwks https://gate.example.com/.well-known/jwks.json \
//	    -issuer https://gate.example.com -audience app \
//	    -header X-Gatehouse-Assertion -listen 127.0.0.1:3000
//
// (run from deploy/, which is its own Go module). Copy requireAssertion into
// your own service; the handler it wraps here only echoes the claims.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "verify-assertion:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. ready, if not nil, receives the listener's
// address once it accepts connections (tests listen on port 0).
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("verify-assertion", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:3000", "address to serve on")
	jwksURL := fs.String("jwks", "", "the gateway's JWKS URL (required), e.g. https://gate.example.com/.well-known/jwks.json")
	issuer := fs.String("issuer", "", "the gateway's identity.assertion.issuer (required)")
	audience := fs.String("audience", "", "this upstream's audience in the gateway's config (required; default there: the upstream's name)")
	header := fs.String("header", "X-Gatehouse-Assertion", "the gateway's identity.assertion.header")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *jwksURL == "" || *issuer == "" || *audience == "" || *header == "" {
		return errors.New("-jwks, -issuer, -audience and -header are required")
	}

	// keyfunc fetches the set now, refreshes it every five minutes (the
	// gateway's Cache-Control max-age) and fetches again at once, at most
	// every five minutes, when a token names a kid it does not know: so a
	// key the gateway has just put first is picked up on its first token.
	failFirst := false
	keys, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{*jwksURL}, keyfunc.Override{
		RefreshInterval:           5 * time.Minute,
		HTTPTimeout:               10 * time.Second,
		NoErrorReturnFirstHTTPReq: &failFirst,
	})
	if err != nil {
		return fmt.Errorf("fetch JWKS: %w", err)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           requireAssertion(keys.Keyfunc, *header, *issuer, *audience, nil, http.HandlerFunc(echoClaims)),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if ready != nil {
		ready <- ln.Addr().String()
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Claims is what the gateway asserts about the request's user.
type Claims struct {
	Email  string   `json:"email"`
	Groups []string `json:"groups"`
	AMR    []string `json:"amr"` // "pwd", "otp", "hwk", "tok"
	SID    string   `json:"sid"` // the session handle, or the API token's id
	jwt.RegisteredClaims
}

type claimsKey struct{}

// ClaimsFrom returns the verified claims requireAssertion put in the
// request's context.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// requireAssertion passes on only requests that carry exactly one assertion
// header holding a valid ES256 JWS from the gateway, for this audience,
// unexpired; every other request gets 401. now is the clock (nil: the real
// one).
func requireAssertion(keys jwt.Keyfunc, header, issuer, audience string, now func() time.Time, next http.Handler) http.Handler {
	opts := []jwt.ParserOption{
		// Only ES256: never let a token choose HS256 (keyed with the public
		// key) or "none".
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer(issuer),
		// The audience check is what stops one upstream from replaying the
		// assertion it received to another upstream.
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		// A little slack for clocks that are not quite in step.
		jwt.WithLeeway(5 * time.Second),
	}
	if now != nil {
		opts = append(opts, jwt.WithTimeFunc(now))
	}
	parser := jwt.NewParser(opts...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Two header lines could be one from the gateway and one smuggled
		// past it: refuse rather than pick one.
		values := r.Header.Values(header)
		if len(values) != 1 {
			unauthorized(w)
			return
		}
		var c Claims
		if _, err := parser.ParseWithClaims(values[0], &c, keys); err != nil || c.Subject == "" {
			unauthorized(w)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, &c)))
	})
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	http.Error(w, "missing or invalid identity assertion", http.StatusUnauthorized)
}

// echoClaims stands for the application: it answers with who the user is.
func echoClaims(w http.ResponseWriter, r *http.Request) {
	c, _ := ClaimsFrom(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"sub":    c.Subject,
		"email":  c.Email,
		"groups": c.Groups,
		"amr":    c.AMR,
		"sid":    c.SID,
	})
}

package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/assertion"
)

// errNoEphemeralKeys is New's answer to an assertion header without
// key_files when the command handed no process-wide key.
var errNoEphemeralKeys = errors.New("identity.assertion: no key_files and no ephemeral key")

// assertionKeys works out the keys of cfg's identity assertion: the key
// set published at /.well-known/jwks.json (nil: none, served as an empty
// set) and, when identity.assertion.header is set, the Signer.
//
// The published set is key_files whenever they are given, header or not,
// so that upstreams can fetch a key before anything is signed with it.
// Without key_files the header signs with ephemeral, which the command
// creates once per process: a reload must not change the published key,
// or every assertion in flight would stop verifying.
func assertionKeys(cfg *config.Config, ephemeral *assertion.KeySet, now func() time.Time) (*assertion.KeySet, *assertion.Signer, error) {
	a := &cfg.Identity.Assertion
	var keys *assertion.KeySet
	if len(a.Keys) > 0 {
		var err error
		if keys, err = assertion.NewKeySet(a.Keys); err != nil {
			return nil, nil, fmt.Errorf("identity.assertion.key_files: %w", err)
		}
	}
	if a.Header == "" {
		return keys, nil, nil
	}
	if keys == nil {
		if ephemeral == nil {
			return nil, nil, errNoEphemeralKeys
		}
		keys = ephemeral
	}
	s, err := assertion.NewSigner(keys, assertionIssuer(cfg), time.Duration(a.TTL), now)
	if err != nil {
		return nil, nil, fmt.Errorf("identity.assertion: %w", err)
	}
	return keys, s, nil
}

// assertionIssuer is the iss claim: identity.assertion.issuer, else
// auth.public_url as written, else "gatehouse".
func assertionIssuer(cfg *config.Config) string {
	switch {
	case cfg.Identity.Assertion.Issuer != "":
		return cfg.Identity.Assertion.Issuer
	case cfg.Auth.PublicURL != "":
		return cfg.Auth.PublicURL
	}
	return "gatehouse"
}

// audienceOf is the aud claim for an upstream: its audience, by default
// its name.
func audienceOf(cfg *config.Config, upstream string) string {
	if u, ok := cfg.Upstreams[upstream]; ok && u.Audience != "" {
		return u.Audience
	}
	return upstream
}

// sign returns the assertion for id going to rt's upstream. It runs only
// after the store vouched for id on this very request, and costs no store
// command: the Signer reuses a young assertion for the same claims.
func (g *Gateway) sign(rt *routeRT, id *credential.Identity) (string, error) {
	return g.signer.Sign(assertion.Claims{
		Audience:   rt.aud,
		Subject:    id.UserID,
		Email:      id.Email,
		Groups:     id.GroupList(),
		AMR:        id.AMR(),
		SessionID:  id.SID,
		SessionEnd: id.Expires,
	})
}

// jwksEndpoint is the gateway's own /.well-known/jwks.json, serving keys
// (nil: {"keys":[]}). A reload builds a new Gateway with its own set, so the
// swap of the whole Gateway is the atomic swap of the published keys.
func (g *Gateway) jwksEndpoint(keys *assertion.KeySet) ownEndpoint {
	return ownEndpoint{
		path: assertion.JWKSPath,
		h:    assertion.JWKSHandler(func() *assertion.KeySet { return keys }),
		rt:   routeRT{index: -2, name: "jwks", policy: "none", metrics: g.metrics.forRoute("jwks", "none")},
	}
}

// logLimit lets one line of a kind through per errorLogEvery and counts the
// lines left out in between. Lock-free: it runs on the hot path of every
// failing request.
type logLimit struct {
	last       atomic.Int64 // unix nanoseconds, from Gateway.now
	suppressed atomic.Int64
}

// errorLogEvery is the least time between two lines of one kind of request
// error. During a store outage every request that carries a token fails
// its lookup: one line per failure would be thousands of lines a second,
// burying every other line and costing the log pipeline more than the
// outage itself.
const errorLogEvery = time.Second

// logLimited logs msg with err at Warn, at most once per errorLogEvery for
// l; the count of lines left out since the last one goes with it.
func (g *Gateway) logLimited(ctx context.Context, l *logLimit, msg string, err error) {
	now := g.now().UnixNano()
	last := l.last.Load()
	if now-last < int64(errorLogEvery) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	g.log.LogAttrs(ctx, slog.LevelWarn, msg,
		slog.String("error", err.Error()), slog.Int64("suppressed", l.suppressed.Swap(0)))
}

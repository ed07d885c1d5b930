package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
	"github.com/gatehouse-dev/gatehouse/proxy/assertion"
)

// view is the request an access decision is about: a proxied request
// itself, or the original request that forward-auth is asked about. The
// two front doors (ServeHTTP and the verify endpoint) build it; decide
// judges it; render answers it. Nothing else decides who may pass.
type view struct {
	method string // upper-cased
	path   string // checked and clean: what the route table matches
	query  string // raw query, kept in a return target
	// r holds the headers (credential, Origin, Sec-Fetch-Site) and, for
	// the CSRF check, the method and host of the request judged.
	r *http.Request
	// ws: a WebSocket upgrade, whose Origin is checked whatever
	// csrf.protect_upstream says.
	ws bool
	// navigation: a browser navigation that may be answered with a
	// redirect to sign in (or to set up a second factor) instead of
	// 401/403. Forward-auth sets it only with ?redirect=1.
	navigation bool
	// forwardAuth: answers are rendered for a proxy in front (200 with
	// headers, 403 for a cross-origin request, absolute return targets).
	forwardAuth bool
	// scheme and host of the original request: the absolute return target
	// of forward-auth's redirects.
	scheme, host string
}

// outcome is what decide concluded.
type outcome struct {
	result decision
	route  *routeRT
	rule   int
	found  credential.Found
	// authed: id is valid and goes upstream (also on a public route).
	authed bool
	id     credential.Identity
	// assertion is the signed identity assertion that goes with id, when
	// identity.assertion.header is set.
	assertion string
	// clearCookie: the request's session cookie names no session; the
	// answer clears it. Never for a store outage, never for tossed cookies.
	clearCookie bool
}

// decide is the access decision, the same for proxied and forward-auth
// requests: route -> deny -> credential -> cross-origin checks ->
// authenticate (at most one store round trip) -> groups -> second factor
// -> the identity assertion (no store command). It writes nothing.
func (g *Gateway) decide(st *reqState, v *view) outcome {
	d := g.routes.Match(v.method, v.path)
	rt := &g.rts[d.Index+1]
	out := outcome{route: rt, rule: d.Index}
	if rt.policy == config.Deny || rt.up == nil {
		out.result = decForbidden
		return out
	}
	out.found = credential.Read(v.r.Header, g.cookie.Name)
	f := &out.found
	if g.protectUpstream && f.Cookie && g.csrf.Check(v.r) != nil {
		out.result = decCrossOrigin
		return out
	}
	// WebSocket upgrades are GETs, which CrossOriginProtection always
	// passes, and browsers send cookies on them from any page: the Origin
	// check is what stops cross-site WebSocket hijacking.
	if v.ws && !g.originAllowed(v.r) {
		out.result = decCrossOrigin
		return out
	}
	if f.Token == "" {
		if rt.policy == config.Authenticated {
			// A cookie that is not a session token is stale: clear it.
			// Tossed cookies are left alone: clearing would log the user
			// out for the attacker.
			out.clearCookie = f.FromCookie && !f.Tossed
			out.result = decUnauthenticated
			return out
		}
		out.result = decAllowed
		return out
	}
	id, err := g.authenticate(st, f.Token)
	switch {
	case err == nil:
		out.authed, out.id = true, id
	case rt.policy == config.Public:
		// Public routes work without identity, store outage included.
		out.result = decAllowed
		return out
	case errors.Is(err, credential.ErrNoSession):
		out.clearCookie = f.FromCookie
		out.result = decUnauthenticated
		return out
	default:
		out.result = decStoreUnavailable
		return out
	}
	if rt.policy == config.Authenticated {
		// Where both refuse, forbidden wins: a second factor would not
		// help a user outside the groups.
		if len(rt.groups) > 0 && !inAnyGroup(&id, rt.groups) {
			out.result = decForbidden
			return out
		}
		if rt.mfa && !id.MFA {
			out.result = decMFARequired
			return out
		}
	}
	if g.signer != nil {
		jws, err := g.sign(rt, &id)
		switch {
		case err == nil:
			out.assertion = jws
		case errors.Is(err, assertion.ErrSessionEnded):
			// The session ended since the store vouched for it: answer
			// as for no session, and send no identity without its
			// assertion.
			out.authed, out.id = false, credential.Identity{}
			if rt.policy == config.Public {
				out.result = decAllowed
				return out
			}
			out.clearCookie = f.FromCookie
			out.result = decUnauthenticated
			return out
		default:
			// An identity the Signer refuses (invalid UTF-8, say) must not
			// go upstream unsigned when upstreams may demand a signature.
			g.logLimited(st, &g.assertErrLog, "identity assertion error", err)
			out.authed, out.id = false, credential.Identity{}
			out.result = decInternalError
			return out
		}
	}
	out.result = decAllowed
	return out
}

func inAnyGroup(id *credential.Identity, groups []string) bool {
	for _, g := range groups {
		if id.InGroup(g) {
			return true
		}
	}
	return false
}

// authenticate asks the Authenticator once, bounded by authTimeout.
// Anything but success or ErrNoSession counts as the store being
// unreachable: fail closed, keep the cookie.
func (g *Gateway) authenticate(st *reqState, token string) (credential.Identity, error) {
	ctx, cancel := context.WithTimeout(st, authTimeout)
	id, err := g.auth.Authenticate(ctx, token)
	cancel()
	if err != nil {
		if errors.Is(err, credential.ErrNoSession) {
			return id, credential.ErrNoSession
		}
		g.logStoreError(st, err)
		return id, credential.ErrStoreUnavailable
	}
	if id.UserID == "" {
		return id, credential.ErrNoSession
	}
	return id, nil
}

// render answers every outcome but a proxied request that is allowed
// (which ServeHTTP forwards). Forward-auth answers only 200, 401, 403 and
// 503 (nginx turns a 3xx into a 500), except the redirects that ?redirect=1
// asks for on a browser navigation.
func (g *Gateway) render(w http.ResponseWriter, v *view, out *outcome) {
	g.metrics.decision(out.result)
	h := w.Header()
	if out.clearCookie {
		h["Set-Cookie"] = append(h["Set-Cookie"], g.cookie.Clear())
	}
	switch out.result {
	case decAllowed:
		// Only forward-auth gets here: the answer carries the identity.
		if out.authed {
			g.setIdentity(h, &out.id, out.assertion)
		}
		if c := credential.KeptCookies(v.r.Header["Cookie"], g.cookie.Name); c != "" {
			h["Cookie"] = []string{c}
		}
		h["Content-Length"] = zeroLength
		w.WriteHeader(http.StatusOK)
	case decForbidden:
		apierror.Write(w, apierror.Forbidden)
	case decCrossOrigin:
		if v.forwardAuth {
			// nginx shows its own page for a 403; forward-auth has no
			// cross_origin answer of its own.
			apierror.Write(w, apierror.Forbidden)
			return
		}
		apierror.Write(w, apierror.CrossOrigin)
	case decUnauthenticated:
		h["Cache-Control"] = noStore
		if v.navigation {
			g.redirect(w, v, g.loginPath)
			return
		}
		h["Www-Authenticate"] = wwwAuthenticate
		apierror.Write(w, apierror.Unauthenticated)
	case decMFARequired:
		h["Cache-Control"] = noStore
		if v.navigation {
			g.redirect(w, v, g.accountPath)
			return
		}
		apierror.Write(w, apierror.MFARequired)
	case decInternalError:
		apierror.Write(w, apierror.InternalError)
	default:
		apierror.Write(w, apierror.StoreUnavailable)
	}
}

// redirect sends a browser navigation to one of the gateway's pages with
// the original request as rd: relative for a proxied request, absolute
// (public_url, and the original scheme and host) for forward-auth.
func (g *Gateway) redirect(w http.ResponseWriter, v *view, page string) {
	target := (&url.URL{Path: v.path}).EscapedPath()
	if v.query != "" {
		target += "?" + v.query
	}
	base := ""
	if v.forwardAuth {
		target = v.scheme + "://" + v.host + target
		base = g.publicURL
	}
	w.Header()["Location"] = []string{base + page + "?rd=" + url.QueryEscape(target)}
	w.WriteHeader(http.StatusFound)
}

// setIdentity sets the identity headers of an allowed request with a valid
// credential: on the request that goes upstream (Rewrite, after every
// client copy was removed), or on forward-auth's 200. jws is the signed
// assertion ("" when none is configured).
func (g *Gateway) setIdentity(h http.Header, id *credential.Identity, jws string) {
	h[g.userIDHeader] = []string{id.UserID}
	if g.emailHeader != "" && id.Email != "" {
		h[g.emailHeader] = []string{id.Email}
	}
	if g.groupsHeader != "" && id.Groups != "" {
		h[g.groupsHeader] = []string{id.Groups}
	}
	if jws != "" {
		h[g.assertHeader] = []string{jws}
	}
}

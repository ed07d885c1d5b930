package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The hot-path rows: the authenticated request with each Part 2 feature
// that runs on it, measured in interleaved rounds beside gateway-auth so
// that a busy spell of the shared machine hits every row alike.
const (
	rowAuth      = "gateway-auth"
	rowGroups    = "gateway-auth-groups"
	rowToken     = "gateway-token"
	rowAssertion = "gateway-assertion"

	// assertionHeader is identity.assertion.header of the second gateway.
	assertionHeader = "X-Gatehouse-Assertion"
	// minAssertionRatio is issue 14's goal for the assertion row's
	// throughput over gateway-auth's.
	minAssertionRatio = 0.9
)

// hotPathCase is one row's request and the gateway that answers it.
type hotPathCase struct {
	name   string
	label  string // for the README's table
	gw     *gateway
	prefix string // of the rule it goes through: "/" or groupRoute
	header http.Header
}

// hotPathCases signs in what the rows need and starts the assertion
// gateway: the group member's session, an API token made with the bench
// user's session, and a second gateway on the same Redis with only
// identity.assertion.header added (the bench user's session works on both,
// as on any replica). Then it checks, through the upstream's probe path,
// that each row's request is forwarded with what it is meant to measure.
func (b *bench) hotPathCases(ctx context.Context) ([]hotPathCase, error) {
	adminCookie, err := b.gw.register(ctx, benchAdminEmail, benchPassword)
	if err != nil {
		return nil, fmt.Errorf("group member: %w", err)
	}
	token, err := b.gw.createToken(ctx, b.cookie, "gatehouse-bench", time.Hour)
	if err != nil {
		return nil, err
	}
	set := b.gw.settings
	set.assertionHeader = assertionHeader
	if b.gwAssert, err = startGateway(ctx, "gatehouse-assertion", b.gw.bin, b.dir, b.redis.url(), b.upstreamURL(), set); err != nil {
		return nil, err
	}
	session := b.authHeader()
	cases := []hotPathCase{
		{rowAuth, "Gatehouse, signed in (session), route without groups", b.gw, "/", session},
		{rowGroups, "the same, route with `groups: [admins]`, user in `admins` (from `auth.groups`)", b.gw, groupRoute, http.Header{"Cookie": {adminCookie}}},
		{rowToken, "the same as gateway-auth with an API token (`Authorization: Bearer ght1…`)", b.gw, "/", http.Header{"Authorization": {"Bearer " + token}}},
		{rowAssertion, "the same as gateway-auth, `identity.assertion.header` set (ES256, second gateway)", b.gwAssert, "/", session},
	}
	probes := make([]probeResult, 0, len(cases)+1)
	for _, tc := range cases {
		p, err := probe(ctx, tc.name, tc.gw.base+tc.prefix+probePath[1:], tc.header)
		if err != nil {
			return nil, err
		}
		probes = append(probes, p)
	}
	// The bench user is in no group: the group rule must refuse it, or
	// the groups row would measure a rule that is not applied.
	refused, err := probe(ctx, "group rule, user not in the group", b.gw.base+groupRoute+"app", session)
	if err != nil {
		return nil, err
	}
	probes = append(probes, refused)
	if err := checkProbes(probes); err != nil {
		return nil, err
	}
	return cases, nil
}

// createToken makes an API token with POST /me/tokens and the session
// cookie, and returns the token.
func (g *gateway) createToken(ctx context.Context, cookie, name string, ttl time.Duration) (string, error) {
	body, _ := json.Marshal(map[string]string{"name": name, "ttl": ttl.String()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+"/me/tokens", strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cookie", cookie)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("create token: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create token: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return parseTokenAnswer(msg)
}

// parseTokenAnswer reads the token from POST /me/tokens's answer.
func parseTokenAnswer(body []byte) (string, error) {
	var v struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("create token: answer: %w", err)
	}
	if !strings.HasPrefix(v.Token, "ght1.") {
		return "", fmt.Errorf("create token: answer has no ght1. token")
	}
	return v.Token, nil
}

// probeResult is one request to the upstream's probe path through a
// gateway: the status, and the headers the upstream received.
type probeResult struct {
	name     string
	status   int
	received http.Header
}

func probe(ctx context.Context, name, rawURL string, header http.Header) (probeResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return probeResult{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return probeResult{}, fmt.Errorf("probe %s: %w", name, err)
	}
	defer resp.Body.Close()
	p := probeResult{name: name, status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p.received); err != nil {
			return p, fmt.Errorf("probe %s: the upstream's answer: %w", name, err)
		}
	}
	return p, nil
}

var errProbe = errors.New("the gateway does not forward what the row measures")

// checkProbes checks that each row forwards what it is meant to measure:
// every row the user's id, the groups row the group, only the assertion
// row a JWS, and the group rule refusing a user outside the group.
func checkProbes(probes []probeResult) error {
	var problems []string
	bad := func(p probeResult, format string, args ...any) {
		problems = append(problems, p.name+": "+fmt.Sprintf(format, args...))
	}
	for _, p := range probes {
		if !strings.HasPrefix(p.name, "gateway") {
			if p.status != http.StatusForbidden {
				bad(p, "status %d, want 403", p.status)
			}
			continue
		}
		if p.status != http.StatusOK {
			bad(p, "status %d, want 200", p.status)
			continue
		}
		if p.received.Get("X-User-Id") == "" {
			bad(p, "no X-User-Id reached the upstream")
		}
		groups := p.received.Get("X-User-Groups")
		if want := map[bool]string{true: benchGroup}[p.name == rowGroups]; groups != want {
			bad(p, "X-User-Groups %q, want %q", groups, want)
		}
		jws := p.received.Get(assertionHeader)
		switch {
		case p.name == rowAssertion && !isCompactJWS(jws):
			bad(p, "%s %q is not a compact JWS", assertionHeader, jws)
		case p.name != rowAssertion && jws != "":
			bad(p, "an assertion reached the upstream")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errProbe, strings.Join(problems, "; "))
	}
	return nil
}

// isCompactJWS reports whether v has the shape header.payload.signature,
// each part non-empty base64url.
func isCompactJWS(v string) bool {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return true
}

// hotPathMode measures the hot-path rows in b.opt.rounds interleaved
// rounds; each round starts one row later, so no row always runs first
// after the previous round's last. It returns the rows with their medians
// and ratios.
func (b *bench) hotPathMode(ctx context.Context) (*hotPathResult, error) {
	cases, err := b.hotPathCases(ctx)
	if err != nil {
		return nil, err
	}
	hp := &hotPathResult{Rounds: b.opt.rounds}
	rows := map[string]*hotPathRow{}
	for _, tc := range cases {
		r := &hotPathRow{Name: tc.name, Label: tc.label}
		rows[tc.name] = r
		hp.Rows = append(hp.Rows, r)
	}
	for round := range b.opt.rounds {
		fmt.Fprintf(b.log, "hot path, round %d of %d:\n", round+1, b.opt.rounds)
		for i := range cases {
			tc := cases[(i+round)%len(cases)]
			c, err := b.measureOn(ctx, b.spec(tc.name, tc.gw.base+tc.prefix+"app", tc.header, 200), "gateway", tc.gw, 0)
			if err != nil {
				return nil, err
			}
			c.Round = round + 1
			rows[tc.name].Rounds = append(rows[tc.name].Rounds, c)
		}
	}
	hp.summarize()
	return hp, nil
}

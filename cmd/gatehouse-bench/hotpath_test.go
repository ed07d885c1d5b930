package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/config"
)

// TestGatewayConfigLoads feeds the generated configuration to the
// gateway's own loader: the group rule, auth.groups and, for the second
// gateway, the assertion header must be what the hot-path rows assume.
func TestGatewayConfigLoads(t *testing.T) {
	for _, tc := range []struct {
		name      string
		assertion string
	}{
		{"first gateway", ""},
		{"assertion gateway", assertionHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := gatewaySettings{bcryptCost: benchBcryptCost, maxLoginFailures: 10, maxRegistrations: 100, assertionHeader: tc.assertion}
			yaml := gatewayConfig(8080, 8081, "redis://127.0.0.1:6400/0", "http://127.0.0.1:9000", set)
			cfg, err := config.Parse("gatehouse.yaml", []byte(yaml), nil)
			if err != nil {
				t.Fatalf("generated config refused: %v\n%s", err, yaml)
			}
			if got := cfg.Identity.Assertion.Header; got != tc.assertion {
				t.Errorf("identity.assertion.header = %q, want %q", got, tc.assertion)
			}
			if got := cfg.Auth.Groups[benchGroup]; !slices.Equal(got, []string{benchAdminEmail}) {
				t.Errorf("auth.groups[%s] = %q, want [%s]", benchGroup, got, benchAdminEmail)
			}
			i := slices.IndexFunc(cfg.Routes, func(r config.Route) bool { return r.Path == groupRoute })
			if i < 0 || !slices.Equal(cfg.Routes[i].Groups, []string{benchGroup}) {
				t.Fatalf("no %s rule with groups [%s] in %+v", groupRoute, benchGroup, cfg.Routes)
			}
			// First match wins: the group rule must come before "/".
			if j := slices.IndexFunc(cfg.Routes, func(r config.Route) bool { return r.Path == "/" }); j < i {
				t.Errorf("the / rule (%d) comes before %s (%d)", j, groupRoute, i)
			}
		})
	}
}

func TestParseTokenAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
		ok               bool
	}{
		{"token", `{"token":"ght1.abc.1799000000.sig","id":"51d0","name":"b"}`, "ght1.abc.1799000000.sig", true},
		{"session token shape", `{"token":"gh1.abc"}`, "", false},
		{"no token", `{"id":"51d0"}`, "", false},
		{"not JSON", `<html>`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTokenAnswer([]byte(tc.body))
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("parseTokenAnswer = %q, %v; want %q, ok %v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestIsCompactJWS(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_", true},
		{"a.b", false},
		{"a..c", false},
		{"a.b.c.d", false},
		{"a.b+.c", false}, // standard base64, not base64url
		{"", false},
	} {
		if got := isCompactJWS(tc.v); got != tc.want {
			t.Errorf("isCompactJWS(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestCheckProbes(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	jws := "aGVhZA.Ym9keQ.c2ln"
	good := func() []probeResult {
		return []probeResult{
			{rowAuth, 200, h("X-User-Id", "u1")},
			{rowGroups, 200, h("X-User-Id", "u2", "X-User-Groups", benchGroup)},
			{rowToken, 200, h("X-User-Id", "u1")},
			{rowAssertion, 200, h("X-User-Id", "u1", assertionHeader, jws)},
			{"group rule, user not in the group", 403, nil},
		}
	}
	for _, tc := range []struct {
		name   string
		change func([]probeResult)
		want   string // a fragment of the error; "" = no error
	}{
		{"all forwarded as meant", func([]probeResult) {}, ""},
		{"token refused", func(p []probeResult) { p[2] = probeResult{rowToken, 401, nil} }, "gateway-token: status 401"},
		{"no user id", func(p []probeResult) { p[0].received = h() }, "gateway-auth: no X-User-Id"},
		{"group missing", func(p []probeResult) { p[1].received.Del("X-User-Groups") }, `X-User-Groups "", want "admins"`},
		{"group on the plain row", func(p []probeResult) { p[0].received.Set("X-User-Groups", benchGroup) }, `gateway-auth: X-User-Groups "admins", want ""`},
		{"no assertion", func(p []probeResult) { p[3].received.Del(assertionHeader) }, "is not a compact JWS"},
		{"assertion on the first gateway", func(p []probeResult) { p[2].received.Set(assertionHeader, jws) }, "gateway-token: an assertion"},
		{"group rule not applied", func(p []probeResult) { p[4].status = 200 }, "status 200, want 403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := good()
			tc.change(p)
			err := checkProbes(p)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("checkProbes = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("checkProbes = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestUpstreamProbePath checks the upstream's two answers: the fixed body,
// and on the probe path (below any route prefix) the headers it received.
func TestUpstreamProbePath(t *testing.T) {
	srv := httptest.NewServer(upstreamHandler(0))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		path     string
		wantBody string
		wantHdr  string
	}{
		{"/app", string(upstreamBody), ""},
		{"/_bench/headers", "", "u1"},
		{groupRoute + "_bench/headers", "", "u1"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			req.Header.Set("X-User-Id", "u1")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if tc.wantBody != "" {
				if string(body) != tc.wantBody {
					t.Errorf("body = %q, want %q", body, tc.wantBody)
				}
				return
			}
			var got http.Header
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("probe answer %q: %v", body, err)
			}
			if got.Get("X-User-Id") != tc.wantHdr {
				t.Errorf("X-User-Id = %q, want %q", got.Get("X-User-Id"), tc.wantHdr)
			}
		})
	}
}

// hotRow builds a row from (rps, gateway CPU µs, Redis commands) per round.
func hotRow(name string, rounds ...[3]float64) *hotPathRow {
	r := &hotPathRow{Name: name}
	for i, v := range rounds {
		r.Rounds = append(r.Rounds, &caseResult{
			Name: name, Target: "gateway", Round: i + 1, Expect: 200, Requests: 1000,
			Statuses: map[string]uint64{"200": 1000}, RPS: v[0], ServerCPUus: v[1], RedisCmds: v[2],
			P99us: 10 * v[1], MaxUs: 100 * float64(i+1), RedisCalls: map[string]uint64{"getex": uint64(1000 * v[2])},
		})
	}
	return r
}

func TestHotPathSummarize(t *testing.T) {
	hp := &hotPathResult{Rounds: 3, Rows: []*hotPathRow{
		hotRow(rowAuth, [3]float64{10000, 100, 1}, [3]float64{9000, 100, 1}, [3]float64{11000, 100, 1}),
		hotRow(rowGroups, [3]float64{9500, 110, 1}, [3]float64{9000, 100, 1}, [3]float64{9900, 90, 1}),
		hotRow(rowToken, [3]float64{7000, 150, 1}, [3]float64{6300, 150, 1}, [3]float64{7700, 150, 1}),
		hotRow(rowAssertion, [3]float64{9200, 120, 1}, [3]float64{8280, 120, 1}, [3]float64{10120, 120, 1}),
	}}
	hp.summarize()
	if hp.Noise < 0.0999 || hp.Noise > 0.1001 {
		t.Errorf("noise = %v, want 0.10 (gateway-auth's rounds 9000..11000 around 10000)", hp.Noise)
	}
	auth := hp.Rows[0].Median
	if auth.RPS != 10000 || auth.Requests != 3000 || auth.Statuses["200"] != 3000 || auth.MaxUs != 300 || auth.RedisCalls["getex"] != 3000 {
		t.Errorf("gateway-auth median = %+v", auth)
	}
	for _, tc := range []struct {
		row          int
		rps, cpu     float64
		verdict      string
		goalFragment string
	}{
		{1, 0.95, 1.0, "met", "within noise (>= 0.90x)"},
		{2, 0.70, 1.5, "not met", "within noise"},
		{3, 0.92, 1.2, "met", ">= 0.90x"},
	} {
		r := hp.Rows[tc.row]
		if d := r.RPSOverAuthMedian - tc.rps; d > 1e-6 || d < -1e-6 {
			t.Errorf("%s: req/s over gateway-auth = %v (rounds %v), want %v", r.Name, r.RPSOverAuthMedian, r.RPSOverAuth, tc.rps)
		}
		if d := r.CPUOverAuthMedian - tc.cpu; d > 1e-6 || d < -1e-6 {
			t.Errorf("%s: CPU over gateway-auth = %v, want %v", r.Name, r.CPUOverAuthMedian, tc.cpu)
		}
		if r.Verdict != tc.verdict || !strings.Contains(r.Goal, tc.goalFragment) {
			t.Errorf("%s: goal %q, verdict %q; want %q, %q", r.Name, r.Goal, r.Verdict, tc.goalFragment, tc.verdict)
		}
	}
	if got := budgetFailures(hp); len(got) != 0 {
		t.Errorf("budgetFailures = %q, want none", got)
	}
	md := markdownHotPath(hp)
	for _, want := range []string{"| `gateway-auth-groups` |", "0.95 (0.95, 1.00, 0.90)", "| 1.00 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestHotPathOneRound(t *testing.T) {
	hp := &hotPathResult{Rounds: 1, Rows: []*hotPathRow{
		hotRow(rowAuth, [3]float64{10000, 100, 1}),
		hotRow(rowGroups, [3]float64{8000, 100, 1}),
		hotRow(rowAssertion, [3]float64{8000, 100, 1}),
	}}
	hp.summarize()
	if hp.Noise != 0 {
		t.Errorf("noise = %v with one round, want 0", hp.Noise)
	}
	if v := hp.Rows[1].Verdict; !strings.Contains(v, "no noise estimate") {
		t.Errorf("groups verdict with one round = %q, want no estimate", v)
	}
	if v := hp.Rows[2].Verdict; v != "not met" {
		t.Errorf("assertion at 0.80x: verdict %q, want not met", v)
	}
}

func TestBudgetFailures(t *testing.T) {
	hp := &hotPathResult{Rows: []*hotPathRow{
		hotRow(rowAuth, [3]float64{1, 1, 1}, [3]float64{1, 1, 1.004}),
		hotRow(rowToken, [3]float64{1, 1, 1}, [3]float64{1, 1, 2}),
		hotRow(rowGroups, [3]float64{1, 1, 0}),
	}}
	got := budgetFailures(hp)
	want := []string{"gateway-token round 2: 2.00", "gateway-auth-groups round 1: 0.00"}
	if len(got) != len(want) {
		t.Fatalf("budgetFailures = %q, want %d failures", got, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("failure %d = %q, want it to start with %q", i, got[i], w)
		}
	}
}

package config

import (
	"testing"
	"time"
)

// A ttl shorter than the default idle_timeout (24h) is a natural setting
// ("sessions last an hour"): the absolute lifetime simply ends the session
// first. Only an idle_timeout the file itself sets above ttl is a mistake
// worth refusing (TestValidateProblems keeps that case).
func TestValidateShortTTLWithDefaultIdle(t *testing.T) {
	for _, src := range []string{
		up + "session:\n  ttl: 1h\n",
		up + "session:\n  ttl: 90s\n  cookie_secure: false\n",
	} {
		if got := problemLines(t, src, nil); got != nil {
			t.Errorf("%q: problems = %q, want none", src, got)
		}
	}
	// The same in code: a default idle timeout is not a choice.
	c := Default()
	c.Upstreams = map[string]Upstream{"app": {URL: "http://a"}}
	c.Session.TTL = Duration(time.Hour)
	if err := c.Validate(); err != nil {
		t.Errorf("code-built ttl 1h: Validate = %v, want nil", err)
	}
	// An idle_timeout written in the file is checked even at its default.
	got := problemLines(t, up+"session:\n  ttl: 1h\n  idle_timeout: 24h\n", nil)
	want := `4: session.idle_timeout: must not exceed session.ttl (1h0m0s)`
	if len(got) != 1 || got[0] != want {
		t.Errorf("explicit idle above ttl: problems = %q, want [%q]", got, want)
	}
}

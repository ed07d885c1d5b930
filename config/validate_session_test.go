package config

import (
	"testing"
	"time"
)

// A ttl shorter than the default idle_timeout (24h) is a natural setting
// ("sessions last an hour"): the absolute lifetime simply ends the session
// first. An idle_timeout written at or above the ttl is not an error
// either: the ttl alone decides.
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
	for _, src := range []string{
		up + "session:\n  ttl: 8h\n  idle_timeout: 24h\n",
		up + "session:\n  ttl: 1h\n  idle_timeout: 1h\n",
	} {
		if got := problemLines(t, src, nil); got != nil {
			t.Errorf("%q: problems = %q, want none (the ttl alone decides)", src, got)
		}
	}
}

package config

import "testing"

// TestCheckPathQuestionMark: a configured path with '?' could never match,
// since the gateway refuses a path that decodes to one (it was written
// %3F), so Validate says so instead of the gateway failing at start.
func TestCheckPathQuestionMark(t *testing.T) {
	for p, want := range map[string]string{
		"/a?b":   `must not contain "?"`,
		"/a":     "",
		"/a/b/":  "",
		"/a#b":   `must not contain "#"`,
		"/s%3Fx": `must not contain "%"`,
	} {
		if got := checkPath(p); got != want {
			t.Errorf("checkPath(%q) = %q, want %q", p, got, want)
		}
	}
}

package main

import (
	"os"
	"strings"
	"testing"
)

// TestCheckWarnsTrailingSlash: check accepts a file whose "/admin/" deny
// leaves "/admin" to a public "/" (exit 0) and says so on a "warning:"
// line; a file without the gap gets none. Before, check printed the
// summary only.
func TestCheckWarnsTrailingSlash(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, routes string
		warn         bool
	}{
		{"gap", "  - path: /admin/\n    policy: deny\n  - path: /\n    policy: public\n", true},
		{"covered", "  - path: /admin\n    policy: deny\n  - path: /\n    policy: public\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := dir + "/" + tc.name + ".yaml"
			yml := "listen: 127.0.0.1:0\nupstreams:\n  app: builtin:echo\nroutes:\n" + tc.routes
			if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut strings.Builder
			if err := run(t.Context(), []string{"check", "-config", file}, noEnv, strings.NewReader(""), &out, &errOut); err != nil {
				t.Fatalf("check = %v, want exit 0\n%s", err, errOut.String())
			}
			var warnings []string
			for _, l := range strings.Split(errOut.String(), "\n") {
				if strings.HasPrefix(l, "warning: ") {
					warnings = append(warnings, l)
				}
			}
			if !tc.warn {
				if len(warnings) != 0 {
					t.Errorf("warnings %q, want none", warnings)
				}
				return
			}
			want := "warning: " + file + `:5: routes[0].path: "/admin/" (deny) does not cover "/admin", which routes[1] decides (public)`
			if len(warnings) != 1 || !strings.HasPrefix(warnings[0], want) {
				t.Errorf("warnings %q, want one starting %q", warnings, want)
			}
			if !strings.Contains(out.String(), "/admin/") {
				t.Errorf("summary missing:\n%s", out.String())
			}
		})
	}
}

package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAccountArgsErrors: a wrong operator command line is exit 2 with a
// message naming what is wrong, before any store is opened (the file
// named does not even exist).
func TestAccountArgsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"group without + or -", []string{"users", "groups", "-config", "none.yaml", "ann@example.org", "ops"}, `"ops": a change is +GROUP (add) or -GROUP (remove)`},
		{"group after changes", []string{"users", "groups", "-config", "none.yaml", "ann@example.org", "+a", "b"}, `"b": a change is +GROUP`},
		{"no email", []string{"users", "groups", "-config", "none.yaml"}, "users groups needs EMAIL"},
		{"tokens create without name", []string{"tokens", "create", "-config", "none.yaml", "ann@example.org"}, "tokens create needs EMAIL NAME"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			err := run(t.Context(), tc.args, noEnv, strings.NewReader(""), &out, &errOut)
			if exitCode(err) != 2 || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("run(%q) = %v (exit %d), want exit 2 with %q", tc.args, err, exitCode(err), tc.msg)
			}
		})
	}
}

// TestAccountArgsGroups: the group changes of `users groups`, including
// groups named like a flag, which only "--" can reach.
func TestAccountArgsGroups(t *testing.T) {
	e := env{lookup: noEnv}
	tests := []struct {
		name        string
		args        []string
		add, remove []string
		json        bool
	}{
		{"add and remove", []string{"-config", "f.yaml", "ann@example.org", "+ops", "-staff"}, []string{"ops"}, []string{"staff"}, false},
		{"-json is the flag", []string{"ann@example.org", "-json"}, nil, nil, true},
		{"after --, -json is a group", []string{"ann@example.org", "-json", "--", "-json", "-config", "+h"}, []string{"h"}, []string{"json", "config"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := e.parseAccountArgs("users groups", tc.args)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !slices.Equal(a.add, tc.add) || !slices.Equal(a.remove, tc.remove) || a.json != tc.json {
				t.Errorf("add %q remove %q json %v, want %q %q %v", a.add, a.remove, a.json, tc.add, tc.remove, tc.json)
			}
		})
	}
}

// TestAccountPasswordRefused: a password the rules refuse is exit 1 with
// a message that covers why, before the store is asked (the Redis named
// does not listen).
func TestAccountPasswordRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(file, []byte("redis: {url: redis://127.0.0.1:1}\nupstreams:\n  app: builtin:echo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const want = "the password is too short, longer than 72 bytes, or not valid UTF-8 text"
	tests := []struct{ name, cmd, stdin string }{
		{"short", "add", "short\n"},
		{"too long", "set-password", strings.Repeat("a", 73) + "\n"},
		{"invalid UTF-8", "set-password", "abc\xff\xfeabcdefg\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			err := run(t.Context(), []string{"users", tc.cmd, "-config", file, "ann@example.org"}, noEnv, strings.NewReader(tc.stdin), &out, &errOut)
			if exitCode(err) != 1 || err.Error() != want {
				t.Errorf("users %s = %v (exit %d), want exit 1 with %q", tc.cmd, err, exitCode(err), want)
			}
		})
	}
}

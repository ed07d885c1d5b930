package main

import (
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

package config

import (
	"reflect"
	"testing"
)

// A section whose keys are all commented out is null in YAML. Like an
// absent section it means "the defaults": the example configuration invites
// exactly that edit ("auth:" followed by commented keys).
func TestDecodeNullSectionMeansDefaults(t *testing.T) {
	src := up + "auth:\n  # registration: open\nsession:\nidentity:\ncsrf:\nredis:\n"
	c := mustParse(t, src, nil)
	want := Default()
	if !reflect.DeepEqual(c.Auth, want.Auth) || !reflect.DeepEqual(c.Session, want.Session) ||
		!reflect.DeepEqual(c.Identity, want.Identity) || !reflect.DeepEqual(c.CSRF, want.CSRF) ||
		!reflect.DeepEqual(c.Redis, want.Redis) {
		t.Errorf("null sections changed the defaults: %+v", c)
	}
	// A null route is still a route that lacks its path and policy.
	got := problemLines(t, up+"routes:\n  -\n", nil)
	wantProbs := []string{`3: routes[0].path: required`, `3: routes[0].policy: required: public, authenticated or deny`}
	if !reflect.DeepEqual(got, wantProbs) {
		t.Errorf("null route: problems = %q, want %q", got, wantProbs)
	}
}

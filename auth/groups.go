package auth

import (
	"slices"
	"strings"
)

// fileGroups is auth.groups compiled for the hot path: the groups of each
// normalised email and of each "*@domain", sorted. It is rebuilt with the
// Service on every reload, so a change to the file holds at the next
// request; the groups set on an account travel in its session values.
type fileGroups struct {
	byEmail  map[string][]string
	byDomain map[string][]string
}

// compileGroups compiles auth.groups (group -> members). Members are
// normalised like account emails, so "Ann@Example.com" in the file is the
// account ann@example.com; an entry that does not normalise can match no
// account and is dropped (config validation reports malformed ones).
func compileGroups(groups map[string][]string) fileGroups {
	fg := fileGroups{byEmail: map[string][]string{}, byDomain: map[string][]string{}}
	for g, members := range groups {
		for _, m := range members {
			local, domain, ok := strings.Cut(m, "@")
			if !ok {
				continue
			}
			if local == "*" {
				// Normalise the domain as an address's domain would be.
				n, err := NormalizeEmail("x@" + domain)
				if err != nil {
					continue
				}
				d := n[strings.LastIndexByte(n, '@')+1:]
				fg.byDomain[d] = append(fg.byDomain[d], g)
				continue
			}
			n, err := NormalizeEmail(m)
			if err != nil {
				continue
			}
			fg.byEmail[n] = append(fg.byEmail[n], g)
		}
	}
	for _, m := range []map[string][]string{fg.byEmail, fg.byDomain} {
		for k, gs := range m {
			slices.Sort(gs)
			m[k] = slices.Compact(gs)
		}
	}
	return fg
}

// of returns the file's groups of a normalised email, sorted, or nil.
// "*@example.com" covers that domain only, not its subdomains.
func (fg fileGroups) of(email string) []string {
	a := fg.byEmail[email]
	b := fg.byDomain[email[strings.LastIndexByte(email, '@')+1:]]
	switch {
	case len(b) == 0:
		return a
	case len(a) == 0:
		return b
	}
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// merge returns the union of the file's groups of email and stored (the
// account's, sorted and comma-separated) in the same form. It allocates
// only when the file names the user and adds something.
func (fg fileGroups) merge(email, stored string) string {
	if len(fg.byEmail) == 0 && len(fg.byDomain) == 0 {
		return stored
	}
	extra := fg.of(email)
	if len(extra) == 0 {
		return stored
	}
	if stored == "" {
		return joinGroups(extra)
	}
	all := append(strings.Split(stored, ","), extra...)
	slices.Sort(all)
	return joinGroups(slices.Compact(all))
}

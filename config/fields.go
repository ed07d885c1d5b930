package config

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
)

var fieldCache sync.Map // reflect.Type -> map[string]int

// fieldsOf maps each yaml key of struct type t to its field index. Fields
// tagged "-" or unexported are not keys.
func fieldsOf(t reflect.Type) map[string]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || name == "" {
			continue
		}
		m[name] = i
	}
	fieldCache.Store(t, m)
	return m
}

// suggest returns `; did you mean "x"?` for the known key closest to an
// unknown one (a typo such as urll), or "".
func suggest(key string, fields map[string]int) string {
	best, bestDist := "", 3
	for k := range fields {
		if dist := editDistance(strings.ToLower(key), k); dist < bestDist || dist == bestDist && k < best {
			best, bestDist = k, dist
		}
	}
	if best == "" || bestDist > 2 || bestDist >= len(key) {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance; keys are short, so the simple
// two-row version is plenty.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

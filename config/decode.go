package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks the yaml.Node tree into the Config by reflection, strictly:
// yaml.v3's KnownFields does not reach custom unmarshalers, and walking the
// nodes ourselves lets us record every key's line and report every problem.
type decoder struct {
	collector
	dir    string
	lookup func(string) (string, bool)
	fsys   files
	nodes  int // values decoded so far, aliases counted each time
}

// maxNodes bounds the values one file may decode to. Aliases let a small
// file stand for a huge one (a list of aliases to lists of aliases); no real
// configuration comes near this.
const maxNodes = 100_000

var durationType = reflect.TypeFor[Duration]()

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// deref follows aliases (anchors are allowed; their target is decoded as if
// written in place).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "empty (null)"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// value decodes n into v; path names it in problems.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	n = deref(n)
	if d.nodes++; d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			// Past maxProblems too: this is the one that explains the rest.
			d.probs = append(d.probs, Problem{File: d.file, Line: n.Line, Path: path,
				Msg: fmt.Sprintf("the file expands to more than %d values (through aliases?)", maxNodes)})
		}
		return
	}
	if v.Type() == durationType {
		d.duration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		d.value(n, p.Elem(), path)
		v.Set(p)
	case reflect.Slice:
		if isNull(n) {
			v.SetZero()
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.at(n.Line, path, "must be a list, not %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			ep := fmt.Sprintf("%s[%d]", path, i)
			d.lines[ep] = e.Line
			d.value(e, s.Index(i), ep)
		}
		v.Set(s)
	case reflect.Map:
		if v.Type().Elem() == upstreamType {
			d.upstreams(n, v, path)
			return
		}
		d.stringMap(n, v, path)
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string", "!!str", "!!int", "!!float", "!!timestamp"); ok {
			v.SetString(s)
		}
	case reflect.Int:
		s, ok := d.scalar(n, path, "an integer", "!!int")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 0, 0)
		if err != nil {
			d.at(n.Line, path, "integer %s is out of range", s)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if s, ok := d.scalar(n, path, "true or false", "!!bool"); ok {
			v.SetBool(strings.EqualFold(s, "true"))
		}
	default:
		d.at(n.Line, path, "cannot be decoded (internal: %s)", v.Type())
	}
}

// scalar returns n's value, ${VAR}-expanded, if its (re-resolved) tag is one
// of tags; otherwise it records a problem saying n must be want.
func (d *decoder) scalar(n *yaml.Node, path, want string, tags ...string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.at(n.Line, path, "must be %s, not %s", want, kindName(n))
		return "", false
	}
	tag := n.ShortTag()
	s := n.Value
	if strings.Contains(s, "${") {
		var err error
		if s, err = expand(s, d.lookup); err != nil {
			d.at(n.Line, path, "%v", err)
			return "", false
		}
		if n.Style&(yaml.TaggedStyle|yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			// A plain scalar is typed by what it expands to, so that
			// bcrypt_cost: ${COST} can fill an integer. A value from a
			// variable is never null: an empty one is an empty string.
			tag = (&yaml.Node{Kind: yaml.ScalarNode, Value: s}).ShortTag()
			if tag == "!!null" {
				tag = "!!str"
			}
		}
	}
	if tag == "!!null" {
		d.at(n.Line, path, `must be %s, not empty (null); write "" for an empty string`, want)
		return "", false
	}
	for _, t := range tags {
		if tag == t {
			return s, true
		}
	}
	if tag == "!!str" {
		d.at(n.Line, path, "must be %s, not %q", want, s)
	} else {
		d.at(n.Line, path, "must be %s, not %s %q", want, strings.TrimPrefix(tag, "!!"), s)
	}
	return "", false
}

// duration decodes Go duration syntax, or a bare 0.
func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	s, ok := d.scalar(n, path, `a duration such as "90s"`, "!!str", "!!int", "!!float")
	if !ok {
		return
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		// A bare number other than 0 is refused rather than guessed at:
		// seconds or nanoseconds?
		if f, ferr := strconv.ParseFloat(s, 64); ferr == nil {
			if f == 0 {
				v.SetInt(0)
				return
			}
			d.at(n.Line, path, "%s needs a unit, such as %ss", s, s)
			return
		}
		d.at(n.Line, path, "invalid duration %q (use Go syntax such as 90s, 15m or 24h)", s)
		return
	}
	if dur < 0 {
		d.at(n.Line, path, "must not be negative")
		return
	}
	v.SetInt(int64(dur))
}

// mapping decodes a mapping into a struct, refusing unknown and duplicate
// keys.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if path != "" && isNull(n) {
		// "auth:" with every key commented out: unlike a null string,
		// which could mean "" or "unset", a null section can only mean
		// "no keys", so the defaults stay.
		return
	}
	if n.Kind != yaml.MappingNode {
		if path == "" {
			d.at(n.Line, path, "the file must be a mapping of keys, not %s", kindName(n))
			return
		}
		d.at(n.Line, path, "must be a mapping, not %s", kindName(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			d.at(k.Line, path, "keys must be strings, not %s", kindName(k))
			continue
		}
		kp := join(path, k.Value)
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			d.at(k.Line, kp, "merge keys (<<) are not supported; repeat the keys")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.at(k.Line, kp, "duplicate key (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			d.at(k.Line, kp, "unknown key%s", suggest(k.Value, fields))
			continue
		}
		d.lines[kp] = k.Line
		d.value(val, v.Field(idx), kp)
	}
}

var upstreamType = reflect.TypeFor[Upstream]()

// mapWords are the words of a map's problems: what the mapping must be, its
// keys, and a duplicate key.
type mapWords struct{ mapping, keys, duplicate string }

// stringMap decodes a mapping with string keys (auth.groups), each value
// decoded by its type.
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string) {
	d.keyedMap(n, v, path, mapWords{"a mapping", "keys", "duplicate key"}, func(val *yaml.Node, kp string) reflect.Value {
		e := reflect.New(v.Type().Elem()).Elem()
		d.value(val, e, kp)
		return e
	})
}

// upstreams decodes the upstreams mapping: each value is a URL string or a
// mapping of Upstream's keys.
func (d *decoder) upstreams(n *yaml.Node, v reflect.Value, path string) {
	d.keyedMap(n, v, path, mapWords{"a mapping of name: URL", "upstream names", "duplicate upstream"}, func(val *yaml.Node, kp string) reflect.Value {
		var u Upstream
		switch val = deref(val); val.Kind {
		case yaml.MappingNode:
			d.mapping(val, reflect.ValueOf(&u).Elem(), kp)
		case yaml.ScalarNode:
			if s, ok := d.scalar(val, kp, "a URL or a mapping with url", "!!str"); ok {
				u.URL = s
			}
		default:
			d.at(val.Line, kp, "must be a URL or a mapping with url, not %s", kindName(val))
		}
		return reflect.ValueOf(u)
	})
}

// keyedMap decodes a mapping of non-empty string keys into the map v, each
// value by decode, reporting a bad or duplicate key at its line.
func (d *decoder) keyedMap(n *yaml.Node, v reflect.Value, path string, w mapWords, decode func(val *yaml.Node, kp string) reflect.Value) {
	if isNull(n) {
		v.SetZero()
		return
	}
	if n.Kind != yaml.MappingNode {
		d.at(n.Line, path, "must be %s, not %s", w.mapping, kindName(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" || k.Value == "" {
			d.at(k.Line, path, "%s must be non-empty strings, not %s", w.keys, kindName(k))
			continue
		}
		kp := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.at(k.Line, kp, "%s (first on line %d)", w.duplicate, first)
			continue
		}
		seen[k.Value] = k.Line
		d.lines[kp] = k.Line
		m.SetMapIndex(reflect.ValueOf(k.Value), decode(val, kp))
	}
	v.Set(m)
}

package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration file: where it is and what
// is wrong. Its Error is `FILE:LINE: field.path: what is wrong`, dropping the
// parts that are unknown (no file, line 0, no path).
type Problem struct {
	// File is the configuration file's path as given to Load or Parse.
	File string
	// Line is 1-based; 0 when the key is not in the file.
	Line int
	// Path is the key path, such as "routes[2].path"; "" for a problem of
	// the file itself (a YAML syntax error, an unreadable file).
	Path string
	// Msg says what is wrong, in lower case.
	Msg string
}

// Error formats the problem as `FILE:LINE: field.path: what is wrong`.
func (p Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in a configuration, in file order for
// decoding problems followed by validation problems. Load, Parse and
// Validate return it (never an empty one) as their error, so a caller can
// print one problem per line with errors.As or just print the error.
type Problems []Problem

// Error joins the problems with newlines.
func (ps Problems) Error() string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap exposes each problem, so errors.As can pick out a Problem.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// maxProblems caps what one file reports: past it the list helps nobody,
// and a hostile file (aliases to aliases) could otherwise make millions.
const maxProblems = 200

// collector gathers problems; file and lines place each at its line.
type collector struct {
	file    string
	lines   map[string]int
	probs   Problems
	dropped int // problems past maxProblems
}

// at records a problem at an explicit line (decoding knows the node).
func (c *collector) at(line int, path, format string, args ...any) {
	c.push(Problem{File: c.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *collector) push(p Problem) {
	if len(c.probs) >= maxProblems {
		c.dropped++
		return
	}
	c.probs = append(c.probs, p)
}

// add records a problem at the recorded line of path, or of its nearest
// recorded parent (a key missing from the file is reported where its parent
// is).
func (c *collector) add(path, format string, args ...any) {
	c.at(lineOf(c.lines, path), path, format, args...)
}

// err returns the problems as an error, or a true nil.
func (c *collector) err() error {
	if len(c.probs) == 0 {
		return nil
	}
	if c.dropped > 0 {
		c.probs = append(c.probs, Problem{File: c.file, Msg: fmt.Sprintf("and %d more problems", c.dropped)})
		c.dropped = 0
	}
	return c.probs
}

// lineOf looks path up in lines, walking up to its parents ("routes[2].path"
// -> "routes[2]" -> "routes") until one is recorded; 0 if none is.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

// parentPath strips the last ".key" or "[i]" of a key path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

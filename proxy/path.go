package proxy

import (
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"
)

// ErrBadPath is what CheckPath returns (wrapped with the reason) for a
// request target the gateway refuses with 400 bad_path.
var ErrBadPath = errors.New("bad path")

// Reasons CheckPath gives; each wraps ErrBadPath.
var (
	errNotAbsolute    = badPath("does not start with /")
	errOpaque         = badPath("opaque URL")
	errDotSegment     = badPath("dot segment")
	errEncodedSep     = badPath("encoded / or \\")
	errEncodedPercent = badPath("encoded %")
	errBackslash      = badPath("backslash")
	errSemicolon      = badPath("semicolon")
	errHash           = badPath("#")
	errEncodedDelim   = badPath("encoded ? or #")
	errControl        = badPath("control character")
	errPercent        = badPath("% in decoded path")
	errUTF8           = badPath("invalid UTF-8")
)

type pathError struct{ reason string }

func (e *pathError) Error() string { return "bad path: " + e.reason }
func (e *pathError) Unwrap() error { return ErrBadPath }
func badPath(reason string) error  { return &pathError{reason} }

// CheckPath checks a request URL's path the way README's "How a request is decided"
// says and returns the clean decoded path that all matching uses and that
// goes upstream. Both the client's raw encoding (u.RawPath, set by net/url
// exactly when it differs from the default encoding) and the decoded path
// (u.Path) are checked, so that an encoding trick cannot make the gateway
// and an upstream see different paths: dot segments, encoded separators
// (%2F, %5C), an encoded % (%25), an encoded query or fragment delimiter
// (%3F, %23), a backslash, ';', '#', control bytes and invalid UTF-8 are
// refused. Repeated slashes are merged. An empty path
// (absolute-form "http://host") is "/"; anything else not starting with
// "/" ("*" of OPTIONS *) is refused.
//
// CheckPath is on the hot path: for an already clean path it returns
// u.Path itself and allocates nothing (the errors are preallocated).
func CheckPath(u *url.URL) (clean string, err error) {
	if u.Opaque != "" {
		// "GET http:foo" would make RequestURI() send the opaque part.
		return "", errOpaque
	}
	if u.RawPath != "" {
		if err := checkRaw(u.RawPath); err != nil {
			return "", err
		}
	}
	return checkDecoded(u.Path)
}

// checkRaw looks at the client's own encoding for what decoding hides: an
// encoded separator makes a new segment only for the upstream, an encoded
// % would decode differently a second time, and an encoded ? or # ends the
// path early for an upstream that decodes and splits the target again
// ("/secret%3F" would be "/secret" there, past a deny rule for it).
func checkRaw(raw string) error {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) {
				// net/url would have refused it; refuse anyway when called
				// with a hand-built URL.
				return errEncodedPercent
			}
			h, l := raw[i+1], raw[i+2]|0x20 // lower-case the second hex digit
			switch {
			case h == '2' && l == 'f', h == '5' && l == 'c':
				return errEncodedSep
			case h == '2' && l == '5':
				return errEncodedPercent
			case h == '3' && l == 'f', h == '2' && l == '3':
				return errEncodedDelim
			}
			i += 2
			continue
		}
		if err := checkByte(c); err != nil {
			return err
		}
	}
	return nil
}

// checkByte refuses the bytes that are never allowed in a path, raw or
// decoded. A '?' in a decoded path was written %3F (a literal one starts
// the query), and net/url keeps no RawPath for the upper-case spelling, so
// this is where that one is caught.
func checkByte(c byte) error {
	switch {
	case c < 0x20 || c == 0x7f:
		return errControl
	case c == '\\':
		return errBackslash
	case c == ';':
		return errSemicolon
	case c == '#':
		return errHash
	case c == '?':
		return errEncodedDelim
	}
	return nil
}

// checkDecoded checks the decoded path byte by byte, tracking segments to
// find dot segments and empty ones (repeated slashes). It allocates only to
// merge repeated slashes.
func checkDecoded(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	if p[0] != '/' {
		return "", errNotAbsolute
	}
	high := false
	doubled := false
	segStart := 1 // index of the first byte of the current segment
	for i := 1; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			if c != '/' {
				if c >= 0x80 {
					high = true
				} else if c == '%' {
					return "", errPercent
				} else if err := checkByte(c); err != nil {
					return "", err
				}
				continue
			}
		}
		// End of a segment p[segStart:i].
		switch i - segStart {
		case 0:
			if i < len(p) {
				doubled = true // "//": an empty segment in the middle
			}
		case 1:
			if p[segStart] == '.' {
				return "", errDotSegment
			}
		case 2:
			if p[segStart] == '.' && p[segStart+1] == '.' {
				return "", errDotSegment
			}
		}
		segStart = i + 1
	}
	if high && !utf8.ValidString(p) {
		return "", errUTF8
	}
	if doubled {
		return mergeSlashes(p), nil
	}
	return p, nil
}

// mergeSlashes collapses runs of '/' into one.
func mergeSlashes(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	prevSlash := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '/' {
			if prevSlash {
				continue
			}
			prevSlash = true
		} else {
			prevSlash = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

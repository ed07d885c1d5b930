package auth

import (
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth/credential"
)

// sessionValue is what a session or API token key holds: everything the
// access decision needs, so that checking a request costs the one command
// that reads it. A change to the account (its groups) rewrites the values of
// its sessions and tokens in the transaction that makes the change; a
// change that ends them (disable, password) deletes them.
//
// The session or token key holds the value without its display fields
// (created, ip, user agent, name); the whole value is kept in the user's
// info hash (P{u:<id>}:sessions:info or :tokens:info, field = token hash),
// which only listings and account changes read. So the one command of the
// hot path is also the only one that touches the key, and OBJECT IDLETIME
// on it tells when it was last used.
//
// Stored form (version 2), fields separated by "\n":
//
//	2 \n userID \n email \n groups \n flags \n method \n created \n ip \n user agent \n name
//
// groups is sorted and comma-separated; flags is "m" when a one-time code
// passed the second factor, "h" when a passkey did, else "-"; created is Unix seconds; name is an API token's
// name. Version 1, written before groups existed, is "userID \n email": it
// reads as a password session in no group.
type sessionValue struct {
	UserID string
	Email  string
	Groups string
	MFA    bool
	// Factor is what passed the second factor: "otp" or "hwk" (RFC 8176).
	Factor    string
	Method    credential.Method
	Created   time.Time
	IP        string
	UserAgent string
	Name      string
}

// decision is v without its display fields: what the session key holds.
func (v sessionValue) decision() sessionValue {
	return sessionValue{UserID: v.UserID, Email: v.Email, Groups: v.Groups, MFA: v.MFA, Factor: v.Factor, Method: v.Method}
}

// maxUserAgent bounds the user agent a session keeps for GET /me/sessions.
const maxUserAgent = 256

func (v sessionValue) encode() string {
	var b strings.Builder
	b.Grow(64 + len(v.Email) + len(v.Groups) + len(v.IP) + len(v.UserAgent) + len(v.Name))
	b.WriteString("2\n")
	b.WriteString(v.UserID)
	b.WriteByte('\n')
	b.WriteString(v.Email)
	b.WriteByte('\n')
	b.WriteString(v.Groups)
	b.WriteByte('\n')
	switch {
	case v.MFA && v.Factor == credential.FactorHardwareKey:
		b.WriteByte('h')
	case v.MFA:
		b.WriteByte('m')
	default:
		b.WriteByte('-')
	}
	b.WriteByte('\n')
	b.WriteString(string(v.Method))
	b.WriteByte('\n')
	if v.Created.IsZero() {
		b.WriteByte('0')
	} else {
		b.WriteString(strconv.FormatInt(v.Created.Unix(), 10))
	}
	b.WriteByte('\n')
	b.WriteString(oneLine(v.IP, 64))
	b.WriteByte('\n')
	b.WriteString(oneLine(v.UserAgent, maxUserAgent))
	b.WriteByte('\n')
	b.WriteString(oneLine(v.Name, maxTokenName))
	return b.String()
}

// oneLine keeps s to printable characters and at most n bytes, so that a
// client's user agent can neither break the stored format nor bloat it.
func oneLine(s string, n int) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			clean = false
			break
		}
	}
	if !clean {
		s = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return -1
			}
			return r
		}, s)
	}
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	return s
}

// decodeSession parses a stored value of userID's session or token. It is
// on the hot path: the fields are substrings of v, nothing is allocated.
// A value of another user (which SHA-256 makes impossible short of a bug)
// or of an unknown form counts as no session.
func decodeSession(v, userID string) (sv sessionValue, ok bool) {
	if !strings.HasPrefix(v, "2\n") {
		// Version 1.
		if len(v) <= len(userID) || v[len(userID)] != '\n' || v[:len(userID)] != userID {
			return sv, false
		}
		return sessionValue{UserID: userID, Email: v[len(userID)+1:], Method: credential.MethodPassword}, true
	}
	rest := v[2:]
	var f [9]string
	for i := range f {
		if i == len(f)-1 {
			f[i] = rest
			break
		}
		var found bool
		f[i], rest, found = strings.Cut(rest, "\n")
		if !found {
			return sv, false
		}
	}
	if f[0] != userID {
		return sv, false
	}
	sv = sessionValue{UserID: f[0], Email: f[1], Groups: f[2], MFA: f[3] == "m" || f[3] == "h",
		Method: credential.Method(f[4]), IP: f[6], UserAgent: f[7], Name: f[8]}
	switch f[3] {
	case "m":
		sv.Factor = credential.FactorOTP
	case "h":
		sv.Factor = credential.FactorHardwareKey
	}
	if f[5] != "0" {
		created, _ := strconv.ParseInt(f[5], 10, 64)
		sv.Created = time.Unix(created, 0)
	}
	return sv, true
}

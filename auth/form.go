package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// maxBodyBytes is the documented limit on a request body of the gateway's
// own endpoints.
const maxBodyBytes = 64 << 10

// Errors of reading a request body; writeError maps them to the documented
// codes like the Service's sentinels.
var (
	errBadBody      = errors.New("malformed request body")
	errBodyTooLarge = errors.New("request body too large")
	errMediaType    = errors.New("unsupported media type")
)

// bodyKind is how a body was encoded.
type bodyKind int

const (
	bodyNone bodyKind = iota // no body at all (logout only)
	bodyJSON
	bodyForm
)

// credentials are the fields of a /login or /register body.
type credentials struct {
	Email    string
	Password string
	// RD is the raw return target of a form post ("" for JSON).
	RD string
}

// mediaKind classifies the request's Content-Type. Parameters such as
// charset=utf-8 are allowed; another charset is not, because the body is
// read as UTF-8.
func mediaKind(r *http.Request) (bodyKind, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return bodyNone, errMediaType
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return bodyNone, errMediaType
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "us-ascii") {
		return bodyNone, errMediaType
	}
	switch mt {
	case "application/json":
		return bodyJSON, nil
	case "application/x-www-form-urlencoded":
		return bodyForm, nil
	}
	return bodyNone, errMediaType
}

// readBody reads at most maxBodyBytes of r's body. A Content-Length that
// announces more is refused before anything is read. The read deadline
// that the endpoint set (limitBodyRead) is lifted once the whole body is
// in; after a failure it stays, so that the server gives up reading the
// rest too and closes the connection.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBodyBytes {
		return nil, errBodyTooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errBodyTooLarge
		}
		// A body not sent within bodyReadTimeout ends here too.
		return nil, errBadBody
	}
	// ErrNotSupported (no deadline to lift) is fine.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	return b, nil
}

// readCredentials reads the email/password body of /login and /register.
// The kind is known once the Content-Type has been accepted, so that a
// failure on a form post can be answered with the HTML page even when the
// body itself is broken.
func readCredentials(w http.ResponseWriter, r *http.Request) (credentials, bodyKind, error) {
	kind, err := mediaKind(r)
	if err != nil {
		return credentials{}, kind, err
	}
	body, err := readBody(w, r)
	if err != nil {
		return credentials{}, kind, err
	}
	if kind == bodyForm {
		var c credentials
		fields, err := parseForm(body, "email", "password", "rd")
		if err != nil {
			return credentials{}, kind, err
		}
		e, okE := fields["email"]
		p, okP := fields["password"]
		if !okE || !okP {
			return credentials{}, kind, errBadBody
		}
		c.Email, c.Password, c.RD = e, p, formRD(fields, r)
		return c, kind, nil
	}
	fields, err := parseJSONObject(body, "email", "password")
	if err != nil {
		return credentials{}, kind, err
	}
	e, okE := fields["email"]
	p, okP := fields["password"]
	if !okE || !okP {
		return credentials{}, kind, errBadBody
	}
	return credentials{Email: e, Password: p}, kind, nil
}

// formRD is a form post's return target: the rd field, else the rd of the
// query string the form posted to (the sign-in page's own URL carries it
// after a redirect to sign in); the field wins.
func formRD(fields map[string]string, r *http.Request) string {
	if v, ok := fields["rd"]; ok {
		return v
	}
	return r.URL.Query().Get("rd")
}

// readLogoutBody accepts no body, any single JSON object, or a form with an
// optional rd field, and returns the body's kind and rd.
func readLogoutBody(w http.ResponseWriter, r *http.Request) (bodyKind, string, error) {
	body, err := readBody(w, r)
	if err != nil {
		return bodyNone, "", err
	}
	if len(body) == 0 {
		// An empty form post is still a form: it wants a redirect.
		if kind, err := mediaKind(r); err == nil && kind == bodyForm {
			return bodyForm, formRD(nil, r), nil
		}
		return bodyNone, "", nil
	}
	kind, err := mediaKind(r)
	if err != nil {
		return bodyNone, "", err
	}
	if kind == bodyForm {
		fields, err := parseForm(body, "rd")
		if err != nil {
			return kind, "", err
		}
		return kind, formRD(fields, r), nil
	}
	if !utf8.Valid(body) {
		return kind, "", errBadBody
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return kind, "", errBadBody
	}
	if len(obj) != 0 {
		// Logout has no JSON fields, so any field is an unknown one
		// (contract: unknown fields get 400, on every body-reading POST).
		return kind, "", errBadBody
	}
	if _, err := dec.Token(); err != io.EOF {
		return kind, "", errBadBody
	}
	return kind, "", nil
}

// parseForm parses an application/x-www-form-urlencoded body strictly:
// only the named fields, each at most once, valid escapes and UTF-8.
// url.ParseQuery alone would let the last duplicate lose silently and
// accept unknown fields.
func parseForm(body []byte, allowed ...string) (map[string]string, error) {
	if !utf8.Valid(body) {
		return nil, errBadBody
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		// Broken escapes and semicolons.
		return nil, errBadBody
	}
	out := make(map[string]string, len(vals))
	for k, vs := range vals {
		if !isAllowed(k, allowed) || len(vs) != 1 || !utf8.ValidString(vs[0]) {
			return nil, errBadBody
		}
		out[k] = vs[0]
	}
	return out, nil
}

// parseJSONObject parses body as exactly one JSON object whose keys are
// among allowed (compared exactly: encoding/json would let "EMAIL" fill
// email), each present at most once (encoding/json would let the last
// win), with string values only, and nothing after it.
func parseJSONObject(body []byte, allowed ...string) (map[string]string, error) {
	// encoding/json turns invalid UTF-8 into U+FFFD silently; a password
	// changed that way would never match again.
	if !utf8.Valid(body) {
		return nil, errBadBody
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errBadBody
	}
	out := make(map[string]string, len(allowed))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errBadBody
		}
		key, ok := tok.(string)
		if !ok || !isAllowed(key, allowed) {
			return nil, errBadBody
		}
		if _, dup := out[key]; dup {
			return nil, errBadBody
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, errBadBody
		}
		// A string, never null, a number, a bool, an object or an array
		// (an object or array shows up here as its opening Delim).
		val, ok := tok.(string)
		if !ok {
			return nil, errBadBody
		}
		out[key] = val
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errBadBody
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errBadBody
	}
	return out, nil
}

func isAllowed(k string, allowed []string) bool {
	for _, a := range allowed {
		if k == a {
			return true
		}
	}
	return false
}

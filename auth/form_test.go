package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func newBodyRequest(contentType, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func TestReadCredentials(t *testing.T) {
	const js = "application/json"
	const form = "application/x-www-form-urlencoded"
	big := `{"email":"a@b.c","password":"` + strings.Repeat("x", maxBodyBytes) + `"}`
	tests := []struct {
		name, ct, body string
		want           credentials
		wantKind       bodyKind
		wantErr        error
	}{
		{"json", js, `{"email":"a@b.c","password":"pw"}`, credentials{Email: "a@b.c", Password: "pw"}, bodyJSON, nil},
		{"json charset", "application/json; charset=UTF-8", `{"password":"pw","email":"a@b.c"}`, credentials{Email: "a@b.c", Password: "pw"}, bodyJSON, nil},
		{"json whitespace", js, " \n{ \"email\" : \"a@b.c\" , \"password\" : \"pw\" }\n ", credentials{Email: "a@b.c", Password: "pw"}, bodyJSON, nil},
		{"json escaped key", js, `{"em\u0061il":"a@b.c","password":"p\"w"}`, credentials{Email: "a@b.c", Password: `p"w`}, bodyJSON, nil},
		{"json empty strings", js, `{"email":"","password":""}`, credentials{}, bodyJSON, nil},
		{"json duplicate key", js, `{"email":"a@b.c","password":"pw","email":"x@y.z"}`, credentials{}, bodyJSON, errBadBody},
		{"json duplicate escaped key", js, `{"email":"a@b.c","password":"pw","\u0065mail":"x@y.z"}`, credentials{}, bodyJSON, errBadBody},
		{"json unknown field", js, `{"email":"a@b.c","password":"pw","admin":"true"}`, credentials{}, bodyJSON, errBadBody},
		{"json rd is not a JSON field", js, `{"email":"a@b.c","password":"pw","rd":"/"}`, credentials{}, bodyJSON, errBadBody},
		{"json key case", js, `{"EMAIL":"a@b.c","password":"pw"}`, credentials{}, bodyJSON, errBadBody},
		{"json key case password", js, `{"email":"a@b.c","Password":"pw"}`, credentials{}, bodyJSON, errBadBody},
		{"json trailing object", js, `{"email":"a@b.c","password":"pw"}{}`, credentials{}, bodyJSON, errBadBody},
		{"json trailing garbage", js, `{"email":"a@b.c","password":"pw"}x`, credentials{}, bodyJSON, errBadBody},
		{"json trailing comma", js, `{"email":"a@b.c","password":"pw",}`, credentials{}, bodyJSON, errBadBody},
		{"json null", js, `null`, credentials{}, bodyJSON, errBadBody},
		{"json null value", js, `{"email":null,"password":"pw"}`, credentials{}, bodyJSON, errBadBody},
		{"json number", js, `{"email":"a@b.c","password":12345678}`, credentials{}, bodyJSON, errBadBody},
		{"json bool", js, `{"email":"a@b.c","password":true}`, credentials{}, bodyJSON, errBadBody},
		{"json array value", js, `{"email":["a@b.c"],"password":"pw"}`, credentials{}, bodyJSON, errBadBody},
		{"json object value", js, `{"email":{"x":"y"},"password":"pw"}`, credentials{}, bodyJSON, errBadBody},
		{"json array", js, `[{"email":"a@b.c","password":"pw"}]`, credentials{}, bodyJSON, errBadBody},
		{"json string", js, `"email"`, credentials{}, bodyJSON, errBadBody},
		{"json missing password", js, `{"email":"a@b.c"}`, credentials{}, bodyJSON, errBadBody},
		{"json missing email", js, `{"password":"pw"}`, credentials{}, bodyJSON, errBadBody},
		{"json empty object", js, `{}`, credentials{}, bodyJSON, errBadBody},
		{"json empty body", js, ``, credentials{}, bodyJSON, errBadBody},
		{"json invalid utf8", js, "{\"email\":\"a@b.c\",\"password\":\"p\xffw\"}", credentials{}, bodyJSON, errBadBody},
		{"json unterminated", js, `{"email":"a@b.c","password":"pw"`, credentials{}, bodyJSON, errBadBody},
		{"json too large", js, big, credentials{}, bodyJSON, errBodyTooLarge},
		{"form", form, "email=a%40b.c&password=p%26w&rd=%2Fapp", credentials{Email: "a@b.c", Password: "p&w", RD: "/app"}, bodyForm, nil},
		{"form plus is space", form, "email=a@b.c&password=a+b", credentials{Email: "a@b.c", Password: "a b"}, bodyForm, nil},
		{"form charset", form + "; charset=utf-8", "email=a@b.c&password=pw", credentials{Email: "a@b.c", Password: "pw"}, bodyForm, nil},
		{"form duplicate", form, "email=a@b.c&password=pw&email=x@y.z", credentials{}, bodyForm, errBadBody},
		{"form duplicate rd", form, "email=a@b.c&password=pw&rd=/&rd=//evil", credentials{}, bodyForm, errBadBody},
		{"form unknown", form, "email=a@b.c&password=pw&admin=1", credentials{}, bodyForm, errBadBody},
		{"form key case", form, "EMAIL=a@b.c&password=pw", credentials{}, bodyForm, errBadBody},
		{"form missing password", form, "email=a@b.c", credentials{}, bodyForm, errBadBody},
		{"form broken escape", form, "email=a%zz&password=pw", credentials{}, bodyForm, errBadBody},
		{"form semicolon", form, "email=a@b.c;password=pw", credentials{}, bodyForm, errBadBody},
		{"form invalid utf8", form, "email=a@b.c&password=%ff", credentials{}, bodyForm, errBadBody},
		{"form too large", form, "email=a@b.c&password=" + strings.Repeat("x", maxBodyBytes), credentials{}, bodyForm, errBodyTooLarge},
		{"no content type", "", `{"email":"a@b.c","password":"pw"}`, credentials{}, bodyNone, errMediaType},
		{"text plain", "text/plain", `{"email":"a@b.c","password":"pw"}`, credentials{}, bodyNone, errMediaType},
		{"multipart", "multipart/form-data; boundary=x", "--x--", credentials{}, bodyNone, errMediaType},
		{"json suffix type", "application/problem+json", `{}`, credentials{}, bodyNone, errMediaType},
		{"bad media type", "application/json;;", `{}`, credentials{}, bodyNone, errMediaType},
		{"latin1 charset", "application/json; charset=iso-8859-1", `{}`, credentials{}, bodyNone, errMediaType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			got, kind, err := readCredentials(rec, newBodyRequest(tc.ct, tc.body))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if kind != tc.wantKind {
				t.Errorf("kind = %d, want %d", kind, tc.wantKind)
			}
			if got != tc.want {
				t.Errorf("credentials = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReadBodyAnnouncedLength(t *testing.T) {
	r := newBodyRequest("application/json", `{}`)
	r.ContentLength = maxBodyBytes + 1
	if _, err := readBody(httptest.NewRecorder(), r); !errors.Is(err, errBodyTooLarge) {
		t.Errorf("err = %v, want errBodyTooLarge", err)
	}
	// A chunked body announces nothing; MaxBytesReader stops it.
	r = newBodyRequest("application/json", strings.Repeat(" ", maxBodyBytes+1))
	r.ContentLength = -1
	if _, err := readBody(httptest.NewRecorder(), r); !errors.Is(err, errBodyTooLarge) {
		t.Errorf("unannounced: err = %v, want errBodyTooLarge", err)
	}
	r = newBodyRequest("application/json", strings.Repeat(" ", maxBodyBytes))
	if b, err := readBody(httptest.NewRecorder(), r); err != nil || len(b) != maxBodyBytes {
		t.Errorf("exactly the limit: len %d, err %v", len(b), err)
	}
}

func TestReadLogoutBody(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	tests := []struct {
		name, ct, body string
		wantKind       bodyKind
		wantRD         string
		wantErr        error
	}{
		{"no body", "", "", bodyNone, "", nil},
		{"empty json", "application/json", "", bodyNone, "", nil},
		{"empty text", "text/plain", "", bodyNone, "", nil},
		{"json object", "application/json", `{}`, bodyJSON, "", nil},
		{"json object with an unknown field", "application/json", `{"anything":[1,2]}`, bodyJSON, "", errBadBody},
		{"json object with rd (form only)", "application/json", `{"rd":"/x"}`, bodyJSON, "", errBadBody},
		{"json null", "application/json", `null`, bodyJSON, "", errBadBody},
		{"json array", "application/json", `[]`, bodyJSON, "", errBadBody},
		{"json trailing", "application/json", `{} {}`, bodyJSON, "", errBadBody},
		{"json invalid utf8", "application/json", "{\"a\":\"\xff\"}", bodyJSON, "", errBadBody},
		{"empty form", form, "", bodyForm, "", nil},
		{"form rd", form, "rd=%2Fbye", bodyForm, "/bye", nil},
		{"form unknown", form, "rd=/&x=1", bodyForm, "", errBadBody},
		{"form duplicate", form, "rd=/&rd=/x", bodyForm, "", errBadBody},
		{"text body", "text/plain", "hello", bodyNone, "", errMediaType},
		{"no type with body", "", "hello", bodyNone, "", errMediaType},
		{"too large", "application/json", `{"a":"` + strings.Repeat("x", maxBodyBytes) + `"}`, bodyNone, "", errBodyTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newBodyRequest(tc.ct, tc.body)
			kind, rd, err := readLogoutBody(httptest.NewRecorder(), r)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if kind != tc.wantKind || rd != tc.wantRD {
				t.Errorf("kind, rd = %d, %q; want %d, %q", kind, rd, tc.wantKind, tc.wantRD)
			}
		})
	}
}

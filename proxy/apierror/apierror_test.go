package apierror

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteEveryCode(t *testing.T) {
	for c, e := range entries {
		t.Run(string(c), func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("Retry-After", "7")
			Write(rec, c)
			if rec.Code != e.status {
				t.Errorf("status = %d, want %d", rec.Code, e.status)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := rec.Header().Get("Retry-After"); got != "7" {
				t.Errorf("Retry-After lost: %q", got)
			}
			var body struct {
				Errors []struct {
					Status int    `json:"status"`
					Code   string `json:"code"`
					Title  string `json:"title"`
					Detail string `json:"detail"`
				} `json:"errors"`
			}
			dec := json.NewDecoder(rec.Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				t.Fatalf("body does not decode: %v", err)
			}
			if len(body.Errors) != 1 {
				t.Fatalf("errors = %d, want 1", len(body.Errors))
			}
			got := body.Errors[0]
			if got.Status != e.status || got.Code != string(WireCode(c)) || got.Title != http.StatusText(e.status) || got.Detail == "" {
				t.Errorf("error = %+v", got)
			}
		})
	}
}

func TestWriteUnknownCodeIsInternalError(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, Code("no_such_code"))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	if Status(Code("no_such_code")) != 500 {
		t.Errorf("Status of unknown code is not 500")
	}
}

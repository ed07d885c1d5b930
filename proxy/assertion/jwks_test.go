package assertion

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

func TestJWKSHandler(t *testing.T) {
	fa := newTestKey(t)
	ks := mustKeySet(t, fa)
	srv := newJWKSServer(t, ks)

	tests := []struct {
		name       string
		method     string
		set        *KeySet
		wantStatus int
		wantBody   []byte
	}{
		{"GET", http.MethodGet, ks, http.StatusOK, ks.JWKS()},
		{"HEAD", http.MethodHead, ks, http.StatusOK, nil},
		{"no set yet", http.MethodGet, nil, http.StatusOK, []byte(`{"keys":[]}`)},
		{"POST", http.MethodPost, ks, http.StatusMethodNotAllowed, apierror.Body(apierror.MethodNotAllowed)},
		{"DELETE", http.MethodDelete, ks, http.StatusMethodNotAllowed, apierror.Body(apierror.MethodNotAllowed)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.set(tc.set)
			req, err := http.NewRequest(tc.method, srv.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if !bytes.Equal(body, tc.wantBody) {
				t.Errorf("body = %s, want %s", body, tc.wantBody)
			}
			if resp.StatusCode == http.StatusMethodNotAllowed {
				if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
					t.Errorf("Allow = %q, want %q", got, "GET, HEAD")
				}
				return
			}
			for h, want := range map[string]string{
				"Content-Type":           "application/jwk-set+json",
				"Cache-Control":          "public, max-age=300",
				"X-Content-Type-Options": "nosniff",
			} {
				if got := resp.Header.Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
		})
	}
}

// TestJWKSHandlerSwap checks that a reload's new set is served on the next
// request, with no restart of the handler.
func TestJWKSHandlerSwap(t *testing.T) {
	fa := newTestKey(t)
	fb := newTestKey(t)
	before, after := mustKeySet(t, fa), mustKeySet(t, fb, fa)
	srv := newJWKSServer(t, before)
	get := func() []byte {
		resp, err := http.Get(srv.url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if got := get(); !bytes.Equal(got, before.JWKS()) {
		t.Fatalf("before the swap: %s, want %s", got, before.JWKS())
	}
	srv.set(after)
	if got := get(); !bytes.Equal(got, after.JWKS()) {
		t.Errorf("after the swap: %s, want %s", got, after.JWKS())
	}
}

package auth

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// gatehouseJS is the pages' one script (passkeys, the copy button). It is
// a file of its own, not inline, so the pages' CSP can say script-src
// 'self' and allow no inline script at all.
//
//go:embed pages/gatehouse.js
var gatehouseJS []byte

// scriptETag names this build's script, so a browser revalidates it
// cheaply and never runs a stale copy after an upgrade.
var scriptETag = func() string {
	sum := sha256.Sum256(gatehouseJS)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}()

// ScriptHandler serves gatehouse.js (for ACCOUNT_PATH/gatehouse.js). It
// needs no session: the script holds nothing secret, and the sign-in page
// needs it before there is one.
func ScriptHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			apierror.Write(w, apierror.MethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		// no-cache means "revalidate every time", which the ETag turns
		// into a 304: an upgraded gateway's pages never meet an old script.
		h.Set("Cache-Control", "no-cache")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("ETag", scriptETag)
		http.ServeContent(w, r, "gatehouse.js", time.Time{}, bytes.NewReader(gatehouseJS))
	})
}

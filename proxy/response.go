package proxy

import (
	"net/http"
	"strings"
)

// dropSessionSetCookie removes an upstream's Set-Cookie lines for the
// gateway's session cookie. Only the gateway may set or clear it: an
// upstream (a public one, or a compromised one) that could would plant a
// session of its choosing in the browser (signing the user in as someone
// else) or log users out. Other cookies pass untouched. It costs nothing
// for a response without Set-Cookie. 1xx responses never reach it: the
// request's statusWriter filters those (see statusWriter.WriteHeader).
func (g *Gateway) dropSessionSetCookie(res *http.Response) error {
	dropSetCookie(res.Header, g.cookie.Name)
	return nil
}

// dropSetCookie removes from h the Set-Cookie lines that set cookie name,
// and every line that sets a cookie without a name: a browser stores
// "=NAME=VALUE" as a nameless cookie and sends it back as "NAME=VALUE",
// which would plant the session cookie past a filter on the name alone.
func dropSetCookie(h http.Header, name string) {
	vs := h["Set-Cookie"]
	if len(vs) == 0 {
		return
	}
	kept := vs[:0]
	for _, v := range vs {
		pair, _, _ := strings.Cut(v, ";")
		n, _, hasEq := strings.Cut(pair, "=")
		n = strings.TrimSpace(n)
		if n == name || n == "" || !hasEq {
			continue
		}
		kept = append(kept, v)
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
	} else {
		h["Set-Cookie"] = kept
	}
}

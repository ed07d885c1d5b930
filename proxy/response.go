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
// for a response without Set-Cookie.
func (g *Gateway) dropSessionSetCookie(res *http.Response) error {
	vs := res.Header["Set-Cookie"]
	if len(vs) == 0 {
		return nil
	}
	kept := vs[:0]
	for _, v := range vs {
		name, _, _ := strings.Cut(v, "=")
		if strings.TrimSpace(name) == g.cookie.Name {
			continue
		}
		kept = append(kept, v)
	}
	if len(kept) == 0 {
		delete(res.Header, "Set-Cookie")
	} else {
		res.Header["Set-Cookie"] = kept
	}
	return nil
}

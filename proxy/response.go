package proxy

import (
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
)

// dropSessionSetCookie removes an upstream's Set-Cookie lines for the
// gateway's session cookie. Only the gateway may set or clear it: an
// upstream (a public one, or a compromised one) that could would plant a
// session of its choosing in the browser (signing the user in as someone
// else) or log users out. Other cookies pass untouched. It costs nothing
// for a response without Set-Cookie. 1xx responses never reach it (see
// informationalGuard).
func (g *Gateway) dropSessionSetCookie(res *http.Response) error {
	dropSetCookie(res.Header, g.cookie.Name)
	return nil
}

// dropSetCookie removes from h the Set-Cookie lines that set cookie name.
func dropSetCookie(h http.Header, name string) {
	vs := h["Set-Cookie"]
	if len(vs) == 0 {
		return
	}
	kept := vs[:0]
	for _, v := range vs {
		n, _, _ := strings.Cut(v, "=")
		if strings.TrimSpace(n) == name {
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

// informationalGuard is the upstream transport with the session cookie
// filter applied to 1xx responses too. ReverseProxy copies the header of a
// 1xx (103 Early Hints) to the client from its own Got1xxResponse trace
// hook, which ModifyResponse never sees, so an upstream could plant a
// session with "103 + Set-Cookie" the filter drops from its final
// response. The guard's hook runs before ReverseProxy's (WithClientTrace
// calls the newest hooks first, with the same header map) and removes the
// lines there.
type informationalGuard struct {
	next http.RoundTripper
	// got1xx is the hook, made once: a method value built per request
	// would allocate.
	got1xx func(int, textproto.MIMEHeader) error
}

func newInformationalGuard(next http.RoundTripper, cookieName string) *informationalGuard {
	return &informationalGuard{next: next, got1xx: func(_ int, h textproto.MIMEHeader) error {
		dropSetCookie(http.Header(h), cookieName)
		return nil
	}}
}

// RoundTrip sends req through next with the 1xx filter installed. It costs
// a few allocations per request (WithClientTrace composes the hooks), the
// price of a filter ReverseProxy offers no other place for.
func (t *informationalGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	trace := &httptrace.ClientTrace{Got1xxResponse: t.got1xx}
	return t.next.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
}

package credential

import (
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
)

// Cookie is the session cookie's attributes, compiled once from
// config.Session: the login sets it, and the proxy, forward-auth and logout
// clear it with exactly the same name, path and domain, or the browser
// would keep the one it holds.
type Cookie struct {
	Name     string
	domain   string
	secure   bool
	sameSite http.SameSite
	maxAge   int
	clear    string
}

// NewCookie compiles the cookie attributes of s.
func NewCookie(s config.Session) Cookie {
	c := Cookie{Name: s.CookieName, domain: s.CookieDomain, secure: s.CookieSecure,
		sameSite: http.SameSiteLaxMode, maxAge: int(time.Duration(s.TTL) / time.Second)}
	if strings.EqualFold(s.CookieSameSite, "strict") {
		c.sameSite = http.SameSiteStrictMode
	}
	cl := c.Set("")
	cl.MaxAge = -1 // written as Max-Age=0
	c.clear = cl.String()
	return c
}

// Set returns the cookie that carries a new session token.
func (c Cookie) Set(token string) *http.Cookie {
	return &http.Cookie{Name: c.Name, Value: token, Path: "/", Domain: c.domain, MaxAge: c.maxAge,
		Secure: c.secure, HttpOnly: true, SameSite: c.sameSite}
}

// Clear is the Set-Cookie value that ends the session cookie on the
// client. It is computed once: the hot path appends it as is.
func (c Cookie) Clear() string { return c.clear }

// CrossOrigin returns the cross-origin protection of the gateway's unsafe
// requests (its own endpoints' POSTs and DELETEs, and proxied ones with
// csrf.protect_upstream) with csrf.trusted_origins, which config.Validate
// checked exactly as AddTrustedOrigin does. deny answers a refused request
// when the protection is used as a Handler; nil keeps Go's default.
func CrossOrigin(trusted []string, deny http.Handler) *http.CrossOriginProtection {
	c := http.NewCrossOriginProtection()
	for _, o := range trusted {
		_ = c.AddTrustedOrigin(o)
	}
	if deny != nil {
		c.SetDenyHandler(deny)
	}
	return c
}

package auth

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// pagesFS holds the sign-in, its second step, registration, "registration
// closed" and account pages and their stylesheet. The stylesheet is
// inline; the one script (gatehouse.js, served by the gateway) only adds
// passkeys and copy buttons, so every page works with JavaScript off for
// everything else.
//
//go:embed pages/*.html pages/style.css
var pagesFS embed.FS

// pageSet is the parsed pages and the stylesheet that goes inline into
// each, with the CSP hash that allows exactly that stylesheet.
type pageSet struct {
	login, register, closed *template.Template
	account                 *template.Template
	css                     template.CSS
	styleHash               string // 'sha256-...'
	// second is the sign-in's second step.
	second *template.Template
}

// pageData is what the templates read.
type pageData struct {
	CSS template.CSS
	// Error is the message shown in the role="alert" region; "" hides it.
	Error string
	// Email refills the email field after a failed post. The password is
	// never sent back.
	Email string
	// RD is the sanitised return target carried by the form's hidden
	// field and by the link to the other page.
	RD string
	// Script is the path of gatehouse.js, which every page loads.
	Script string
	// Factor is the second factor's part of a page (the second step of
	// the sign-in, the account page's TOTP and passkeys); nil elsewhere.
	Factor                  *factorView
	LoginPath, RegisterPath string
	RegistrationOpen        bool
	MinLength               int
	// Account is the account page's content; nil on the other pages.
	Account *accountView
}

func loadPages() (*pageSet, error) {
	css, err := pagesFS.ReadFile("pages/style.css")
	if err != nil {
		return nil, fmt.Errorf("read stylesheet: %w", err)
	}
	sum := sha256.Sum256(css)
	ps := &pageSet{
		css:       template.CSS(css),
		styleHash: "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'",
	}
	for _, p := range []struct {
		dst  **template.Template
		file string
	}{{&ps.login, "login.html"}, {&ps.register, "register.html"}, {&ps.closed, "closed.html"}, {&ps.account, "account.html"}} {
		t, err := template.ParseFS(pagesFS, "pages/layout.html", "pages/"+p.file)
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", p.file, err)
		}
		*p.dst = t
	}
	t, err := template.ParseFS(pagesFS, "pages/layout.html", "pages/second_factor.html")
	if err != nil {
		return nil, fmt.Errorf("parse page second_factor.html: %w", err)
	}
	ps.second = t
	return ps, nil
}

// csp is the page's Content-Security-Policy. Nothing may load but the
// gateway's one script (script-src 'self', no inline script) and what it
// fetches from the gateway (connect-src 'self'); the one inline stylesheet
// is allowed by its hash; a page that shows a QR code allows it as a data:
// image. form-action also governs the redirect that answers a form post,
// so an absolute rd's origin is added for the page that carries it
// (SafeRedirect already vetted it).
func (ps *pageSet) csp(rd string, dataImages bool) string {
	formAction := "'self'"
	if rd != "" && rd[0] != '/' {
		if u, err := url.Parse(rd); err == nil && u.Host != "" {
			formAction += " " + strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
		}
	}
	img := ""
	if dataImages {
		img = "; img-src data:"
	}
	return "default-src 'none'; script-src 'self'; connect-src 'self'; style-src " + ps.styleHash + img +
		"; form-action " + formAction + "; base-uri 'none'; frame-ancestors 'none'"
}

// render writes one page with its security headers. The page is rendered
// into a buffer first so that a template error becomes a clean 500.
func (ps *pageSet) render(w http.ResponseWriter, t *template.Template, status int, d pageData) error {
	d.CSS = ps.css
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		apierror.Write(w, apierror.InternalError)
		return fmt.Errorf("render page: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Content-Security-Policy", ps.csp(d.RD, d.Factor != nil && d.Factor.QRCode != ""))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// pageMessage is the sentence a page shows for an error code. It tells the
// user what to do; it never says whether an email has an account beyond
// what registration's email_taken already must.
func pageMessage(code apierror.Code, minLength int, retryAfter time.Duration) string {
	switch code {
	case apierror.InvalidCredentials:
		return "The email or password is incorrect."
	case apierror.WeakPassword:
		return fmt.Sprintf("Passwords must be at least %d characters and at most 72 bytes long.", minLength)
	case apierror.EmailTaken:
		return "An account with this email already exists. Sign in instead."
	case apierror.TooManyAttempts:
		m := int((retryAfter + time.Minute - 1) / time.Minute)
		if m < 1 {
			m = 1
		}
		unit := "minutes"
		if m == 1 {
			unit = "minute"
		}
		return fmt.Sprintf("Too many failed sign-in attempts. Try again in %d %s.", m, unit)
	case apierror.RegistrationClosed:
		return "Registration is closed for this email address."
	case apierror.InvalidEmail:
		return "Enter a valid email address."
	case apierror.StoreUnavailable:
		return "The service is temporarily unavailable. Try again in a moment."
	case apierror.Overloaded:
		return "The service is busy. Try again in a second."
	case apierror.InvalidRequest:
		return "The form could not be read. Reload the page and try again."
	case apierror.PayloadTooLarge:
		return "The form is too large."
	}
	return "Something went wrong. Try again in a moment."
}

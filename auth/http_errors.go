package auth

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/proxy/apierror"
)

// errorCode maps an error of the Service or of reading a body to the
// contract's code. It is the one place where that mapping lives; whatever
// it does not know is internal_error.
func errorCode(err error) apierror.Code {
	switch {
	case errors.Is(err, errBadBody):
		return apierror.InvalidRequest
	case errors.Is(err, errBodyTooLarge):
		return apierror.PayloadTooLarge
	case errors.Is(err, errMediaType):
		return apierror.UnsupportedMediaType
	case errors.Is(err, ErrInvalidEmail):
		return apierror.InvalidEmail
	case errors.Is(err, ErrWeakPassword):
		return apierror.WeakPassword
	case errors.Is(err, ErrRegistrationClosed):
		return apierror.RegistrationClosed
	case errors.Is(err, ErrEmailTaken):
		return apierror.EmailTaken
	case errors.Is(err, ErrInvalidCredentials):
		return apierror.InvalidCredentials
	case errors.Is(err, ErrTooManyAttempts):
		return apierror.TooManyAttempts
	case errors.Is(err, ErrSessionNotFound):
		return apierror.Unauthenticated
	case errors.Is(err, ErrStoreUnavailable):
		return apierror.StoreUnavailable
	case errors.Is(err, ErrNotFound), errors.Is(err, errNotFoundPath):
		return apierror.NotFound
	case errors.Is(err, ErrInvalidTokenRequest):
		return apierror.InvalidRequest
	case errors.Is(err, errTokenForbidden):
		return apierror.Forbidden
	case errors.Is(err, ErrInvalidCode):
		return apierror.InvalidCode
	case errors.Is(err, ErrConflict):
		return apierror.Conflict
	case errors.Is(err, ErrTOTPUnavailable), errors.Is(err, ErrPasskeysUnavailable):
		return apierror.Forbidden
	case errors.Is(err, ErrMFARequired):
		return apierror.MFARequiredLogin
	case errors.Is(err, ErrMFASessionRequired):
		return apierror.MFARequired
	case errors.Is(err, errPendingGone):
		return apierror.InvalidCredentials
	case errors.Is(err, ErrOverloaded):
		return apierror.Overloaded
	}
	return apierror.InternalError
}

// formPage is the page a failed form post is answered with, and what it
// refills.
type formPage struct {
	tmpl  *template.Template
	email string
	rd    string // raw rd from the body; sanitised before it is shown
}

// writeError answers err: the HTML page again with the message shown when
// the request was a form post and a page is given, the documented JSON
// otherwise. Both carry the code's status; 429 adds Retry-After, 503
// overloaded Retry-After: 1 (the hash queue drains in about a second), 401
// WWW-Authenticate. Only errors without a code are logged, and then with
// the path alone: never the body, a token or Go's error text to the client.
func (h *handlers) writeError(w http.ResponseWriter, r *http.Request, err error, kind bodyKind, page *formPage) {
	code := errorCode(err)
	if code == apierror.InternalError {
		h.logger.LogAttrs(r.Context(), slog.LevelError, "auth endpoint failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	var retryAfter time.Duration
	if te, ok := errors.AsType[*ThrottledError](err); ok {
		retryAfter = te.RetryAfter
		w.Header().Set("Retry-After", strconv.Itoa(te.Seconds()))
	}
	if code == apierror.Overloaded {
		retryAfter = time.Second
		w.Header().Set("Retry-After", "1")
	}
	if code == apierror.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
	}
	if kind != bodyForm || page == nil {
		apierror.Write(w, code)
		return
	}
	d := h.pageData(r, page.rd)
	d.Email = page.email
	d.Error = pageMessage(code, h.minLength, retryAfter)
	tmpl := page.tmpl
	if code == apierror.RegistrationClosed && tmpl == h.pages.register && !h.registrationOpen {
		tmpl = h.pages.closed
	}
	if err := h.pages.render(w, tmpl, apierror.Status(code), d); err != nil {
		h.logger.LogAttrs(r.Context(), slog.LevelError, "auth page failed",
			slog.String("path", r.URL.Path), slog.Any("err", err))
	}
}

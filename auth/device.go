package auth

// Device cookies (OWASP "Slow down online guessing attacks with device
// cookies").
//
// A browser that signs in to an account (a login or a registration) gets a
// device cookie for that account: "gd1." + nonce + "." + HMAC-SHA256 over
// the normalised email and the nonce, keyed by a secret of the deployment.
// A login that presents a valid device cookie for the email it names is
// not counted in the per-email window over all addresses (which failures
// from many addresses can fill, locking the owner out everywhere); it is
// counted in a window of that device instead, with the per email-and-
// address limit (max_login_failures), so a stolen device cookie is worth
// no more guesses than one address. The per email-and-address and
// per-address windows apply as to every login.
//
// Replicas are stateless, so the secret lives in the store:
//
//	Pdevice_key                          string, 64 hex characters
//	    Created once with SET NX by whichever replica needs it first, read
//	    by the others, cached in memory. It never expires and is not
//	    rotated; whoever can read the store can forge device cookies
//	    (and, being able to write it, could make sessions anyway).
//	Pthrottle:d:<hex sha256(nonce)>      counter, as the login counters

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// DeviceCookieName is the device cookie's name. It is sent only to
	// the login path (Path), so it never reaches an upstream.
	DeviceCookieName = "gatehouse_device"
	// deviceCookieMaxAge is long on purpose: the cookie is what keeps a
	// browser its owner used before usable during an attack.
	deviceCookieMaxAge = 400 * 24 * time.Hour // browsers cap Max-Age at 400 days

	devicePrefix   = "gd1."
	deviceNonceLen = 22 // base64url of 16 bytes
	deviceMACLen   = 43 // base64url of 32 bytes
	deviceValueLen = len(devicePrefix) + deviceNonceLen + 1 + deviceMACLen
	deviceKeyBytes = 32
	// maxDeviceCookies bounds the cookies of that name a login looks at
	// (a sibling subdomain can toss in more, each costing an HMAC).
	maxDeviceCookies = 4
)

// deviceSigner caches the deployment's device key once read. The zero
// value is ready.
type deviceSigner struct {
	key atomic.Pointer[[]byte]
}

// deviceKey returns the deployment's device key, reading (and creating,
// the first time any replica needs it) it in the store.
func (s *Service) deviceKey(ctx context.Context) ([]byte, error) {
	if k := s.devices.key.Load(); k != nil {
		return *k, nil
	}
	k, err := s.store.deviceKey(ctx)
	if err != nil {
		return nil, err
	}
	s.devices.key.Store(&k)
	return k, nil
}

// errCorruptDeviceKey is a stored device key that does not decode.
var errCorruptDeviceKey = errors.New("auth: corrupt device key")

// deviceKey creates the device key if there is none (SET NX) and returns
// the one stored, in one round trip.
func (s *Store) deviceKey(ctx context.Context) ([]byte, error) {
	var fresh [deviceKeyBytes]byte
	if _, err := rand.Read(fresh[:]); err != nil {
		return nil, err
	}
	key := s.prefix + "device_key"
	var get *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, key, hex.EncodeToString(fresh[:]), 0)
		get = p.Get(ctx, key)
		return nil
	})
	if err != nil {
		return nil, storeErr("device_key", err)
	}
	k, err := hex.DecodeString(get.Val())
	if err != nil || len(k) != deviceKeyBytes {
		return nil, errCorruptDeviceKey
	}
	return k, nil
}

// deviceMAC is the signature of a device cookie for email and nonce.
func deviceMAC(key []byte, email, nonce string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("gatehouse device v1\x00"))
	m.Write([]byte(email))
	m.Write([]byte{0})
	m.Write([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newDeviceCookie returns a fresh device cookie value for the normalised
// email.
func (s *Service) newDeviceCookie(ctx context.Context, email string) (string, error) {
	key, err := s.deviceKey(ctx)
	if err != nil {
		return "", err
	}
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return "", err
	}
	nonce := base64.RawURLEncoding.EncodeToString(n[:])
	return devicePrefix + nonce + "." + deviceMAC(key, email, nonce), nil
}

// validDevice returns the nonce of the first of values that is a device
// cookie for the normalised email, or "".
func validDevice(key []byte, email string, values []string) string {
	for _, v := range values[:min(len(values), maxDeviceCookies)] {
		if len(v) != deviceValueLen || !strings.HasPrefix(v, devicePrefix) {
			continue
		}
		nonce, mac, ok := strings.Cut(v[len(devicePrefix):], ".")
		if !ok || len(nonce) != deviceNonceLen {
			continue
		}
		if hmac.Equal([]byte(mac), []byte(deviceMAC(key, email, nonce))) {
			return nonce
		}
	}
	return ""
}

// loginThrottle returns the counters and limits of a login attempt: the
// email-and-address, email and address windows, or with a valid device
// cookie for the email, the device's window in place of the email's.
// When the device key cannot be read the cookie is ignored: the attempt
// is throttled as one without it, never refused for it.
func (s *Service) loginThrottle(ctx context.Context, email, clientIP string, devices []string) (throttleKeys, throttleLimits) {
	keys, limits := s.store.throttleKeys(email, clientIP), s.limits
	if len(devices) == 0 {
		return keys, limits
	}
	key, err := s.deviceKey(ctx)
	if err != nil {
		s.metrics.storeError(err)
		s.log.Warn("auth: could not read the device key; device cookies ignored", "err", err)
		return keys, limits
	}
	if nonce := validDevice(key, email, devices); nonce != "" {
		keys[1] = s.store.prefix + "throttle:d:" + sha256Hex(nonce)
		limits[1] = limits[0]
	}
	return keys, limits
}

// deviceCookies are the values of the device cookies r carries.
func deviceCookies(r *http.Request) []string {
	var vs []string
	for _, c := range r.CookiesNamed(DeviceCookieName) {
		vs = append(vs, c.Value)
	}
	return vs
}

// setDeviceCookie gives the browser that just signed in to u a device
// cookie for u's account. Failing to make one costs the browser only its
// exemption later; it is logged, and the sign-in goes on.
func (h *handlers) setDeviceCookie(w http.ResponseWriter, r *http.Request, u User) {
	v, err := h.svc.newDeviceCookie(r.Context(), u.Email)
	if err != nil {
		h.svc.metrics.storeError(err)
		h.logger.Warn("auth: could not make a device cookie", "err", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     DeviceCookieName,
		Value:    v,
		Path:     h.loginPath,
		MaxAge:   int(deviceCookieMaxAge / time.Second),
		Secure:   h.cookieSecure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

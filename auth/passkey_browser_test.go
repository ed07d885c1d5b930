package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// Bounds for the browser: they only matter when something hangs, so a
// broken flow fails in seconds instead of at go test's ten-minute alarm.
const (
	pkBrowserTimeout = 60 * time.Second
	pkStepTimeout    = 15 * time.Second
)

// pkFindBrowser returns a Chromium-family browser, or skips the test
// (fails it with GATEHOUSE_REQUIRE_BROWSER=1, as CI sets).
func pkFindBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no browser found: none of chromium, chromium-browser, google-chrome is in PATH (apt-get install -y chromium)"
	if os.Getenv("GATEHOUSE_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + "; GATEHOUSE_REQUIRE_BROWSER=1 makes that a failure")
	}
	t.Skip(msg)
	return ""
}

// pkBrowser is one headless Chromium tab and the errors its pages logged.
type pkBrowser struct {
	ctx context.Context
	mu  sync.Mutex
	bad []string // exceptions, console errors, CSP violations
}

func newPKBrowser(t *testing.T) *pkBrowser {
	t.Helper()
	exe := pkFindBrowser(t)
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root, where the sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profile),
	)
	base, cancelBase := context.WithTimeout(context.Background(), pkBrowserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelBase()
	})
	b := &pkBrowser{ctx: tab}
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	if err := chromedp.Listen(tab, b.record); err != nil {
		t.Fatalf("listen to the browser: %v", err)
	}
	return b
}

func (b *pkBrowser) record(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
			msg = "console " + string(ev.Type)
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError || strings.Contains(ev.Entry.Text, "Content Security Policy") {
			msg = "log " + string(ev.Entry.Source) + ": " + ev.Entry.Text + " (" + ev.Entry.URL + ")"
		}
	}
	if msg != "" {
		b.mu.Lock()
		b.bad = append(b.bad, msg)
		b.mu.Unlock()
	}
}

// clear forgets the problems seen so far (after a step that logs some on
// purpose, like a refused request).
func (b *pkBrowser) clear() {
	b.mu.Lock()
	b.bad = nil
	b.mu.Unlock()
}

func (b *pkBrowser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.bad...)
}

// do runs one step under pkStepTimeout.
func (b *pkBrowser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, pkStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v; browser: %v", what, err, b.problems())
	}
}

// addAuthenticator gives the tab a virtual platform authenticator that
// holds discoverable credentials and verifies its user.
func (b *pkBrowser) addAuthenticator(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, pkStepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	_, err := chromedp.Call(ctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
		Options: &cdpwebauthn.VirtualAuthenticatorOptions{
			Protocol:                    cdpwebauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                cdpwebauthn.Ctap2versionCtap21,
			Transport:                   cdpwebauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
}

// pkTestPage is the page under test: the three passkey controls as the
// gateway's pages carry them (hidden until the script shows them), and the
// one script. withoutJSONHelpers loads
// a script first that removes the browser's WebAuthn JSON helpers, so that
// gatehouse.js's own encoding is what runs.
const pkTestPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>passkeys</title></head><body>
<section>
<form id="reg" hidden data-passkey="register" data-options="/t/reg/options" data-finish="/t/reg">
<input name="name" value="  Test   key ">
<button type="submit" id="add">Add a passkey</button>
</form>
<p role="status" id="reg-status"></p>
</section>
<section>
<button type="button" id="login" hidden data-passkey="login" data-options="/t/login/options" data-finish="/t/login" data-rd="/done?after=login">Sign in with a passkey</button>
<button type="button" id="second" hidden data-passkey="second-factor" data-options="/t/2fa/options" data-finish="/t/2fa" data-rd="/done?after=ignored">Use a passkey</button>
<button type="button" id="refused" hidden data-passkey="login" data-options="/t/login/options" data-finish="/t/refuse" data-rd="/done?after=refused">Refused</button>
<p role="status" id="status"></p>
</section>
%s<script src="/gatehouse.js"></script>
</body></html>`

const pkNoJSONHelpers = `delete PublicKeyCredential.parseCreationOptionsFromJSON;
delete PublicKeyCredential.parseRequestOptionsFromJSON;
delete PublicKeyCredential.prototype.toJSON;
window.gatehouseNoJSON = typeof PublicKeyCredential.parseCreationOptionsFromJSON === "undefined" &&
  typeof PublicKeyCredential.prototype.toJSON === "undefined";
`

// pkTestServer serves the test page and handlers that call the ceremonies
// the way the gateway's endpoints will: the state id in a cookie, the
// request's own origin. Every handler reports what happened on events.
type pkTestServer struct {
	srv    *httptest.Server
	base   string // http://localhost:PORT
	events chan string
}

// newPKTestServer returns the server, listening but not serving yet, so
// that its origin is known before the relying party is built.
func newPKTestServer(t *testing.T) *pkTestServer {
	t.Helper()
	s := &pkTestServer{events: make(chan string, 16), srv: httptest.NewUnstartedServer(nil)}
	t.Cleanup(s.srv.Close)
	_, port, err := net.SplitHostPort(s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// WebAuthn needs a secure context and a domain as rp id: localhost is
	// both, 127.0.0.1 neither.
	s.base = "http://localhost:" + port
	return s
}

// start serves the test page and handlers on f for user u.
func (s *pkTestServer) start(f *SecondFactors, u User, noJSON bool) {
	const csp = "default-src 'none'; script-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	extra := ""
	if noJSON {
		extra = `<script src="/nojson.js"></script>` + "\n"
	}
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", csp)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, body)
			s.events <- "page " + r.URL.RequestURI()
		}
	}
	mux.Handle("GET /{$}", page(fmt.Sprintf(pkTestPage, extra)))
	mux.Handle("GET /done", page("<!doctype html><title>done</title><p>done</p>"))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("GET /gatehouse.js", ScriptHandler())
	mux.HandleFunc("GET /nojson.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, pkNoJSONHelpers)
	})
	origin := func(r *http.Request) string { return "http://" + r.Host }
	begin := func(fn func(r *http.Request) ([]byte, string, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			opts, state, err := fn(r)
			if err != nil {
				s.fail(w, "begin "+r.URL.Path, err)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: "pk_state", Value: state, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: int(CeremonyTTL / time.Second)})
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(opts)
		}
	}
	state := func(r *http.Request) string {
		c, err := r.Cookie("pk_state")
		if err != nil {
			return ""
		}
		return c.Value
	}
	mux.Handle("POST /t/reg/options", begin(func(r *http.Request) ([]byte, string, error) {
		return f.BeginPasskeyRegistration(r.Context(), origin(r), u.ID, u.Email)
	}))
	mux.HandleFunc("POST /t/reg", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Name       string          `json:"name"`
			Credential json.RawMessage `json:"credential"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			s.fail(w, "decode registration", err)
			return
		}
		pk, err := f.FinishPasskeyRegistration(r.Context(), u.ID, u.Email, body.Name, state(r), body.Credential)
		if err != nil {
			s.fail(w, "finish registration", err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(pk)
		s.events <- "registered " + pk.Name
	})
	mux.Handle("POST /t/login/options", begin(func(r *http.Request) ([]byte, string, error) {
		return f.BeginPasskeyLogin(r.Context(), origin(r))
	}))
	mux.HandleFunc("POST /t/login", func(w http.ResponseWriter, r *http.Request) {
		body := readAll(r)
		id, email, err := f.FinishPasskeyLogin(r.Context(), state(r), body)
		if err != nil {
			s.fail(w, "finish login", err)
			return
		}
		// The same answer again: its state is gone, so it must fail.
		if _, _, err := f.FinishPasskeyLogin(r.Context(), state(r), body); err == nil {
			s.fail(w, "replayed login", fmt.Errorf("a replayed assertion was accepted"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{}`)
		s.events <- "login " + id + " " + email
	})
	mux.Handle("POST /t/2fa/options", begin(func(r *http.Request) ([]byte, string, error) {
		return f.BeginPasskeySecondFactor(r.Context(), origin(r), u.ID)
	}))
	mux.HandleFunc("POST /t/2fa", func(w http.ResponseWriter, r *http.Request) {
		if err := f.FinishPasskeySecondFactor(r.Context(), u.ID, state(r), readAll(r)); err != nil {
			s.fail(w, "finish second factor", err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"redirect":"/done?after=2fa"}`)
		s.events <- "second factor"
	})
	mux.HandleFunc("POST /t/refuse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"errors":[{"status":400,"code":"invalid_code","title":"Bad Request","detail":"x"}]}`)
		s.events <- "refused"
	})
	s.srv.Config.Handler = mux
	s.srv.Start()
}

func readAll(r *http.Request) []byte {
	b, _ := io.ReadAll(r.Body)
	return b
}

func (s *pkTestServer) fail(w http.ResponseWriter, what string, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprint(w, `{"errors":[{"status":400,"code":"invalid_code","title":"Bad Request","detail":"no"}]}`)
	s.events <- "error " + what + ": " + err.Error()
}

// expect waits for the next event other than a page load (unless a page
// load is what it waits for) and checks that it starts with want.
func (s *pkTestServer) expect(t *testing.T, b *pkBrowser, want string) string {
	t.Helper()
	timer := time.NewTimer(pkStepTimeout)
	defer timer.Stop()
	for {
		select {
		case ev := <-s.events:
			if strings.HasPrefix(ev, "page ") && !strings.HasPrefix(want, "page ") {
				continue
			}
			if !strings.HasPrefix(ev, want) {
				t.Fatalf("server event %q, want %q; browser: %v", ev, want, b.problems())
			}
			return ev
		case <-timer.C:
			t.Fatalf("no server event %q within %v; browser: %v", want, pkStepTimeout, b.problems())
		}
	}
}

// waitReady waits until the page at path has loaded and gatehouse.js has
// run. It asks again and again rather than with one Poll: a reload in
// between destroys the context a Poll runs in.
func waitReady(t *testing.T, b *pkBrowser, path string) {
	t.Helper()
	expr := fmt.Sprintf(`document.readyState === "complete" && location.pathname + location.search === %q && (location.pathname !== "/" || !!window.gatehouse)`, path)
	deadline := time.Now().Add(pkStepTimeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("page %s not ready within %v (last error %v); browser: %v", path, pkStepTimeout, last, b.problems())
}

func TestPasskeyBrowser(t *testing.T) {
	tests := []struct {
		name string
		// fixedOrigin configures the origin; otherwise each ceremony is
		// bound to the request's own.
		fixedOrigin bool
		noJSON      bool
	}{
		{"configured origin, browser JSON helpers", true, false},
		{"request origin, gatehouse.js encoding", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newRealEnv(t, nil)
			b := newPKBrowser(t)
			ctx := context.Background()
			u, _ := e.register(t, "pk@example.com", "correct horse battery")

			srv := newPKTestServer(t)
			var origins []string
			if tc.fixedOrigin {
				origins = []string{srv.base}
			}
			rp, err := NewRelyingParty("localhost", origins)
			if err != nil {
				t.Fatalf("NewRelyingParty: %v", err)
			}
			f := NewSecondFactors(e.store, nil, "", e.clock.Now, rp)
			srv.start(f, u, tc.noJSON)

			b.addAuthenticator(t)
			b.do(t, "open the page", chromedp.Navigate(srv.base+"/"))
			waitReady(t, b, "/")
			if tc.noJSON {
				ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.gatehouseNoJSON === true`))
				if err != nil || !ok {
					t.Fatalf("the browser's WebAuthn JSON helpers are still there (%v): the fallback is not under test", err)
				}
			}

			// Register: the page posts the options, creates the
			// credential, posts it and reloads.
			b.do(t, "add a passkey", chromedp.Click(chromedp.CSS(`#add`)))
			srv.expect(t, b, "registered Test key")
			srv.expect(t, b, "page /")
			waitReady(t, b, "/")
			keys, err := f.ListPasskeys(ctx, u.ID)
			if err != nil || len(keys) != 1 || keys[0].Name != "Test key" || !keys[0].LastUsedAt.IsZero() {
				t.Fatalf("ListPasskeys = %+v, %v; want one unused passkey called %q", keys, err, "Test key")
			}
			recs, _ := e.store.loadPasskeys(ctx, u.ID)
			if !recs[0].Credential.Flags.UserVerified || recs[0].Email != u.Email {
				t.Fatalf("stored passkey %+v: want user verified and the account's email", recs[0])
			}
			count := recs[0].Credential.Authenticator.SignCount

			// Passwordless sign-in: discoverable, so the server learns
			// the user from the credential alone.
			b.do(t, "sign in with a passkey", chromedp.Click(chromedp.CSS(`#login`)))
			if ev := srv.expect(t, b, "login "); ev != "login "+u.ID+" "+u.Email {
				t.Fatalf("passkey sign-in = %q, want user %s %s", ev, u.ID, u.Email)
			}
			srv.expect(t, b, "page /done?after=login")
			waitReady(t, b, "/done?after=login")
			recs, _ = e.store.loadPasskeys(ctx, u.ID)
			if recs[0].LastUsed.IsZero() || recs[0].Credential.Authenticator.SignCount <= count {
				t.Fatalf("after sign-in: last used %v, sign count %d (was %d); want a use recorded and the count moved on",
					recs[0].LastUsed, recs[0].Credential.Authenticator.SignCount, count)
			}

			// Second factor: allowCredentials of the user; the finish
			// answer's redirect wins over data-rd.
			b.do(t, "open the page again", chromedp.Navigate(srv.base+"/"))
			waitReady(t, b, "/")
			b.do(t, "use a passkey as second factor", chromedp.Click(chromedp.CSS(`#second`)))
			srv.expect(t, b, "second factor")
			srv.expect(t, b, "page /done?after=2fa")
			waitReady(t, b, "/done?after=2fa")

			if p := b.problems(); len(p) > 0 {
				t.Fatalf("the browser reported problems: %v", p)
			}

			// A refused answer: the page stays and says why in its
			// role=status element.
			b.do(t, "open the page again", chromedp.Navigate(srv.base+"/"))
			waitReady(t, b, "/")
			b.do(t, "sign in, refused", chromedp.Click(chromedp.CSS(`#refused`)))
			srv.expect(t, b, "refused")
			b.do(t, "wait for the message", chromedp.Poll[chromedp.Void](
				`document.getElementById("status").textContent === "The passkey could not be verified. Try again."`))
			waitReady(t, b, "/")
			b.clear()
			// The check above must be able to fail: a load the CSP
			// forbids has to show up among the problems.
			b.do(t, "trigger a CSP violation", chromedp.Evaluate[chromedp.Void](
				`document.body.appendChild(Object.assign(new Image(), {src: "/csp-canary.png"}))`))
			deadline := time.Now().Add(pkStepTimeout)
			for len(b.problems()) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("a forbidden image load was not reported: the problem check is blind")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

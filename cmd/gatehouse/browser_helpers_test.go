package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browserTimeout bounds everything a browser test does in the browser: a
// hung navigation fails the test in a minute instead of waiting for go
// test's own ten-minute alarm.
const browserTimeout = 60 * time.Second

// browserStepTimeout bounds one step: a navigation, a click, a script.
const browserStepTimeout = 15 * time.Second

// findBrowser returns the path of a Chromium-family browser. Without one the
// test is skipped, unless GATEHOUSE_REQUIRE_BROWSER=1 (CI sets it): there a
// missing browser must fail, or the browser test would silently stop
// running and still look green.
func findBrowser(t *testing.T) string {
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

// testBrowser is one headless Chromium tab and what it has seen: the
// document requests of the current navigation and every console or
// browser-log message worth a look.
type testBrowser struct {
	ctx context.Context // the tab; each step derives its deadline from it

	mu       sync.Mutex
	docs     []docRequest // main-document requests since the last navigate
	messages []browserMessage
	errs     []string // chromedp's own error log
}

// docRequest is one request for a document, redirects included.
type docRequest struct {
	method, url string
	status      int64
	header      network.Headers
}

// browserMessage is a console call, an uncaught exception or an entry of the
// browser log (where Chromium reports CSP violations and failed loads).
type browserMessage struct {
	kind   string // "console", "exception" or "log"
	level  string // error, warning, ...
	source string // log entries: network, security, javascript, ...
	text   string
	url    string
}

func (m browserMessage) String() string {
	return fmt.Sprintf("%s %s %s: %s (%s)", m.kind, m.level, m.source, m.text, m.url)
}

// newTestBrowser starts a fresh headless Chromium (its own profile in a
// temp dir) that is killed when the test ends.
func newTestBrowser(t *testing.T) *testBrowser {
	t.Helper()
	exe := findBrowser(t)
	// Registered before the Cleanup below, so removed after the browser
	// has exited and stopped writing into it.
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
		chromedp.WindowSize(1024, 768),
		chromedp.UserDataDir(profile),
	)
	b := &testBrowser{}
	// The deadline is on the allocator's parent on purpose: when it
	// passes, the whole browser goes, and every pending step fails.
	base, cancelBase := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		b.mu.Lock()
		b.errs = append(b.errs, fmt.Sprintf(format, args...))
		b.mu.Unlock()
	}))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // kills the browser and waits for it to exit
		cancelBase()
	})
	b.ctx = tab
	// The first Run starts the browser; it must not carry a step's
	// deadline, which would end the browser with the step.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	if err := chromedp.Listen(tab, b.record); err != nil {
		t.Fatalf("listen to the browser: %v", err)
	}
	return b
}

// record runs on chromedp's read loop for every event of the tab, so it
// only copies what it needs under the lock.
func (b *testBrowser) record(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Type != network.ResourceTypeDocument {
			return
		}
		if r := ev.RedirectResponse; r != nil && len(b.docs) > 0 {
			last := &b.docs[len(b.docs)-1]
			last.status, last.header = r.Status, r.Headers
		}
		b.docs = append(b.docs, docRequest{method: ev.Request.Method, url: ev.Request.URL})
	case *network.EventResponseReceived:
		if ev.Type == network.ResourceTypeDocument && len(b.docs) > 0 {
			last := &b.docs[len(b.docs)-1]
			last.status, last.header = ev.Response.Status, ev.Response.Headers
		}
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			var s string
			if json.Unmarshal(a.Value, &s) == nil {
				parts = append(parts, s)
			} else if len(a.Value) > 0 {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		b.messages = append(b.messages, browserMessage{kind: "console", level: string(ev.Type), text: strings.Join(parts, " ")})
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		b.messages = append(b.messages, browserMessage{kind: "exception", level: "error", text: text, url: d.URL})
	case *log.EventEntryAdded:
		e := ev.Entry
		b.messages = append(b.messages, browserMessage{kind: "log", level: string(e.Level), source: string(e.Source), text: e.Text, url: e.URL})
	}
}

// snapshotMessages returns the messages seen so far.
func (b *testBrowser) snapshotMessages() []browserMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]browserMessage(nil), b.messages...)
}

// diagnostics is what a failure message adds: the browser's messages and
// chromedp's own errors.
func (b *testBrowser) diagnostics() string {
	var sb strings.Builder
	for _, m := range b.snapshotMessages() {
		sb.WriteString("\n  browser: " + m.String())
	}
	b.mu.Lock()
	for _, e := range b.errs {
		sb.WriteString("\n  chromedp: " + e)
	}
	b.mu.Unlock()
	return sb.String()
}

// do runs the actions as one step bounded by browserStepTimeout.
func (b *testBrowser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v%s", what, err, b.diagnostics())
	}
}

// navigate runs actions that cause a navigation (a Navigate, a click on a
// submit button, a script that submits a form), waits until the new page
// has loaded, and returns its document requests as "METHOD /path?query
// STATUS", redirects included, so a test sees the 302s and 303s that the
// browser followed.
func (b *testBrowser) navigate(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) []string {
	t.Helper()
	b.mu.Lock()
	b.docs = nil
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, actions...); err != nil {
		t.Fatalf("%s: %v%s", what, err, b.diagnostics())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	chain := make([]string, 0, len(b.docs))
	for _, d := range b.docs {
		target := d.url
		if u, err := url.Parse(d.url); err == nil {
			target = u.RequestURI()
		}
		chain = append(chain, fmt.Sprintf("%s %s %d", d.method, upperEscapes(target), d.status))
	}
	return chain
}

// upperEscapes upper-cases the hex digits of percent escapes: html/template
// writes %2f where url.QueryEscape writes %2F, and both are the same URL.
func upperEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = upperHex(b[i+1]), upperHex(b[i+2])
		}
	}
	return string(b)
}

func upperHex(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

// lastDocHeader returns a response header of the last document loaded.
func (b *testBrowser) lastDocHeader(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.docs) == 0 {
		return ""
	}
	for k, v := range b.docs[len(b.docs)-1].header {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

// evalJS evaluates a script in the page (promises awaited) and decodes its
// value into T.
func evalJS[T any](t *testing.T, b *testBrowser, what, script string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v%s", what, err, b.diagnostics())
	}
	return v
}

// location returns the page's URL, parsed.
func (b *testBrowser) location(t *testing.T) *url.URL {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatalf("location: %v", err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("location %q: %v", loc, err)
	}
	return u
}

// cookie returns the browser's cookie called name for the current page, or
// nil. It reads the browser's jar, so it also sees HttpOnly cookies.
func (b *testBrowser) cookie(t *testing.T, name string) *network.Cookie {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	res, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
	})
	if err != nil {
		t.Fatalf("read cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// colorScheme makes the page see prefers-color-scheme: scheme ("" ends the
// emulation), so a test can look at the dark theme too.
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		p := emulation.SetEmulatedMediaParams{}
		if scheme != "" {
			p.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
		}
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, p)
		return err
	})
}

// artifactsDir is where screenshots go: $GATEHOUSE_ARTIFACTS (CI uploads
// it) or else a temp dir that goes with the test.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GATEHOUSE_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves a full-page PNG of the current page as dir/name and
// checks that it is a real, non-empty image.
func (b *testBrowser) screenshot(t *testing.T, dir, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100 = PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil || cfg.Width == 0 || cfg.Height == 0 {
		t.Fatalf("screenshot %s is not a PNG with pixels: %v %+v", name, err, cfg)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%dx%d)", path, cfg.Width, cfg.Height)
	return path
}

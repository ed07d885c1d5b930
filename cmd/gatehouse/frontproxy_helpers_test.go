package main

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// findProxy returns the path of a front proxy's binary. A missing one skips
// the test, unless GATEHOUSE_REQUIRE_PROXIES=1 (CI sets it): there it must
// fail, or the front-proxy tests would silently stop running.
func findProxy(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	// Debian installs nginx in /usr/sbin, which a user's PATH may lack.
	if p := "/usr/sbin/" + name; fileExists(p) {
		return p
	}
	msg := name + " is not installed (apt-get install " + pkg + ")"
	if os.Getenv("GATEHOUSE_REQUIRE_PROXIES") == "1" {
		t.Fatal(msg + "; GATEHOUSE_REQUIRE_PROXIES=1 makes that a failure")
	}
	t.Skip(msg)
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for a proxy that cannot listen on port 0 and tell which port it got.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// errPortTaken: the proxy could not bind the port freeAddr chose, because
// something else took it in between; the caller picks another one.
var errPortTaken = errors.New("port taken")

// startProxy runs a front proxy as a child of the test until it ends, and
// waits until it accepts connections on addr. Its output goes to logs.
func startProxy(t *testing.T, logs *lockedBuffer, addr, bin string, args, env []string) error {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			if strings.Contains(logs.String(), "in use") {
				return errPortTaken
			}
			t.Fatalf("%s exited before listening:\n%s", filepath.Base(bin), logs.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Cleanup(stop)
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("%s did not listen on %s:\n%s", filepath.Base(bin), addr, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exampleFile reads a file of deploy/examples.
func exampleFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replaceAll replaces old, which must occur exactly n times, so that a
// changed example fails here instead of being tested half-substituted.
func replaceAll(t *testing.T, s, old, repl string, n int) string {
	t.Helper()
	if c := strings.Count(s, old); c != n {
		t.Fatalf("example: %q occurs %d times, want %d", old, c, n)
	}
	return strings.ReplaceAll(s, old, repl)
}

// nginxConfig is deploy/examples/nginx.conf with only its listen line, TLS
// lines and the two upstream addresses changed, inside the main and http
// contexts that a non-root nginx needs: no daemon, no master process, pid
// file and temporary directories under dir, errors to stderr.
func nginxConfig(t *testing.T, dir, listen, gateway, app string) string {
	t.Helper()
	s := exampleFile(t, "nginx.conf")
	s = replaceAll(t, s, "listen 443 ssl http2;", "listen "+listen+";", 1)
	s = replaceAll(t, s, "    ssl_certificate ", "    # ssl_certificate ", 1)
	s = replaceAll(t, s, "    ssl_certificate_key ", "    # ssl_certificate_key ", 1)
	s = replaceAll(t, s, "server 127.0.0.1:8080;", "server "+gateway+";", 1)
	s = replaceAll(t, s, "server 127.0.0.1:3000;", "server "+app+";", 1)
	var b strings.Builder
	b.WriteString("daemon off;\nmaster_process off;\nworker_processes 1;\n")
	b.WriteString("pid " + filepath.Join(dir, "nginx.pid") + ";\nerror_log stderr warn;\n")
	b.WriteString("events { worker_connections 256; }\nhttp {\n  access_log off;\n")
	for _, d := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		b.WriteString("  " + d + "_temp_path " + filepath.Join(dir, d) + ";\n")
	}
	b.WriteString(s + "\n}\n")
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// caddyConfig is deploy/examples/Caddyfile with only its site address (plain
// HTTP on listen, the TLS line) and the two upstream addresses changed, and
// the admin endpoint and automatic HTTPS off.
func caddyConfig(t *testing.T, dir, listen, gateway, app string) string {
	t.Helper()
	s := exampleFile(t, "Caddyfile")
	s = replaceAll(t, s, "\napp.example.com {\n", "\nhttp://"+listen+" {\n", 1)
	s = replaceAll(t, s, "127.0.0.1:8080", gateway, 3)
	s = replaceAll(t, s, "127.0.0.1:3000", app, 1)
	s = "{\n\tadmin off\n\tauto_https off\n}\n\n" + s
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startNginx runs nginx (bin) with the example configuration and returns
// its base URL.
func startNginx(t *testing.T, bin, gateway, app string) string {
	t.Helper()
	for range 3 {
		dir := t.TempDir()
		addr := freeAddr(t)
		conf := nginxConfig(t, dir, addr, gateway, app)
		logs := &lockedBuffer{}
		err := startProxy(t, logs, addr, bin, []string{"-p", dir, "-c", conf, "-e", "stderr"}, os.Environ())
		if err == nil {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("nginx output:\n%s", logs.String())
				}
			})
			return "http://" + addr
		}
	}
	t.Fatal("nginx: no free port in three tries")
	return ""
}

// startCaddy runs Caddy (bin) with the example Caddyfile and returns its
// base URL. Its home and XDG directories are the test's, so whatever it
// saves (its autosaved config; Caddy 2.6 cannot turn that off from a
// Caddyfile) goes there.
func startCaddy(t *testing.T, bin, gateway, app string) string {
	t.Helper()
	for range 3 {
		dir := t.TempDir()
		addr := freeAddr(t)
		conf := caddyConfig(t, dir, addr, gateway, app)
		env := append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "data"))
		logs := &lockedBuffer{}
		err := startProxy(t, logs, addr, bin, []string{"run", "--config", conf, "--adapter", "caddyfile"}, env)
		if err == nil {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("caddy output:\n%s", logs.String())
				}
			})
			return "http://" + addr
		}
	}
	t.Fatal("caddy: no free port in three tries")
	return ""
}

// appRequest is what the recording app behind the proxy received.
type appRequest struct {
	Method, URI string
	Header      http.Header
}

// recordingApp is the application behind the front proxy: it records every
// request and answers 200 "app".
type recordingApp struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []appRequest
}

func newRecordingApp(t *testing.T) *recordingApp {
	t.Helper()
	a := &recordingApp{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.reqs = append(a.reqs, appRequest{r.Method, r.RequestURI, r.Header.Clone()})
		a.mu.Unlock()
		w.Header().Set("X-Served-By", "app")
		_, _ = w.Write([]byte("app"))
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *recordingApp) addr() string { return strings.TrimPrefix(a.srv.URL, "http://") }

// count returns how many requests for uri the app received.
func (a *recordingApp) count(uri string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, r := range a.reqs {
		if r.URI == uri {
			n++
		}
	}
	return n
}

// last returns the last request for uri.
func (a *recordingApp) last(t *testing.T, uri string) appRequest {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.reqs) - 1; i >= 0; i-- {
		if a.reqs[i].URI == uri {
			return a.reqs[i]
		}
	}
	t.Fatalf("the app never received %s", uri)
	return appRequest{}
}

// gatewaySaw counts the gateway's request log lines for method and path.
func gatewaySaw(g *testGateway, method, path string) int {
	n := 0
	for _, line := range strings.Split(g.logs.String(), "\n") {
		var rec struct{ Msg, Method, Path string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" && rec.Method == method && rec.Path == path {
			n++
		}
	}
	return n
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// roleEnv makes the harness binary (or its test binary) run as one of its
// own helper processes instead: the upstream or the bare proxy. They are
// separate processes so that neither competes with the load generator's
// scheduler and GC, and so that their CPU can be read from /proc like the
// gateway's.
const roleEnv = "GATEHOUSE_BENCH_ROLE"

// upstreamBody is what the fast upstream answers: small and fixed.
var upstreamBody = []byte("gatehouse-bench upstream: ok\n")

// runRole runs a helper process role until it is killed; it returns the
// exit status.
func runRole(role string, args []string) int {
	if role == loadRole {
		return runLoadRole(args)
	}
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	target := fs.String("target", "", "bare proxy: upstream base URL")
	sleep := fs.Duration("sleep", 0, "upstream: wait this long before answering")
	stats := fs.String("stats", "", "upstream: address that answers GET /accepts with the connections accepted so far")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var h http.Handler
	switch role {
	case "upstream":
		h = upstreamHandler(*sleep)
	case "bareproxy":
		u, err := url.Parse(*target)
		if err != nil || u.Host == "" {
			fmt.Fprintln(os.Stderr, "bareproxy: bad -target")
			return 2
		}
		h = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
			// The gateway's upstream transport settings, so the two
			// differ only in what the gateway does per request.
			Transport: &http.Transport{
				Proxy:                 nil,
				DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConns:          0,
				MaxIdleConnsPerHost:   256,
				IdleConnTimeout:       90 * time.Second,
				ResponseHeaderTimeout: time.Second,
			},
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown role %q\n", role)
		return 2
	}
	// The gateway's server settings (cmd/gatehouse/serve.go).
	srv := &http.Server{
		Addr: *listen, Handler: h,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 60 << 10,
	}
	if *stats != "" {
		// Counted on a listener of its own so that the measured one serves
		// nothing but the fixed answer.
		var accepts atomic.Uint64
		srv.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepts.Add(1)
			}
		}
		statsSrv := &http.Server{Addr: *stats, ReadHeaderTimeout: 5 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, strconv.FormatUint(accepts.Load(), 10))
			})}
		go func() {
			fmt.Fprintln(os.Stderr, role+" stats:", statsSrv.ListenAndServe())
			os.Exit(1)
		}()
	}
	err := srv.ListenAndServe()
	fmt.Fprintln(os.Stderr, role+":", err)
	return 1
}

// probePath ends the only paths on which the upstream answers something else:
// the request headers it received, as JSON, so that the harness can check
// what a gateway forwards (the identity headers, the assertion) before it
// measures.
const probePath = "/_bench/headers"

// upstreamHandler answers the fixed body after sleep; probePath answers the
// request headers instead.
func upstreamHandler(sleep time.Duration) http.Handler {
	length := strconv.Itoa(len(upstreamBody))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, probePath) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(r.Header)
			return
		}
		if sleep > 0 {
			select {
			case <-time.After(sleep):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", length)
		_, _ = w.Write(upstreamBody)
	})
}

// child is a process the harness started in its own process group, so that
// killing the group also ends anything it started.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	exitErr error
}

func startChild(name, logPath, bin string, args, env []string) (*child, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), env...)
	// Setpgid lets kill reach the whole group; Pdeathsig ends the child if
	// the harness dies without running its cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.exitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// kill ends the child's whole process group and waits for it.
func (c *child) kill() {
	if c == nil || c.exited() {
		return
	}
	_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

// stop asks the child to end with SIGTERM, then kills it after grace.
func (c *child) stop(grace time.Duration) {
	if c == nil || c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		c.kill()
	}
}

// logTail returns the end of the child's log, for error messages.
func (c *child) logTail(n int) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// freePort returns a loopback port that was free a moment ago. Redis cannot
// be told to pick one (port 0 turns its TCP listener off), so every process
// gets its port this way.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers want, the child exits, or timeout.
func waitHTTP(ctx context.Context, c *child, rawURL string, want int, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if c != nil && c.exited() {
			return fmt.Errorf("%s exited (%v) before %s answered: %s", c.name, c.exitErr, rawURL, c.logTail(2000))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = resp.Status
		} else {
			last = errKind(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer %d within %v (last: %s)", rawURL, want, timeout, last)
}

// selfExe is the harness's own binary, which runs the helper roles.
func selfExe() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("own executable: %w", err)
	}
	return p, nil
}

// startUpstream runs the fast upstream on port; sleep > 0 makes it slow.
// With statsPort > 0 it counts the connections it accepts and answers the
// count on that port (see upstreamAccepts).
func startUpstream(ctx context.Context, dir string, port, statsPort int, sleep time.Duration) (*child, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"-listen", addr, "-sleep", sleep.String()}
	if statsPort > 0 {
		args = append(args, "-stats", fmt.Sprintf("127.0.0.1:%d", statsPort))
	}
	c, err := startChild("upstream", filepath.Join(dir, "upstream.log"), exe, args, []string{roleEnv + "=upstream"})
	if err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, c, addr, 10*time.Second); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

// startBareProxy runs the bare ReverseProxy on port in front of upstreamURL.
func startBareProxy(ctx context.Context, dir string, port int, upstreamURL string) (*child, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c, err := startChild("bareproxy", filepath.Join(dir, "bareproxy.log"), exe,
		[]string{"-listen", addr, "-target", upstreamURL}, []string{roleEnv + "=bareproxy"})
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, c, "http://"+addr+"/", http.StatusOK, 10*time.Second); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

// waitTCP polls until addr accepts a connection.
func waitTCP(ctx context.Context, c *child, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c != nil && c.exited() {
			return fmt.Errorf("%s exited (%v): %s", c.name, c.exitErr, c.logTail(2000))
		}
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: nothing listening on %s after %v", c.name, addr, timeout)
}

// moduleRoot finds the directory of go.mod from the working directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the gatehouse module (run from /work/main or pass -src)")
	}
	return filepath.Dir(mod), nil
}

// buildGateway compiles ./cmd/gatehouse from src into dir.
func buildGateway(ctx context.Context, src, dir string) (string, error) {
	bin := filepath.Join(dir, "gatehouse")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gatehouse")
	cmd.Dir = src
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/gatehouse: %w\n%s", err, bytes.TrimSpace(out))
	}
	return bin, nil
}

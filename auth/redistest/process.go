package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// process is one started child process.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
}

// spawn starts argv in its own process group (so signals reach everything it
// might fork) with stdout and stderr appended to logPath.
func spawn(argv []string, dir, logPath string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	// The child gets its own copy of the descriptor: exec passes an *os.File
	// directly, so there is no copying goroutine and Wait never blocks on it.
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = sysProcAttr()
	if err := startFromSpawnerThread(cmd); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the process group and waits for the exit.
func (p *process) kill() {
	_ = p.signal(sigKill)
	p.wait(startTimeout)
}

// stop asks the process to shut down (SIGTERM; SIGCONT too, in case it is
// paused, because a stopped process does not act on SIGTERM) and kills it if
// it has not exited within timeout.
func (p *process) stop(timeout time.Duration) {
	_ = p.signal(sigTerm)
	_ = p.signal(sigCont)
	if !p.wait(timeout) {
		p.kill()
	}
}

func (p *process) wait(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

func (p *process) signal(sig signal) error {
	if p.exited() {
		return nil
	}
	return signalGroup(p.cmd.Process, sig)
}

// waitPing waits until addr answers PING with PONG, the process exits, or
// timeout passes.
func waitPing(p *process, addr, password string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if p.exited() {
			return errors.New("exited during start-up")
		}
		if err = ping(addr, password); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG within %v: %w", timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// ping speaks just enough RESP for a readiness probe. It avoids go-redis so
// that a server still starting (refused, -LOADING) gives one plain error per
// probe instead of client retries and pool logging.
func ping(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, 250*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	var req strings.Builder
	if password != "" {
		req.WriteString(resp("AUTH", password))
	}
	req.WriteString(resp("PING"))
	if _, err := c.Write([]byte(req.String())); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	if password != "" {
		if err := expectLine(r, "+OK"); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	return expectLine(r, "+PONG")
}

func expectLine(r *bufio.Reader, want string) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got := strings.TrimRight(line, "\r\n"); got != want {
		return fmt.Errorf("reply %q, want %q", got, want)
	}
	return nil
}

func resp(args ...string) string {
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.String()
}

// spawner is one goroutine locked to its OS thread for the life of the test
// binary. Pdeathsig fires when the thread that forked the child exits, not
// the process (golang/go#27505); Go destroys a thread whose goroutine exits
// while locked to it (the auth package's hashing threads do exactly that),
// which would kill a redis-server forked from a reused thread in the
// middle of a test. Forking from a thread that never exits keeps Pdeathsig
// meaning "the test binary died".
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd *exec.Cmd
	err chan error
}

func startFromSpawnerThread(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread()
			for r := range spawner.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	req := spawnRequest{cmd: cmd, err: make(chan error, 1)}
	spawner.reqs <- req
	return <-req.err
}

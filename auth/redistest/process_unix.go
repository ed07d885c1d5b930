//go:build unix

package redistest

import (
	"os"
	"syscall"
)

type signal = syscall.Signal

const (
	sigKill = syscall.SIGKILL
	sigTerm = syscall.SIGTERM
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)

// signalGroup signals the whole process group that spawn created.
func signalGroup(p *os.Process, sig signal) error {
	return syscall.Kill(-p.Pid, sig)
}

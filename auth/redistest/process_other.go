//go:build !unix

package redistest

import (
	"errors"
	"os"
	"syscall"
)

// signal stands in for syscall.Signal where there are no process groups;
// only sigKill works there.
type signal int

const (
	sigKill signal = iota
	sigTerm
	sigStop
	sigCont
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(p *os.Process, sig signal) error {
	switch sig {
	case sigKill, sigTerm:
		return p.Kill()
	}
	return errors.New("redistest: pause and resume need a unix system")
}

package redistest

import "syscall"

// sysProcAttr puts the child in its own process group, and has the kernel
// kill it when the test binary dies without running Cleanup (go test
// -timeout panics, SIGKILL): no redis-server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

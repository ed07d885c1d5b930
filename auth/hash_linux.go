package auth

import "syscall"

// hashNice is the niceness of a hashing thread: weight 110 against 1024
// for a normal thread, so contended hashing gets about a tenth of a core's
// time instead of starving the proxy, yet is never starved itself.
const hashNice = 10

// lowerThreadPriority lowers the calling OS thread's priority. Raising
// one's own niceness needs no privilege; if it fails anyway, hashing still
// works at normal priority, capped by the hash slots.
func lowerThreadPriority() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), hashNice)
}

//go:build unix

package main

import (
	"syscall"
	"testing"
	"time"
)

// startCPU returns a func that reports the process's CPU time per op as
// cpu-ns/op (the in-process upstream included, redis-server not). On a
// machine shared with other work, ns/op is wall time and swings with the
// load; CPU time is what a request costs.
func startCPU(b *testing.B) func() {
	b.Helper()
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64((cpuTime(b)-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

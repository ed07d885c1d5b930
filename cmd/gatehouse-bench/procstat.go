package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (the kernel fixes it for
// user space whatever CONFIG_HZ is), and reading sysconf would need cgo.
const clockTicks = 100

// procCPU returns the user plus system CPU time a process has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat: %w", err)
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) from the text of
// /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields", len(f)+2)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat: bad utime/stime %q %q", f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// memStatus is a process's resident memory: now and its peak since start.
type memStatus struct {
	RSSKB int64 `json:"rss_kb"`
	HWMKB int64 `json:"peak_rss_kb"`
}

// procMem reads VmRSS and VmHWM from /proc/PID/status.
func procMem(pid int) (memStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStatus{}, fmt.Errorf("read status: %w", err)
	}
	return parseStatusMem(string(b))
}

func parseStatusMem(status string) (memStatus, error) {
	var m memStatus
	var found int
	for line := range strings.Lines(status) {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("status: bad %s line %q", name, strings.TrimSpace(line))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("status: %s: %w", name, err)
		}
		if name == "VmRSS" {
			m.RSSKB = n
		} else {
			m.HWMKB = n
		}
		found++
	}
	if found != 2 {
		return m, fmt.Errorf("status: VmRSS/VmHWM missing")
	}
	return m, nil
}

// cpuMeter measures the CPU a set of processes use between start and stop.
type cpuMeter struct {
	pids  []int
	start []time.Duration
}

func startCPU(pids ...int) *cpuMeter {
	m := &cpuMeter{pids: pids, start: make([]time.Duration, len(pids))}
	for i, pid := range pids {
		m.start[i], _ = procCPU(pid)
	}
	return m
}

// stop returns each process's CPU time used since start (0 for one whose
// stat could not be read: it exited, which the load already reports).
func (m *cpuMeter) stop() []time.Duration {
	out := make([]time.Duration, len(m.pids))
	for i, pid := range m.pids {
		if c, err := procCPU(pid); err == nil {
			out[i] = c - m.start[i]
		}
	}
	return out
}

// perRequestMicros spreads a CPU time over n requests, in microseconds.
func perRequestMicros(cpu time.Duration, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(n)
}

// loadAvg is the 1-minute load average: other work on the machine (builds,
// tests) skews every figure, so the report records it.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

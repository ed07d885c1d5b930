package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// processTree returns pid and every process below it: nginx's workers are
// children of its master, and a proxy's CPU is theirs summed.
func processTree(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue // exited meanwhile
		}
		if pp, err := parseStatPPID(string(b)); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// parseStatPPID reads the parent pid (field 4) of /proc/PID/stat, counting
// after the command name's last ')' as parseStatCPU does.
func parseStatPPID(stat string) (int, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("stat: %d fields", len(f)+2)
	}
	return strconv.Atoi(f[1])
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLogWriterBatchesInfoAndFlushesWarnings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, flush := newLogWriter(f)
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	info := `{"time":"2026-12-04T10:00:00Z","level":"INFO","msg":"request"}` + "\n"
	warn := `{"time":"2026-12-04T10:00:00Z","level":"WARN","msg":"session store error"}` + "\n"
	if _, err := w.Write([]byte(info)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(warn)); err != nil {
		t.Fatal(err)
	}
	// A warning is written at once, with what was pending before it.
	if got := read(); got != info+warn {
		t.Errorf("after a warning the file holds %q, want both lines", got)
	}
	if _, err := w.Write([]byte(info)); err != nil {
		t.Fatal(err)
	}
	// The ticker writes an info line within logFlushEvery; poll for it
	// rather than sleep a fixed time.
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(read(), "INFO") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(read(), "INFO"); n != 2 {
		t.Errorf("the ticker did not flush: %d info lines, want 2", n)
	}
	if _, err := w.Write([]byte(info)); err != nil {
		t.Fatal(err)
	}
	flush()
	if n := strings.Count(read(), "INFO"); n != 3 {
		t.Errorf("flush at exit left lines behind: %d info lines, want 3", n)
	}
}

func TestLogWriterLeavesBuffersAlone(t *testing.T) {
	var b strings.Builder
	w, flush := newLogWriter(&b)
	defer flush()
	if w != &b {
		t.Error("a non-file writer was wrapped: tests reading the log would have to wait")
	}
}

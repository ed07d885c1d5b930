package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"sync"
	"time"
)

// Request log lines are batched before they reach a file or pipe: one
// write(2) per line was the largest single cost the gateway added to a
// proxied request (measured with gatehouse-bench -mode peers: 128 -> 104 µs
// of CPU per signed-in request, 1.26x the throughput). Lines wait at most
// logFlushEvery; warnings and errors, and the last lines at exit, are
// written at once.
const (
	logBufferSize = 64 << 10
	logFlushEvery = 100 * time.Millisecond
)

// logWriter is a bufio.Writer that a ticker flushes.
type logWriter struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// newLogWriter batches writes to out when out is a file (a terminal, a
// pipe, a log file: what a syscall per line costs). Anything else (a test's
// buffer) is returned as is. flush writes what is pending and stops the
// ticker; call it once, before exit.
func newLogWriter(out io.Writer) (w io.Writer, flush func()) {
	if _, ok := out.(*os.File); !ok {
		return out, func() {}
	}
	lw := &logWriter{buf: bufio.NewWriterSize(out, logBufferSize), stop: make(chan struct{}), done: make(chan struct{})}
	go lw.run()
	return lw, func() {
		close(lw.stop)
		<-lw.done
		lw.mu.Lock()
		_ = lw.buf.Flush()
		lw.mu.Unlock()
	}
}

func (lw *logWriter) run() {
	defer close(lw.done)
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-lw.stop:
			return
		case <-t.C:
			lw.mu.Lock()
			_ = lw.buf.Flush()
			lw.mu.Unlock()
		}
	}
}

// Write takes one log line (slog writes a record in one call).
func (lw *logWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	n, err := lw.buf.Write(p)
	if err == nil && urgent(p) {
		err = lw.buf.Flush()
	}
	return n, err
}

// urgent reports whether a JSON log line is a warning or an error, which
// an operator watching the log must see at once.
func urgent(line []byte) bool {
	head := line[:min(len(line), 96)]
	i := bytes.Index(head, []byte(`"level":"`))
	if i < 0 {
		return true // not a slog JSON line: do not hold it back
	}
	lvl := head[i+len(`"level":"`):]
	return !bytes.HasPrefix(lvl, []byte("INFO")) && !bytes.HasPrefix(lvl, []byte("DEBUG"))
}

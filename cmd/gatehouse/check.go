package main

import (
	"errors"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/proxy"
)

// errReported is returned after the problems were already printed, so main
// only sets the exit code.
var errReported = errors.New("configuration is invalid")

// check validates the file: a summary on stdout and a "warning: " line on
// stderr for each of cfg.Warnings (still exit 0), or every problem on
// stderr as FILE:LINE: field.path: what is wrong.
func check(e env, path string) error {
	cfg, err := e.loadConfig(path)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return errReported
	}
	fmt.Fprint(e.stdout, cfg.Summary())
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(e.stderr, "warning: "+w)
	}
	return nil
}

// explain prints the rule a request would match.
func explain(e env, path, method, target string) error {
	cfg, err := e.loadConfig(path)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return errReported
	}
	out, err := proxy.Explain(cfg, method, target)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, out)
	return nil
}

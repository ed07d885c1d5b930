//go:build !unix

package main

import "testing"

// startCPU reports nothing where getrusage is missing.
func startCPU(*testing.B) func() { return func() {} }

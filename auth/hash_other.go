//go:build !linux

package auth

// lowerThreadPriority is a no-op where thread priorities are not portable;
// the hash slots still cap concurrent hashing.
func lowerThreadPriority() {}

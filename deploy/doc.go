// Package deploy holds Gatehouse's deployment files: the container image
// (Dockerfile), the static build script, Kustomize bases and overlays, a Redis
// example and non-Kubernetes examples (nginx, Caddy, systemd).
//
// It is a separate Go module so that its test dependencies (kustomize,
// k8s.io/api, the Gateway API types) never enter the gateway's own module.
// The only Go code is the validation test, which renders every kustomization
// and decodes every object strictly; it must never import the gateway's
// packages, so that the contract (shared CONTRACT.md), not the code, is what
// the files are checked against.
package deploy

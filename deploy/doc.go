// Package deploy holds Gatehouse's deployment files: the container image
// (Dockerfile), the static build script, Kustomize bases and overlays, a Redis
// example and non-Kubernetes examples (nginx, Caddy, systemd).
//
// It is a separate Go module so that its test dependencies (kustomize,
// k8s.io/api, the Gateway API types) never enter the gateway's own module.
// Its Go code is the validation tests, which render every kustomization and
// decode every object strictly, and an example upstream that verifies the
// identity assertion (examples/verify-assertion). The tests must never
// import the gateway's packages, so that the documented configuration
// (README "Configuration reference"), not the code, is what the files are
// checked against.
package deploy

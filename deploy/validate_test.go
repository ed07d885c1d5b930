package deploy

import (
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// forwardAuthOverlays are the overlays in which a proxy asks the verify
// endpoint; there the gateway's public port must not be open to everyone.
var forwardAuthOverlays = []string{"overlays/ingress-nginx", "overlays/traefik", "overlays/gateway-api"}

// sidecarOverlays put the gateway into the application's pod.
var sidecarOverlays = []string{"overlays/sidecar", "overlays/sidecar-legacy"}

func TestExpectedKustomizationsExist(t *testing.T) {
	got := kustomizations(t)
	for _, want := range append(append([]string{"base", "redis"}, forwardAuthOverlays...), sidecarOverlays...) {
		if !slices.Contains(got, filepath.FromSlash(want)) {
			t.Errorf("kustomization %s is missing (have %v)", want, got)
		}
	}
}

// TestRenderedObjects renders every kustomization and checks what must hold
// in all of them.
func TestRenderedObjects(t *testing.T) {
	for _, dir := range kustomizations(t) {
		t.Run(filepath.ToSlash(dir), func(t *testing.T) {
			objs := render(t, dir)
			checkServiceSelectors(t, objs)
			checkPods(t, objs)
			if dir != "redis" {
				checkGatehouseProbes(t, objs)
				checkGatehouseConfig(t, objs)
				checkGatehouseNetworkPolicy(t, objs, slices.Contains(forwardAuthOverlays, filepath.ToSlash(dir)))
			}
		})
	}
}

// checkServiceSelectors: every Service selects some rendered pod template in
// its namespace, and each target port is a port a selected container
// declares.
func checkServiceSelectors(t *testing.T, objs []object) {
	t.Helper()
	for _, svc := range byKind[corev1.Service](objs) {
		if len(svc.Spec.Selector) == 0 {
			t.Errorf("Service %s has no selector", svc.Name)
			continue
		}
		var selected []workload
		for _, w := range workloads(objs) {
			if w.namespace == svc.Namespace && labelsMatch(svc.Spec.Selector, w.pod.Labels) {
				selected = append(selected, w)
			}
		}
		if len(selected) == 0 {
			t.Errorf("Service %s selector %v matches no pod template", svc.Name, svc.Spec.Selector)
			continue
		}
		for _, p := range svc.Spec.Ports {
			for _, w := range selected {
				if c, _ := resolvePort(&w.pod.Spec, p.TargetPort); c == nil {
					t.Errorf("Service %s port %s: targetPort %s is no container port of %s", svc.Name, p.Name, p.TargetPort.String(), w.name)
				}
			}
		}
	}
}

func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// resolvePort finds the container that declares port (by name or number)
// and the port's number. A zero intstr resolves to nothing.
func resolvePort(spec *corev1.PodSpec, port intstr.IntOrString) (*corev1.Container, int32) {
	for _, c := range allContainers(spec) {
		for _, cp := range c.Ports {
			if port.Type == intstr.String && port.StrVal != "" && cp.Name == port.StrVal {
				return c, cp.ContainerPort
			}
			if port.Type == intstr.Int && port.IntVal != 0 && cp.ContainerPort == port.IntVal {
				return c, cp.ContainerPort
			}
		}
	}
	return nil, 0
}

// probePort returns the port a probe targets.
func probePort(p *corev1.Probe) (intstr.IntOrString, bool) {
	switch {
	case p.HTTPGet != nil:
		return p.HTTPGet.Port, true
	case p.TCPSocket != nil:
		return p.TCPSocket.Port, true
	case p.GRPC != nil:
		return intstr.FromInt32(p.GRPC.Port), true
	}
	return intstr.IntOrString{}, false
}

// checkPods: probes name declared ports of their own container, pods carry
// no service links or API token, and the gateway's container is hardened.
func checkPods(t *testing.T, objs []object) {
	t.Helper()
	ws := workloads(objs)
	if len(ws) == 0 {
		t.Fatal("no workload rendered")
	}
	for _, w := range ws {
		spec := &w.pod.Spec
		if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
			t.Errorf("%s: enableServiceLinks must be set to false", w.name)
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken must be set to false", w.name)
		}
		if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
			psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod securityContext must set runAsNonRoot and seccompProfile RuntimeDefault", w.name)
		}
		for _, c := range allContainers(spec) {
			for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
				if p == nil {
					continue
				}
				port, ok := probePort(p)
				if !ok {
					continue // exec probe
				}
				owner, _ := resolvePort(spec, port)
				if owner != c {
					t.Errorf("%s/%s: %s probe port %s is not a port this container declares", w.name, c.Name, name, port.String())
				}
			}
			checkContainerSecurity(t, w.name, c)
			for _, m := range c.VolumeMounts {
				if m.SubPath != "" || m.SubPathExpr != "" {
					t.Errorf("%s/%s: volume %s uses subPath, which is never updated on a ConfigMap or Secret change", w.name, c.Name, m.Name)
				}
			}
		}
	}
}

// checkGatehouseProbes: the gateway is probed on /livez and /readyz and has
// resource requests.
func checkGatehouseProbes(t *testing.T, objs []object) {
	t.Helper()
	c, w := gatehouseContainer(t, objs)
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Errorf("%s/gatehouse: liveness and readiness probes are required", w.name)
	} else {
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
			if p.HTTPGet == nil {
				t.Errorf("%s/gatehouse: probes must be httpGet on the admin listener", w.name)
			}
		}
		if got := c.LivenessProbe.HTTPGet; got != nil && got.Path != "/livez" {
			t.Errorf("liveness path = %q, want /livez", got.Path)
		}
		if got := c.ReadinessProbe.HTTPGet; got != nil && got.Path != "/readyz" {
			t.Errorf("readiness path = %q, want /readyz", got.Path)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s/gatehouse: cpu and memory requests and a memory limit are required", w.name)
	}
}

// checkContainerSecurity: every container here (the gateway, the example
// app, Redis) meets the "restricted" Pod Security Standard at container
// level; the gateway's also pins uid 65532, the distroless nonroot user.
func checkContainerSecurity(t *testing.T, wname string, c *corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	where := wname + "/" + c.Name
	if sc == nil {
		t.Errorf("%s: no securityContext", where)
		return
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: runAsNonRoot must be true", where)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem must be true", where)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation must be false", where)
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("%s: capabilities must drop ALL and add none", where)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile must be RuntimeDefault", where)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", where)
	}
	if isGatehouse(c) && (sc.RunAsUser == nil || *sc.RunAsUser != 65532) {
		t.Errorf("%s: runAsUser must be 65532 (distroless nonroot)", where)
	}
}

// renderedConfig returns the gateway's config.yaml from the rendered
// ConfigMap the gateway's pod mounts, decoded against the documented keys, and the
// directory it is mounted at.
func renderedConfig(t *testing.T, objs []object) *contractConfig {
	t.Helper()
	c, w := gatehouseContainer(t, objs)
	var env string
	for _, e := range c.Env {
		if e.Name == "GATEHOUSE_CONFIG" {
			env = e.Value
		}
	}
	if env == "" {
		t.Fatal("gatehouse container has no GATEHOUSE_CONFIG")
	}
	dir, file := path.Split(env)
	dir = strings.TrimSuffix(dir, "/")
	var cmName string
	for _, m := range c.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		for _, v := range w.pod.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				cmName = v.ConfigMap.Name
			}
		}
	}
	if cmName == "" {
		t.Fatalf("GATEHOUSE_CONFIG %s: no ConfigMap is mounted (as a directory) at %s", env, dir)
	}
	for _, cm := range byKind[corev1.ConfigMap](objs) {
		if cm.Name != cmName || cm.Namespace != w.namespace {
			continue
		}
		data, ok := cm.Data[file]
		if !ok {
			t.Fatalf("ConfigMap %s has no key %s", cmName, file)
		}
		cfg, err := parseConfig([]byte(data))
		if err != nil {
			t.Fatalf("ConfigMap %s key %s: %v", cmName, file, err)
		}
		return cfg
	}
	t.Fatalf("ConfigMap %s mounted by the gateway is not rendered", cmName)
	return nil
}

// checkGatehouseConfig: the embedded config uses contract keys only, is a
// production config, and agrees with the pod (ports, mounted secret).
func checkGatehouseConfig(t *testing.T, objs []object) {
	t.Helper()
	cfg := renderedConfig(t, objs)
	c, w := gatehouseContainer(t, objs)

	for _, tc := range []struct{ key, addr, portName string }{
		{"listen", cfg.Listen, "http"},
		{"admin_listen", cfg.adminListen(), "admin"},
	} {
		host, port, err := hostPort(tc.addr)
		if err != nil {
			t.Errorf("%s %q: %v", tc.key, tc.addr, err)
			continue
		}
		if host != "0.0.0.0" && host != "" {
			t.Errorf("%s host = %q, want 0.0.0.0 (probes and Services reach the pod IP)", tc.key, host)
		}
		owner, declared := resolvePort(&w.pod.Spec, intstr.FromString(tc.portName))
		if owner != c || declared != port {
			t.Errorf("%s port %d: the gateway's container port %q is %d", tc.key, port, tc.portName, declared)
		}
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil {
		_, admin, _ := hostPort(cfg.adminListen())
		if _, got := resolvePort(&w.pod.Spec, c.ReadinessProbe.HTTPGet.Port); got != admin {
			t.Errorf("readiness probe port = %d, want the admin listener's %d", got, admin)
		}
		if _, got := resolvePort(&w.pod.Spec, c.LivenessProbe.HTTPGet.Port); got != admin {
			t.Errorf("liveness probe port = %d, want the admin listener's %d", got, admin)
		}
	}
	if cfg.Session.CookieSecure == nil || !*cfg.Session.CookieSecure {
		t.Error("session.cookie_secure must be set to true")
	}
	if cfg.Auth.Registration != "closed" {
		t.Errorf("auth.registration = %q, want closed", cfg.Auth.Registration)
	}
	if len(cfg.TrustedProxies) == 0 {
		t.Error("trusted_proxies must name the proxies in front (a placeholder to change)")
	}
	if !strings.HasPrefix(cfg.Redis.URL, "redis://") && !strings.HasPrefix(cfg.Redis.URL, "rediss://") {
		t.Errorf("redis.url = %q: production needs Redis, not the embedded store", cfg.Redis.URL)
	}
	if cfg.Redis.Password != "" || cfg.Redis.PasswordFile == "" {
		t.Error("the Redis password must come from redis.password_file, never inline")
	}
	secretDir := strings.TrimSuffix(path.Dir(cfg.Redis.PasswordFile), "/")
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range w.pod.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && m.MountPath == secretDir {
				mounted = slices.ContainsFunc(v.Secret.Items, func(k corev1.KeyToPath) bool {
					return k.Path == path.Base(cfg.Redis.PasswordFile)
				})
			}
		}
	}
	if !mounted {
		t.Errorf("redis.password_file %s is not a file of a Secret mounted in the gateway's container", cfg.Redis.PasswordFile)
	}
}

// gatehouseNetworkPolicy returns the policy that selects the gateway's pods.
func gatehouseNetworkPolicy(t *testing.T, objs []object) *networkingv1.NetworkPolicy {
	t.Helper()
	_, w := gatehouseContainer(t, objs)
	for _, np := range byKind[networkingv1.NetworkPolicy](objs) {
		if labelsMatch(np.Spec.PodSelector.MatchLabels, w.pod.Labels) && len(np.Spec.PodSelector.MatchLabels) > 0 {
			return np
		}
	}
	t.Fatal("no NetworkPolicy selects the gateway's pods")
	return nil
}

// checkGatehouseNetworkPolicy: ingress only to the gateway's own ports; the
// admin port only from a selected source; in forward-auth overlays the
// public port too. Egress allows DNS and Redis.
func checkGatehouseNetworkPolicy(t *testing.T, objs []object, forwardAuth bool) {
	t.Helper()
	np := gatehouseNetworkPolicy(t, objs)
	c, w := gatehouseContainer(t, objs)
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("NetworkPolicy %s: policyTypes = %v, want Ingress and Egress", np.Name, np.Spec.PolicyTypes)
	}
	_, httpPort := resolvePort(&w.pod.Spec, intstr.FromString("http"))
	_, adminPort := resolvePort(&w.pod.Spec, intstr.FromString("admin"))
	for i, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 {
			t.Errorf("NetworkPolicy %s ingress[%d] allows every port", np.Name, i)
		}
		for _, p := range rule.Ports {
			if p.Port == nil {
				t.Errorf("NetworkPolicy %s ingress[%d] has a rule without a port", np.Name, i)
				continue
			}
			owner, num := resolvePort(&w.pod.Spec, *p.Port)
			if owner != c {
				t.Errorf("NetworkPolicy %s ingress[%d] port %s is not a port of the gateway's container", np.Name, i, p.Port.String())
			}
			if num == adminPort && len(rule.From) == 0 {
				t.Errorf("NetworkPolicy %s: admin port %d is open to every source", np.Name, num)
			}
			if forwardAuth && num == httpPort && len(rule.From) == 0 {
				t.Errorf("NetworkPolicy %s: with forward-auth, port %d (the verify endpoint) must be reachable only from the proxy", np.Name, num)
			}
		}
	}
	var dns, redis bool
	for _, rule := range np.Spec.Egress {
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.IntValue() == 53 {
				dns = true
			}
			if p.Port != nil && p.Port.IntValue() == 6379 {
				redis = true
			}
		}
	}
	if !dns || !redis {
		t.Errorf("NetworkPolicy %s egress: dns=%v redis=%v, want both", np.Name, dns, redis)
	}
}

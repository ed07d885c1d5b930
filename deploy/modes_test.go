package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestSidecar: the gateway fronts an app in its own pod. Its probes are on
// its own admin port, never the app's; the Service and NetworkPolicy expose
// only the gateway's ports; the upstream is the app on loopback.
func TestSidecar(t *testing.T) {
	for _, dir := range sidecarOverlays {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			gw, w := gatehouseContainer(t, objs)
			spec := &w.pod.Spec
			cfg := renderedConfig(t, objs)

			native := dir == "overlays/sidecar"
			inInit := slices.ContainsFunc(spec.InitContainers, func(c corev1.Container) bool { return isGatehouse(&c) })
			if native {
				if !inInit || gw.RestartPolicy == nil || *gw.RestartPolicy != corev1.ContainerRestartPolicyAlways {
					t.Error("native sidecar: the gateway must be an init container with restartPolicy: Always")
				}
			} else if inInit {
				t.Error("legacy sidecar: the gateway must be a plain container")
			}
			var app *corev1.Container
			for i := range spec.Containers {
				if !isGatehouse(&spec.Containers[i]) {
					app = &spec.Containers[i]
				}
			}
			if app == nil {
				t.Fatal("no app container beside the gateway")
			}
			if len(app.Ports) != 0 {
				t.Errorf("app container declares ports %v; it must listen on loopback only", app.Ports)
			}
			if u := cfg.Upstreams["app"].URL; u != "http://127.0.0.1:3000" {
				t.Errorf("upstream app = %q, want http://127.0.0.1:3000", u)
			}
			if !slices.ContainsFunc(app.Args, func(a string) bool { return strings.Contains(a, "127.0.0.1:3000") }) {
				t.Errorf("example app args %v do not listen on 127.0.0.1:3000", app.Args)
			}

			_, admin, err := hostPort(cfg.adminListen())
			if err != nil {
				t.Fatal(err)
			}
			for name, p := range map[string]*corev1.Probe{"liveness": gw.LivenessProbe, "readiness": gw.ReadinessProbe, "startup": gw.StartupProbe} {
				if p == nil {
					continue
				}
				port, _ := probePort(p)
				owner, num := resolvePort(spec, port)
				if owner != gw || num != admin {
					t.Errorf("gateway %s probe targets port %s (%d), want the gateway's admin port %d", name, port.String(), num, admin)
				}
			}
			if app.LivenessProbe != nil || app.ReadinessProbe != nil || app.StartupProbe != nil {
				t.Error("the app has probes on the pod IP, where it does not listen")
			}

			for _, svc := range byKind[corev1.Service](objs) {
				for _, p := range svc.Spec.Ports {
					if owner, _ := resolvePort(spec, p.TargetPort); owner != gw {
						t.Errorf("Service %s port %s exposes a port that is not the gateway's", svc.Name, p.Name)
					}
				}
			}
			np := gatehouseNetworkPolicy(t, objs)
			for _, rule := range np.Spec.Ingress {
				for _, p := range rule.Ports {
					if p.Port == nil || p.Port.IntValue() == 3000 {
						t.Errorf("NetworkPolicy %s admits the app's port", np.Name)
					}
				}
			}
		})
	}
}

// serviceURL is the in-cluster URL of the gateway's Service on port 80.
func serviceURL(t *testing.T, objs []object) string {
	t.Helper()
	for _, svc := range byKind[corev1.Service](objs) {
		if svc.Name == "gatehouse" {
			if svc.Namespace == "" {
				t.Fatal("forward-auth overlays must set a namespace: the auth address names it")
			}
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == 80 }) {
				t.Fatal("Service gatehouse has no port 80")
			}
			return fmt.Sprintf("http://gatehouse.%s.svc.cluster.local", svc.Namespace)
		}
	}
	t.Fatal("no Service gatehouse")
	return ""
}

// servicePortExists tells whether Service name has the port (by number or name).
func servicePortExists(objs []object, name string, port intstr.IntOrString) bool {
	for _, svc := range byKind[corev1.Service](objs) {
		if svc.Name != name {
			continue
		}
		for _, p := range svc.Spec.Ports {
			if (port.Type == intstr.Int && p.Port == port.IntVal) || (port.Type == intstr.String && p.Name == port.StrVal) {
				return true
			}
		}
	}
	return false
}

func hasHeader(list []string, want string) bool {
	return slices.ContainsFunc(list, func(h string) bool { return strings.EqualFold(strings.TrimSpace(h), want) })
}

func TestIngressNginx(t *testing.T) {
	objs := render(t, "overlays/ingress-nginx")
	cfg := renderedConfig(t, objs)
	base := serviceURL(t, objs)
	var protected, pages *networkingv1.Ingress
	for _, ing := range byKind[networkingv1.Ingress](objs) {
		if _, ok := ing.Annotations["nginx.ingress.kubernetes.io/auth-url"]; ok {
			protected = ing
		} else {
			pages = ing
		}
	}
	if protected == nil || pages == nil {
		t.Fatal("want one Ingress with auth-url and one for the gateway's pages")
	}
	a := protected.Annotations
	if got, want := a["nginx.ingress.kubernetes.io/auth-url"], base+cfg.verifyPath(); got != want {
		t.Errorf("auth-url = %q, want %q (no ?redirect=1: nginx turns a 3xx into 500)", got, want)
	}
	if got, want := a["nginx.ingress.kubernetes.io/auth-signin"], "https://$host/login?rd=$escaped_request_uri"; got != want {
		t.Errorf("auth-signin = %q, want %q", got, want)
	}
	if h := strings.Split(a["nginx.ingress.kubernetes.io/auth-response-headers"], ","); len(missing(h, answerHeaders)) > 0 {
		t.Errorf("auth-response-headers = %v, lacks %v", h, missing(h, answerHeaders))
	}
	// The client's X-Forwarded-Method/-Uri would otherwise reach the verify
	// endpoint and be preferred over the controller's X-Original-*.
	ref := a["nginx.ingress.kubernetes.io/auth-proxy-set-headers"]
	found := false
	for _, cm := range byKind[corev1.ConfigMap](objs) {
		if cm.Namespace+"/"+cm.Name != ref {
			continue
		}
		found = true
		for _, h := range []string{"X-Forwarded-Method", "X-Forwarded-Uri", "X-Original-URI"} {
			if v, ok := cm.Data[h]; !ok || v != "" {
				t.Errorf("auth-proxy-set-headers %s must clear %s (set it to \"\")", ref, h)
			}
		}
	}
	if !found {
		t.Errorf("auth-proxy-set-headers names ConfigMap %q, which is not rendered", ref)
	}
	var routes []networkingv1.HTTPIngressPath
	for _, r := range pages.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			routes = append(routes, p)
			svc := p.Backend.Service
			if svc == nil || svc.Name != "gatehouse" {
				t.Errorf("pages Ingress path %s does not go to gatehouse", p.Path)
				continue
			}
			port := intstr.FromInt32(svc.Port.Number)
			if svc.Port.Name != "" {
				port = intstr.FromString(svc.Port.Name)
			}
			if !servicePortExists(objs, "gatehouse", port) {
				t.Errorf("pages Ingress path %s names a port Service gatehouse lacks", p.Path)
			}
			if strings.HasPrefix(p.Path, cfg.verifyPath()) || p.Path == "/" {
				t.Errorf("pages Ingress routes %s: the verify endpoint must not be public", p.Path)
			}
		}
	}
	checkRouting(t, "pages Ingress", func(path string) bool {
		for _, p := range routes {
			if p.PathType == nil {
				continue // ImplementationSpecific by default: not portable
			}
			switch *p.PathType {
			case networkingv1.PathTypeExact:
				if path == p.Path {
					return true
				}
			case networkingv1.PathTypePrefix:
				if segmentPrefix(p.Path, path) {
					return true
				}
			}
		}
		return false
	})
}

func TestTraefik(t *testing.T) {
	objs := render(t, "overlays/traefik")
	cfg := renderedConfig(t, objs)
	mws := byKind[traefikMiddleware](objs)
	if len(mws) != 1 || mws[0].Spec.ForwardAuth == nil {
		t.Fatal("want one ForwardAuth Middleware")
	}
	fa := mws[0].Spec.ForwardAuth
	if want := serviceURL(t, objs) + cfg.verifyPath() + "?redirect=1"; fa.Address != want {
		t.Errorf("forwardAuth.address = %q, want %q", fa.Address, want)
	}
	if fa.TrustForwardHeader == nil || !*fa.TrustForwardHeader {
		t.Error("forwardAuth.trustForwardHeader must be true")
	}
	if m := missing(fa.AuthResponseHeaders, answerHeaders); len(m) > 0 {
		t.Errorf("authResponseHeaders = %v, lacks %v", fa.AuthResponseHeaders, m)
	}
	irs := byKind[traefikIngressRoute](objs)
	if len(irs) == 0 {
		t.Fatal("no IngressRoute")
	}
	var usesMiddleware, pages bool
	for _, ir := range irs {
		for _, r := range ir.Spec.Routes {
			for _, s := range r.Services {
				if !servicePortExists(objs, s.Name, s.Port) && s.Name == "gatehouse" {
					t.Errorf("route %q: Service gatehouse has no port %s", r.Match, s.Port.String())
				}
			}
			protected := slices.ContainsFunc(r.Middlewares, func(m struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace,omitempty"`
			}) bool {
				return m.Name == mws[0].Name
			})
			toGatehouse := slices.ContainsFunc(r.Services, func(s struct {
				Name      string             `json:"name"`
				Namespace string             `json:"namespace,omitempty"`
				Port      intstr.IntOrString `json:"port"`
			}) bool {
				return s.Name == "gatehouse"
			})
			usesMiddleware = usesMiddleware || (protected && !toGatehouse)
			if toGatehouse {
				pages = true
				checkRouting(t, "gateway pages route", traefikPaths(t, r.Match))
				if strings.Contains(r.Match, cfg.verifyPath()) {
					t.Errorf("route %q exposes the verify endpoint", r.Match)
				}
			}
		}
	}
	if !usesMiddleware || !pages {
		t.Errorf("IngressRoute: app route with the middleware = %v, gateway pages route = %v; want both", usesMiddleware, pages)
	}
}

func TestGatewayAPI(t *testing.T) {
	objs := render(t, "overlays/gateway-api")
	cfg := renderedConfig(t, objs)
	gws := byKind[gwv1.Gateway](objs)
	if len(gws) != 1 {
		t.Fatalf("want one Gateway, got %d", len(gws))
	}
	routes := map[string]*gwv1.HTTPRoute{}
	for _, r := range byKind[gwv1.HTTPRoute](objs) {
		routes[r.Name] = r
		for _, p := range r.Spec.ParentRefs {
			if string(p.Name) != gws[0].Name {
				t.Errorf("HTTPRoute %s attaches to %s, not the rendered Gateway", r.Name, p.Name)
			}
		}
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				if b.Name == "gatehouse" && (b.Port == nil || !servicePortExists(objs, "gatehouse", intstr.FromInt32(int32(*b.Port)))) {
					t.Errorf("HTTPRoute %s: backendRef gatehouse names a port the Service lacks", r.Name)
				}
			}
		}
	}
	checkRouting(t, "gateway-api", func(path string) bool {
		for _, r := range routes {
			for _, rule := range r.Spec.Rules {
				if !slices.ContainsFunc(rule.BackendRefs, func(b gwv1.HTTPBackendRef) bool { return b.Name == "gatehouse" }) {
					continue
				}
				for _, m := range rule.Matches {
					if m.Path == nil || m.Path.Type == nil || m.Path.Value == nil {
						continue
					}
					switch *m.Path.Type {
					case gwv1.PathMatchExact:
						if path == *m.Path.Value {
							return true
						}
					case gwv1.PathMatchPathPrefix:
						if segmentPrefix(*m.Path.Value, path) {
							return true
						}
					}
				}
			}
		}
		return false
	})
	sps := byKind[envoySecurityPolicy](objs)
	if len(sps) != 1 || sps[0].Spec.ExtAuth == nil || sps[0].Spec.ExtAuth.HTTP == nil {
		t.Fatal("want one SecurityPolicy with extAuth.http")
	}
	sp := sps[0].Spec
	for _, ref := range sp.TargetRefs {
		if ref.Kind != "HTTPRoute" || routes[ref.Name] == nil {
			t.Errorf("SecurityPolicy targets %s %s, which is not a rendered HTTPRoute", ref.Kind, ref.Name)
		}
		if r := routes[ref.Name]; r != nil {
			for _, rule := range r.Spec.Rules {
				for _, b := range rule.BackendRefs {
					if b.Name == "gatehouse" {
						t.Errorf("SecurityPolicy protects route %s, which serves the gateway's own pages", r.Name)
					}
				}
			}
		}
	}
	ea := sp.ExtAuth
	if ea.FailOpen == nil || *ea.FailOpen {
		t.Error("extAuth.failOpen must be set to false")
	}
	if !hasHeader(ea.HeadersToExtAuth, "Cookie") {
		t.Errorf("headersToExtAuth = %v: the session cookie never reaches the verify endpoint", ea.HeadersToExtAuth)
	}
	if ea.HTTP.Path != cfg.verifyPath() {
		t.Errorf("extAuth.http.path = %q, want %q", ea.HTTP.Path, cfg.verifyPath())
	}
	if m := missing(ea.HTTP.HeadersToBackend, answerHeaders); len(m) > 0 {
		t.Errorf("headersToBackend = %v, lacks %v", ea.HTTP.HeadersToBackend, m)
	}
	if len(ea.HTTP.BackendRefs) != 1 || ea.HTTP.BackendRefs[0].Name != "gatehouse" || ea.HTTP.BackendRefs[0].Port == nil ||
		!servicePortExists(objs, "gatehouse", intstr.FromInt32(*ea.HTTP.BackendRefs[0].Port)) {
		t.Errorf("extAuth.http.backendRefs = %+v, want Service gatehouse on one of its ports", ea.HTTP.BackendRefs)
	}
	ctps := byKind[envoyClientTrafficPolicy](objs)
	if len(ctps) != 1 || ctps[0].Spec.Headers == nil || ctps[0].Spec.Headers.EarlyRequestHeaders == nil {
		t.Fatal("want a ClientTrafficPolicy that removes client identity headers early")
	}
	h := ctps[0].Spec.Headers
	if m := missing(h.EarlyRequestHeaders.Remove, identityHeaders); len(m) > 0 {
		t.Errorf("earlyRequestHeaders.remove = %v, lacks %v", h.EarlyRequestHeaders.Remove, m)
	}
	// The session cookie must reach ext_authz: it cannot be removed early.
	if hasHeader(h.EarlyRequestHeaders.Remove, "Cookie") {
		t.Error("earlyRequestHeaders.remove drops Cookie before the check")
	}
	if !slices.Contains([]string{"RejectRequest", "DropHeader"}, h.WithUnderscoresAction) {
		t.Errorf("withUnderscoresAction = %q, want RejectRequest or DropHeader", h.WithUnderscoresAction)
	}
}

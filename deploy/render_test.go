package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	sjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// object is one rendered resource, decoded strictly into its Go type.
type object struct {
	APIVersion, Kind, Namespace, Name string
	// Typed points at a k8s.io/api, sigs.k8s.io/gateway-api or local CRD type.
	Typed any
}

func (o object) String() string {
	return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name)
}

// decoders lists every kind a kustomization here may render. A kind that is
// missing is a test failure: add its type rather than skipping it.
var decoders = map[string]func() any{
	"v1/ConfigMap":                                       func() any { return new(corev1.ConfigMap) },
	"v1/Namespace":                                       func() any { return new(corev1.Namespace) },
	"v1/Secret":                                          func() any { return new(corev1.Secret) },
	"v1/Service":                                         func() any { return new(corev1.Service) },
	"v1/ServiceAccount":                                  func() any { return new(corev1.ServiceAccount) },
	"apps/v1/Deployment":                                 func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":                                func() any { return new(appsv1.StatefulSet) },
	"policy/v1/PodDisruptionBudget":                      func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy":                 func() any { return new(networkingv1.NetworkPolicy) },
	"networking.k8s.io/v1/Ingress":                       func() any { return new(networkingv1.Ingress) },
	"gateway.networking.k8s.io/v1/Gateway":               func() any { return new(gwv1.Gateway) },
	"gateway.networking.k8s.io/v1/HTTPRoute":             func() any { return new(gwv1.HTTPRoute) },
	"traefik.io/v1alpha1/Middleware":                     func() any { return new(traefikMiddleware) },
	"traefik.io/v1alpha1/IngressRoute":                   func() any { return new(traefikIngressRoute) },
	"gateway.envoyproxy.io/v1alpha1/SecurityPolicy":      func() any { return new(envoySecurityPolicy) },
	"gateway.envoyproxy.io/v1alpha1/ClientTrafficPolicy": func() any { return new(envoyClientTrafficPolicy) },
}

// decodeStrict decodes JSON into v, refusing unknown fields, duplicate keys
// and keys that differ from a field's name only in case (encoding/json would
// accept "Image" for "image"; the API server would not).
func decodeStrict(data []byte, v any) error {
	strict, err := sjson.UnmarshalStrict(data, v, sjson.DisallowDuplicateFields, sjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		var b bytes.Buffer
		for i, e := range strict {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(e.Error())
		}
		return fmt.Errorf("strict decoding: %s", b.String())
	}
	return nil
}

// render builds the kustomization in dir (relative to deploy/) exactly as
// `kubectl apply -k dir` would, and decodes every object strictly.
func render(t *testing.T, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []object
	for _, r := range m.Resources() {
		o := object{APIVersion: r.GetApiVersion(), Kind: r.GetKind(), Namespace: r.GetNamespace(), Name: r.GetName()}
		newT, ok := decoders[o.APIVersion+"/"+o.Kind]
		if !ok {
			t.Errorf("%s: %s (%s) has no strict decoder", dir, o, o.APIVersion)
			continue
		}
		data, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %s: marshal: %v", dir, o, err)
		}
		o.Typed = newT()
		if err := decodeStrict(data, o.Typed); err != nil {
			t.Errorf("%s: %s: %v", dir, o, err)
			continue
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 {
		t.Fatalf("%s rendered no objects", dir)
	}
	return objs
}

// kustomizations returns base, every overlay and redis: a new overlay is
// validated without being listed here.
func kustomizations(t *testing.T) []string {
	t.Helper()
	dirs := []string{"base", "redis"}
	entries, err := os.ReadDir("overlays")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join("overlays", e.Name()))
		}
	}
	sort.Strings(dirs)
	return dirs
}

// byKind returns the objects of one Go type.
func byKind[T any](objs []object) []*T {
	var out []*T
	for _, o := range objs {
		if v, ok := o.Typed.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// workload is a pod template with where it came from.
type workload struct {
	name, namespace string
	pod             *corev1.PodTemplateSpec
}

func workloads(objs []object) []workload {
	var out []workload
	for _, d := range byKind[appsv1.Deployment](objs) {
		out = append(out, workload{d.Name, d.Namespace, &d.Spec.Template})
	}
	for _, s := range byKind[appsv1.StatefulSet](objs) {
		out = append(out, workload{s.Name, s.Namespace, &s.Spec.Template})
	}
	return out
}

// allContainers returns init containers (native sidecars included) and
// containers.
func allContainers(spec *corev1.PodSpec) []*corev1.Container {
	var out []*corev1.Container
	for i := range spec.InitContainers {
		out = append(out, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		out = append(out, &spec.Containers[i])
	}
	return out
}

// isGatehouse tells the gateway's container from an app or Redis.
func isGatehouse(c *corev1.Container) bool {
	return c.Name == "gatehouse"
}

func gatehouseContainer(t *testing.T, objs []object) (*corev1.Container, workload) {
	t.Helper()
	for _, w := range workloads(objs) {
		for _, c := range allContainers(&w.pod.Spec) {
			if isGatehouse(c) {
				return c, w
			}
		}
	}
	t.Fatal("no gatehouse container rendered")
	return nil, workload{}
}

package deploy

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The CRDs below are not vendored: these small structs hold only the fields
// the overlays use (from the Traefik and Envoy Gateway API references), and
// strict decoding refuses anything else, so a misspelt or misplaced field
// fails the test instead of being dropped silently by the API server's
// pruning.

// traefikMiddleware is traefik.io/v1alpha1 Middleware (forwardAuth only).
type traefikMiddleware struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ForwardAuth *traefikForwardAuth `json:"forwardAuth"`
	} `json:"spec"`
}

type traefikForwardAuth struct {
	Address             string   `json:"address"`
	TrustForwardHeader  *bool    `json:"trustForwardHeader,omitempty"`
	AuthResponseHeaders []string `json:"authResponseHeaders,omitempty"`
	AuthRequestHeaders  []string `json:"authRequestHeaders,omitempty"`
}

// traefikIngressRoute is traefik.io/v1alpha1 IngressRoute.
type traefikIngressRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		EntryPoints []string       `json:"entryPoints,omitempty"`
		Routes      []traefikRoute `json:"routes"`
		TLS         *struct {
			SecretName string `json:"secretName,omitempty"`
		} `json:"tls,omitempty"`
	} `json:"spec"`
}

type traefikRoute struct {
	Kind        string `json:"kind"`
	Match       string `json:"match"`
	Priority    int    `json:"priority,omitempty"`
	Middlewares []struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace,omitempty"`
	} `json:"middlewares,omitempty"`
	Services []struct {
		Name      string             `json:"name"`
		Namespace string             `json:"namespace,omitempty"`
		Port      intstr.IntOrString `json:"port"`
	} `json:"services"`
}

// envoyTargetRef is a policy's gateway.networking.k8s.io target.
type envoyTargetRef struct {
	Group       string `json:"group"`
	Kind        string `json:"kind"`
	Name        string `json:"name"`
	SectionName string `json:"sectionName,omitempty"`
}

// envoySecurityPolicy is gateway.envoyproxy.io/v1alpha1 SecurityPolicy
// (extAuth over HTTP only).
type envoySecurityPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TargetRefs []envoyTargetRef `json:"targetRefs"`
		ExtAuth    *struct {
			FailOpen         *bool    `json:"failOpen,omitempty"`
			HeadersToExtAuth []string `json:"headersToExtAuth,omitempty"`
			HTTP             *struct {
				BackendRefs []struct {
					Group     string `json:"group,omitempty"`
					Kind      string `json:"kind,omitempty"`
					Name      string `json:"name"`
					Namespace string `json:"namespace,omitempty"`
					Port      *int32 `json:"port,omitempty"`
				} `json:"backendRefs"`
				Path             string   `json:"path,omitempty"`
				HeadersToBackend []string `json:"headersToBackend,omitempty"`
			} `json:"http,omitempty"`
		} `json:"extAuth,omitempty"`
	} `json:"spec"`
}

// envoyClientTrafficPolicy is gateway.envoyproxy.io/v1alpha1
// ClientTrafficPolicy (header settings only).
type envoyClientTrafficPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TargetRefs []envoyTargetRef `json:"targetRefs"`
		Headers    *struct {
			WithUnderscoresAction string `json:"withUnderscoresAction,omitempty"`
			EarlyRequestHeaders   *struct {
				Remove []string `json:"remove,omitempty"`
			} `json:"earlyRequestHeaders,omitempty"`
		} `json:"headers,omitempty"`
	} `json:"spec"`
}

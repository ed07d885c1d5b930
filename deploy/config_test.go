package deploy

import (
	"bytes"
	"fmt"
	"net"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// contractConfig mirrors the configuration keys of the documented configuration (README "Configuration reference")
// (its YAML block, plus X_file for the secret redis.password). It is written
// from the documentation, not imported from the gateway, so that a config file here
// that uses a key the README does not document fails.
type contractConfig struct {
	Listen          string   `yaml:"listen"`
	AdminListen     *string  `yaml:"admin_listen"`
	ShutdownTimeout string   `yaml:"shutdown_timeout"`
	TrustedProxies  []string `yaml:"trusted_proxies"`
	Redis           struct {
		URL          string `yaml:"url"`
		Password     string `yaml:"password"`
		PasswordFile string `yaml:"password_file"`
		KeyPrefix    string `yaml:"key_prefix"`
		Sentinel     *struct {
			Master string   `yaml:"master"`
			Addrs  []string `yaml:"addrs"`
		} `yaml:"sentinel"`
		Cluster *struct {
			Addrs []string `yaml:"addrs"`
		} `yaml:"cluster"`
	} `yaml:"redis"`
	Upstreams map[string]contractUpstream `yaml:"upstreams"`
	Routes    []struct {
		Path     string   `yaml:"path"`
		Match    string   `yaml:"match"`
		Name     string   `yaml:"name"`
		Methods  []string `yaml:"methods"`
		Policy   string   `yaml:"policy"`
		Upstream string   `yaml:"upstream"`
	} `yaml:"routes"`
	DefaultPolicy string `yaml:"default_policy"`
	Auth          struct {
		LoginPath            string   `yaml:"login_path"`
		RegisterPath         string   `yaml:"register_path"`
		LogoutPath           string   `yaml:"logout_path"`
		MePath               string   `yaml:"me_path"`
		VerifyPath           string   `yaml:"verify_path"`
		PublicURL            string   `yaml:"public_url"`
		AllowedRedirectHosts []string `yaml:"allowed_redirect_hosts"`
		Registration         string   `yaml:"registration"`
		AllowedEmailDomains  []string `yaml:"allowed_email_domains"`
		BcryptCost           int      `yaml:"bcrypt_cost"`
		PasswordMinLength    int      `yaml:"password_min_length"`
		MaxLoginFailures     int      `yaml:"max_login_failures"`
		LoginFailureWindow   string   `yaml:"login_failure_window"`
	} `yaml:"auth"`
	Session struct {
		CookieName     string `yaml:"cookie_name"`
		CookieDomain   string `yaml:"cookie_domain"`
		CookieSecure   *bool  `yaml:"cookie_secure"`
		CookieSameSite string `yaml:"cookie_same_site"`
		TTL            string `yaml:"ttl"`
		IdleTimeout    string `yaml:"idle_timeout"`
	} `yaml:"session"`
	Identity struct {
		UserIDHeader string  `yaml:"user_id_header"`
		EmailHeader  *string `yaml:"email_header"`
	} `yaml:"identity"`
	CSRF struct {
		ProtectUpstream *bool    `yaml:"protect_upstream"`
		TrustedOrigins  []string `yaml:"trusted_origins"`
	} `yaml:"csrf"`
}

// contractUpstream is a URL string or a mapping with the documented keys.
type contractUpstream struct {
	URL string
}

var upstreamKeys = map[string]bool{
	"url": true, "dial_timeout": true, "response_header_timeout": true,
	"ca_file": true, "insecure_skip_verify": true,
}

// UnmarshalYAML accepts both forms. yaml.v3 does not carry KnownFields into
// a custom unmarshaler, so the mapping's keys are checked here.
func (u *contractUpstream) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Decode(&u.URL)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if !upstreamKeys[k.Value] {
				return fmt.Errorf("line %d: upstream key %q is not a documented key", k.Line, k.Value)
			}
			if k.Value == "url" {
				u.URL = n.Content[i+1].Value
			}
		}
		return nil
	default:
		return fmt.Errorf("line %d: upstream must be a URL or a mapping", n.Line)
	}
}

// parseConfig decodes a Gatehouse config file strictly against the documented keys.
func parseConfig(data []byte) (*contractConfig, error) {
	var c contractConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if len(c.Upstreams) == 0 {
		return nil, fmt.Errorf("upstreams: required")
	}
	return &c, nil
}

// verifyPath is auth.verify_path or its default.
func (c *contractConfig) verifyPath() string {
	if c.Auth.VerifyPath != "" {
		return c.Auth.VerifyPath
	}
	return "/_gatehouse/verify"
}

// adminListen is admin_listen or its default.
func (c *contractConfig) adminListen() string {
	if c.AdminListen != nil {
		return *c.AdminListen
	}
	return "127.0.0.1:9090"
}

// hostPort splits an address and parses its port.
func hostPort(addr string) (string, int32, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		return "", 0, err
	}
	return h, int32(n), nil
}

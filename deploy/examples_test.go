package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantLines checks that each regexp matches some line of the file,
// ignoring comment lines (starting with #) so that a directive that was
// commented out does not count.
func wantLines(t *testing.T, name, text string, patterns ...string) {
	t.Helper()
	var live []string
	for _, l := range strings.Split(text, "\n") {
		if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") {
			live = append(live, s)
		}
	}
	body := strings.Join(live, "\n")
	for _, p := range patterns {
		if !regexp.MustCompile("(?m)" + p).MatchString(body) {
			t.Errorf("%s: no line matches %s", name, p)
		}
	}
}

const verifyPath = "/_gatehouse/verify"

func TestNginxConf(t *testing.T) {
	text := readFile(t, "examples/nginx.conf")
	wantLines(t, "nginx.conf", text,
		`^location = /_gatehouse_verify \{$`,
		`^internal;$`,
		`^proxy_pass http://gatehouse`+regexp.QuoteMeta(verifyPath)+`;$`,
		`^proxy_set_header X-Original-URI\s+\$request_uri;$`,
		`^proxy_set_header X-Original-Method\s+\$request_method;$`,
		// Set, so that a client's own copies are overwritten: Gatehouse
		// prefers these to X-Original-*.
		`^proxy_set_header X-Forwarded-Method\s+\$request_method;$`,
		`^proxy_set_header X-Forwarded-Uri\s+\$request_uri;$`,
		`^proxy_pass_request_body off;$`,
		`^proxy_set_header Content-Length "";$`,
		`^auth_request /_gatehouse_verify;$`,
		`^auth_request_set \$user_id\s+\$upstream_http_x_user_id;$`,
		`^proxy_set_header X-User-Id\s+\$user_id;$`,
		`^auth_request_set \$user_groups\s+\$upstream_http_x_user_groups;$`,
		`^proxy_set_header X-User-Groups\s+\$user_groups;$`,
		`^auth_request_set \$assertion\s+\$upstream_http_x_gatehouse_assertion;$`,
		`^proxy_set_header X-Gatehouse-Assertion\s+\$assertion;$`,
		// The cookies without the gateway's tokens replace the client's;
		// empty (none left) makes nginx send no Cookie.
		`^auth_request_set \$app_cookie\s+\$upstream_http_cookie;$`,
		`^proxy_set_header Cookie\s+\$app_cookie;$`,
		`^map \$http_authorization \$app_authorization \{$`,
		`^proxy_set_header Authorization \$app_authorization;$`,
		`^error_page 401 = @login;$`,
		`^return 302 /login\?rd=\$request_uri;$`,
	)
	if nginx, err := exec.LookPath("nginx"); err == nil {
		// A full syntax check needs the server block inside http {}.
		dir := t.TempDir()
		conf := "events {}\nhttp {\n" + strings.ReplaceAll(text, "ssl_certificate", "#ssl_certificate") + "\n}\n"
		conf = strings.Replace(conf, "listen 443 ssl http2;", "listen 127.0.0.1:8443;", 1)
		if err := os.WriteFile(dir+"/nginx.conf", []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(nginx, "-t", "-p", dir, "-c", dir+"/nginx.conf", "-g", "pid "+dir+"/nginx.pid; error_log stderr;").CombinedOutput()
		if err != nil && !strings.Contains(string(out), "Permission denied") {
			t.Errorf("nginx -t: %v\n%s", err, out)
		}
	}
}

func TestCaddyfile(t *testing.T) {
	text := readFile(t, "examples/Caddyfile")
	wantLines(t, "Caddyfile", text,
		`^forward_auth 127\.0\.0\.1:8080 \{$`,
		`^uri `+regexp.QuoteMeta(verifyPath)+`\?redirect=1$`,
		`^copy_headers X-User-Id X-User-Email X-User-Groups X-Gatehouse-Assertion Cookie$`,
		`^request_header -X-User-Id$`,
		`^request_header -X-User-Email$`,
		`^request_header -X-User-Groups$`,
		`^request_header -X-Gatehouse-Assertion$`,
		// After forward_auth: what old copy_headers left behind goes.
		`^request_header @unset_user_id -X-User-Id$`,
		`^request_header @unset_user_groups -X-User-Groups$`,
		`^request_header @unset_cookie -Cookie$`,
		`^request_header @gateway_bearer -Authorization$`,
		`^route \{$`,
	)
	if caddy, err := exec.LookPath("caddy"); err == nil {
		out, err := exec.Command(caddy, "adapt", "--config", "examples/Caddyfile", "--adapter", "caddyfile").CombinedOutput()
		if err != nil {
			t.Errorf("caddy adapt: %v\n%s", err, out)
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	text := readFile(t, "examples/gatehouse.service")
	wantLines(t, "gatehouse.service", text,
		`^ExecStart=/usr/local/bin/gatehouse serve -config /etc/gatehouse/config\.yaml$`,
		`^ExecReload=/bin/kill -HUP \$MAINPID$`,
		`^DynamicUser=yes$`,
		`^ProtectSystem=strict$`,
		`^ProtectHome=yes$`,
		`^PrivateTmp=yes$`,
		`^PrivateDevices=yes$`,
		`^NoNewPrivileges=yes$`,
		`^CapabilityBoundingSet=$`,
		`^RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$`,
		`^SystemCallFilter=@system-service$`,
		`^MemoryDenyWriteExecute=yes$`,
		`^LockPersonality=yes$`,
		`^RestrictNamespaces=yes$`,
		`^LoadCredential=redis-password:`,
		`^Environment=REDIS_PASSWORD_FILE=%d/redis-password$`,
	)
	cfg, err := parseConfig([]byte(readFile(t, "examples/gatehouse.yaml")))
	if err != nil {
		t.Fatalf("examples/gatehouse.yaml: %v", err)
	}
	if cfg.Redis.PasswordFile != "${REDIS_PASSWORD_FILE}" {
		t.Errorf("redis.password_file = %q, want ${REDIS_PASSWORD_FILE} (the credential the unit loads)", cfg.Redis.PasswordFile)
	}
	if cfg.Session.CookieSecure == nil || !*cfg.Session.CookieSecure || cfg.Auth.Registration != "closed" {
		t.Error("examples/gatehouse.yaml must set cookie_secure: true and registration: closed")
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		out, err := exec.Command(sa, "verify", "--man=no", "examples/gatehouse.service").CombinedOutput()
		// verify also complains that the binary is not installed here.
		if err != nil && !strings.Contains(string(out), "/usr/local/bin/gatehouse") {
			t.Logf("systemd-analyze verify (informational): %v\n%s", err, out)
		}
	}
}

func TestDockerfile(t *testing.T) {
	text := readFile(t, "Dockerfile")
	wantLines(t, "Dockerfile", text,
		`^FROM golang:1\.26 AS build$`,
		`CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /gatehouse \./cmd/gatehouse$`,
		`^FROM gcr\.io/distroless/static-debian12:nonroot$`,
		`^USER nonroot$`,
		`^EXPOSE 8080 9090$`,
		`^ENTRYPOINT \["/gatehouse"\]$`,
		`^CMD \["serve", "-config", "/etc/gatehouse/config\.yaml"\]$`,
	)
	// The static build script must build exactly the same binary.
	script := readFile(t, "build-static.sh")
	wantLines(t, "build-static.sh", script,
		`^set -eu$`,
		`^CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "\$out" \./cmd/gatehouse$`,
	)
	if !strings.HasPrefix(script, "#!/bin/sh\n") {
		t.Error("build-static.sh must start with #!/bin/sh (POSIX sh)")
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		if out, err := exec.Command(sh, "-n", "build-static.sh").CombinedOutput(); err != nil {
			t.Errorf("sh -n build-static.sh: %v\n%s", err, out)
		}
	}
}

// TestConfigFiles decodes every config file kept here against the documented keys.
func TestConfigFiles(t *testing.T) {
	for _, name := range []string{"base/config.yaml", "overlays/sidecar/config.yaml", "overlays/sidecar-legacy/config.yaml", "examples/gatehouse.yaml"} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseConfig([]byte(readFile(t, name))); err != nil {
				t.Error(err)
			}
		})
	}
}

package config

import (
	"bytes"
	"cmp"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxSecretFile bounds what an X_file key reads: a secret is small, and a
// mistaken path such as /dev/zero must not hang or exhaust the loader.
const maxSecretFile = 64 << 10

// maxCAFile bounds what a ca_file read reads: a system bundle of every
// public root is about 200 KiB.
const maxCAFile = 4 << 20

// Load reads the configuration file at path and returns it decoded over
// Default() and validated. lookup reads environment variables for ${NAME}
// (os.LookupEnv in production; nil means no variable is set). On failure the
// error is a Problems listing every problem of the file, decoding and
// validation alike, and the Config is nil.
func Load(path string, lookup func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, Problems{{File: path, Msg: "cannot read: " + err.Error()}}
	}
	return Parse(path, data, lookup)
}

// Parse is Load for a file already read: file names it in problems and is
// the base for relative X_file and ca_file paths. It reads the X_file
// secrets and checks that each ca_file holds a PEM certificate (as the
// upstream transport will require at start), but has no other effect.
func Parse(file string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	return parse(file, data, lookup, osFiles{})
}

// files is what decoding needs from the file system; fuzzing replaces it so
// that arbitrary inputs never read real files.
type files interface {
	readSecret(path string) ([]byte, error)
	// checkCA reports why path is not a usable ca_file.
	checkCA(path string) error
}

type osFiles struct{}

func (osFiles) readSecret(path string) ([]byte, error) { return readSmallFile(path, maxSecretFile) }

// checkCA refuses what the upstream transport would refuse at start: a
// file it cannot read, or one without a PEM certificate in it.
func (osFiles) checkCA(path string) error {
	b, err := readSmallFile(path, maxCAFile)
	if err != nil {
		return err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return errNoCertificate
	}
	return nil
}

// errNoCertificate is checkCA's answer for a readable file without a PEM
// certificate.
var errNoCertificate = errors.New("no PEM certificate")

// readSmallFile reads a regular file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	// Stat first: opening a FIFO or a terminal would block.
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

func parse(file string, data []byte, lookup func(string) (string, bool), fsys files) (*Config, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	cfg := Default()
	cfg.File = file
	cfg.lines = map[string]int{}
	d := &decoder{
		collector: collector{file: file, lines: cfg.lines},
		dir:       filepath.Dir(file),
		lookup:    lookup,
		fsys:      fsys,
	}
	root, err := parseYAML(data)
	if err != nil {
		d.syntax(err)
		return nil, d.err()
	}
	if root != nil {
		d.value(root, reflect.ValueOf(cfg).Elem(), "")
	}
	d.secrets(cfg)
	d.keyFiles(cfg)
	d.upstreamDefaults(cfg)
	for i := range cfg.Routes {
		if cfg.Routes[i].Match == "" {
			cfg.Routes[i].Match = MatchPrefix
		}
	}
	if len(d.probs) > 0 {
		// Validate too, so that one run of `gatehouse check` lists every
		// problem. A value that failed to decode kept its default or zero;
		// what Validate says about that same key is dropped as a repeat.
		failed := map[string]bool{}
		for _, p := range d.probs {
			failed[p.Path] = true
		}
		if verr := cfg.Validate(); verr != nil {
			for _, p := range verr.(Problems) {
				if !underFailed(failed, p.Path) {
					d.push(p)
				}
			}
		}
		sortProblems(d.probs)
		return nil, d.err()
	}
	if err := cfg.Validate(); err != nil {
		ps := err.(Problems)
		sortProblems(ps)
		return nil, ps
	}
	return cfg, nil
}

// sortProblems orders problems by line, keeping the order of those on one
// line; problems without a line (keys missing from the file) come last.
func sortProblems(ps Problems) {
	key := func(p Problem) int {
		if p.Line == 0 {
			return math.MaxInt
		}
		return p.Line
	}
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(key(a), key(b)) })
}

// underFailed reports whether path or one of its parents failed to decode.
func underFailed(failed map[string]bool, path string) bool {
	for ; path != ""; path = parentPath(path) {
		if failed[path] {
			return true
		}
	}
	return false
}

// parseYAML returns the document's root node, nil for an empty file, and
// refuses a second document (a stray "---" would silently drop the rest).
func parseYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("yaml: line %d: only one YAML document is allowed", next.Line)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntax records a YAML parse error at its line.
func (d *decoder) syntax(err error) {
	msg := err.Error()
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	d.at(line, "", "invalid YAML: %s", msg)
}

// secrets reads every X_file into X, refusing both set.
func (d *decoder) secrets(cfg *Config) {
	d.secret(&cfg.Redis.URL, cfg.Redis.URLFile, "redis.url")
	d.secret(&cfg.Redis.Password, cfg.Redis.PasswordFile, "redis.password")
	if s := cfg.Redis.Sentinel; s != nil {
		d.secret(&s.Password, s.PasswordFile, "redis.sentinel.password")
	}
}

func (d *decoder) secret(dst *string, file, path string) {
	if file == "" {
		return
	}
	fp := path + "_file"
	if _, both := d.lines[path]; both {
		d.add(fp, "set either %s or %s, not both", path, fp)
		return
	}
	b, err := d.fsys.readSecret(d.rel(file))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		d.add(fp, "cannot read %s: %v", file, err)
		return
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		d.add(fp, "%s is empty", file)
		return
	}
	*dst = s
	// Problems found later in the secret's value point at the _file key.
	d.lines[path] = d.lines[fp]
}

// rel resolves a path in the file relative to the file's directory.
func (d *decoder) rel(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.dir, p)
}

// upstreamDefaults fills zero timeouts and resolves and checks ca_file.
func (d *decoder) upstreamDefaults(cfg *Config) {
	for _, name := range cfg.upstreamNames() {
		u := cfg.Upstreams[name]
		if u.DialTimeout == 0 {
			u.DialTimeout = Duration(DefaultDialTimeout)
		}
		if u.ResponseHeaderTimeout == 0 {
			u.ResponseHeaderTimeout = Duration(DefaultResponseHeaderTimeout)
		}
		if u.CAFile != "" {
			u.CAFile = d.rel(u.CAFile)
			if err := d.fsys.checkCA(u.CAFile); errors.Is(err, errNoCertificate) {
				d.add("upstreams."+name+".ca_file", "%s holds no PEM certificate", u.CAFile)
			} else if err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				d.add("upstreams."+name+".ca_file", "cannot read %s: %v", u.CAFile, err)
			}
		}
		cfg.Upstreams[name] = u
	}
}

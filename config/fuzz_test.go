package config

import (
	"errors"
	"strings"
	"testing"
)

// fakeFiles stands in for the file system while fuzzing: a fuzzed
// password_file must never read a real file (or block on /dev/stdin).
type fakeFiles struct{}

func (fakeFiles) readSecret(path string) ([]byte, error) {
	if strings.HasSuffix(path, "secret") {
		return []byte("s3cret\n"), nil
	}
	return nil, errors.New("no such file")
}

func (fakeFiles) checkCA(path string) error {
	if strings.HasSuffix(path, ".pem") {
		return nil
	}
	return errors.New("no such file")
}

// FuzzParse checks that the loader never panics and that every failure is
// a non-empty Problems naming the file, and every success validates.
func FuzzParse(f *testing.F) {
	f.Add([]byte(up + "routes:\n  - {path: /, policy: public}\n"))
	f.Add([]byte("upstreams:\n  a: {url: https://a, ca_file: x.pem, dial_timeout: 0}\nredis:\n  password_file: secret\n  url: redis://r:1\n"))
	f.Add([]byte("listen: ${X}\nkey: $${Y}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("- [\n"))
	lookup := envOf(map[string]string{"X": "127.0.0.1:1", "N": "5", "E": ""})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse("fuzz.yaml", data, lookup, fakeFiles{})
		if err == nil {
			if c == nil {
				t.Fatal("nil Config and nil error")
			}
			if verr := c.Validate(); verr != nil {
				t.Fatalf("parsed config does not validate: %v", verr)
			}
			_ = c.Summary()
			return
		}
		if c != nil {
			t.Fatal("non-nil Config with an error")
		}
		ps, ok := err.(Problems)
		if !ok || len(ps) == 0 {
			t.Fatalf("error is %T (%v), want a non-empty Problems", err, err)
		}
		for _, p := range ps {
			if p.File != "fuzz.yaml" || p.Msg == "" {
				t.Fatalf("problem %#v lacks its file or message", p)
			}
		}
	})
}

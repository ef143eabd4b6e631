package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

func fuzzFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("fuzz", pflag.ContinueOnError)
	fs.String("listen-unix", "/a", "")
	fs.Int("port", 1, "")
	fs.Bool("verbose", false, "")
	fs.StringSlice("frameworks", nil, "")
	fs.IntSlice("ports", nil, "")
	fs.Duration("timeout", time.Second, "")
	fs.StringToString("labels", nil, "")
	return fs
}

// FuzzBind feeds arbitrary config files to the parser: it must return an
// error or bind, never panic, and never accept a key that names no flag.
func FuzzBind(f *testing.F) {
	for _, seed := range []string{
		"listen-unix: /x\nport: 2\n",
		"frameworks: [a, b]\nports: [1, 2]\n",
		"labels: {a: b}\n",
		"a: &x 1\nport: *x\n",
		"port: [1\n",
		"- 1\n",
		"",
		"~\n",
		"<<: {port: 1}\n",
		"timeout: 1h\nverbose: yes\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := fuzzFlags()
		err := bind(fs, "ORIGINAGENT_FUZZ", "fuzz.yaml", data)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		var top map[string]any
		if yaml.Unmarshal(data, &top) == nil {
			for k := range top {
				if fs.Lookup(k) == nil {
					t.Errorf("accepted unknown key %q", k)
				}
			}
		}
	})
}

package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// values are what the test command's flags ended up as.
type values struct {
	LogLevel   string
	ListenUnix string
	Port       int
	Verbose    bool
	Frameworks []string
	Timeout    time.Duration
	Labels     map[string]string
	Token      string
}

// newRoot builds originagent-like commands: a root with persistent flags,
// including --config, and a "run" subcommand whose PersistentPreRunE binds.
func newRoot(got *values) *cobra.Command {
	var configFile string
	root := &cobra.Command{
		Use:           "originagent",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return Bind(cmd, "ORIGINAGENT", configFile)
		},
	}
	root.PersistentFlags().StringVar(&configFile, "config", "", "YAML config file")
	root.PersistentFlags().StringVar(&got.LogLevel, "log-level", "info", "log level")
	run := &cobra.Command{
		Use:  "run",
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	f := run.Flags()
	f.StringVar(&got.ListenUnix, "listen-unix", "/var/run/datadog/apm.socket", "trace intake socket")
	f.IntVar(&got.Port, "port", 8126, "trace intake port")
	f.BoolVar(&got.Verbose, "verbose", false, "verbose logs")
	f.StringSliceVar(&got.Frameworks, "frameworks", []string{"net/http"}, "frameworks to probe")
	f.DurationVar(&got.Timeout, "timeout", 5*time.Second, "upstream timeout")
	f.StringToStringVar(&got.Labels, "labels", nil, "extra labels")
	f.StringVar(&got.Token, "token", "", "API token")
	_ = run.MarkFlagRequired("token")
	root.AddCommand(run)
	return root
}

func defaults() values {
	return values{
		LogLevel: "info", ListenUnix: "/var/run/datadog/apm.socket", Port: 8126,
		Frameworks: []string{"net/http"}, Timeout: 5 * time.Second, Labels: map[string]string{}, Token: "t",
	}
}

func TestBind(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		file    string // YAML; "" means no --config
		noToken bool   // leave out --token, the required flag
		want    func(v *values)
		wantErr []string // substrings of the error
	}{
		{name: "defaults", want: func(*values) {}},
		{
			name: "file", file: "listen-unix: /tmp/apm.sock\nport: 9000\nverbose: true\ntimeout: 1m\nlog-level: debug\n",
			want: func(v *values) {
				v.ListenUnix, v.Port, v.Verbose, v.Timeout, v.LogLevel = "/tmp/apm.sock", 9000, true, time.Minute, "debug"
			},
		},
		{
			name: "env beats file", file: "port: 9000\n", env: map[string]string{"ORIGINAGENT_PORT": "9100"},
			want: func(v *values) { v.Port = 9100 },
		},
		{
			name: "flag beats env and file", args: []string{"--port", "9200"}, file: "port: 9000\n",
			env:  map[string]string{"ORIGINAGENT_PORT": "9100"},
			want: func(v *values) { v.Port = 9200 },
		},
		{
			name: "persistent flag from env", env: map[string]string{"ORIGINAGENT_LOG_LEVEL": "warn"},
			want: func(v *values) { v.LogLevel = "warn" },
		},
		{
			name: "empty env sets the empty string", file: "listen-unix: /x\n", env: map[string]string{"ORIGINAGENT_LISTEN_UNIX": ""},
			want: func(v *values) { v.ListenUnix = "" },
		},
		{
			name: "empty env empties a slice", env: map[string]string{"ORIGINAGENT_FRAMEWORKS": ""},
			want: func(v *values) { v.Frameworks = []string{} },
		},
		{
			name: "empty env for an int", file: "port: 9000\n", env: map[string]string{"ORIGINAGENT_PORT": ""},
			wantErr: []string{`invalid value "" for flag --port from environment variable ORIGINAGENT_PORT`},
		},
		{
			name: "quoted comma in env slice", env: map[string]string{"ORIGINAGENT_FRAMEWORKS": `a,"b,c"`},
			want: func(v *values) { v.Frameworks = []string{"a", "b,c"} },
		},
		{
			name: "bad env slice", env: map[string]string{"ORIGINAGENT_FRAMEWORKS": `a,"b`},
			wantErr: []string{"--frameworks", "ORIGINAGENT_FRAMEWORKS"},
		},
		{
			name: "env slice is comma-separated", env: map[string]string{"ORIGINAGENT_FRAMEWORKS": "net/http, gin,echo"},
			want: func(v *values) { v.Frameworks = []string{"net/http", "gin", "echo"} },
		},
		{
			name: "file slice is a list", file: "frameworks:\n  - gin\n  - chi\n",
			want: func(v *values) { v.Frameworks = []string{"gin", "chi"} },
		},
		{
			name: "file slice may be comma-separated", file: "frameworks: gin,chi\n",
			want: func(v *values) { v.Frameworks = []string{"gin", "chi"} },
		},
		{
			name: "flag slice replaces file list", args: []string{"--frameworks", "echo"}, file: "frameworks: [gin]\n",
			want: func(v *values) { v.Frameworks = []string{"echo"} },
		},
		{
			name: "map flag from YAML mapping", file: "labels:\n  team: apm\n  tier: web\n",
			want: func(v *values) { v.Labels = map[string]string{"team": "apm", "tier": "web"} },
		},
		{
			name: "map flag from env", env: map[string]string{"ORIGINAGENT_LABELS": "team=apm"},
			want: func(v *values) { v.Labels = map[string]string{"team": "apm"} },
		},
		{
			name: "aliases resolve", file: "listen-unix: &s /run/a.sock\nlabels: {sock: *s}\n",
			want: func(v *values) { v.ListenUnix, v.Labels = "/run/a.sock", map[string]string{"sock": "/run/a.sock"} },
		},
		{
			name: "empty file", file: "# nothing here\n", want: func(*values) {},
		},
		{
			name: "required flag from env", noToken: true, env: map[string]string{"ORIGINAGENT_TOKEN": "from-env"},
			want: func(v *values) { v.Token = "from-env" },
		},
		{
			name: "required flag missing", noToken: true, wantErr: []string{`required flag(s) "token" not set`},
		},
		{
			name: "unknown key", file: "port: 1\nlisten-unx: /x\n",
			wantErr: []string{`config.yaml:2: unknown key "listen-unx"`},
		},
		{
			name: "help is no key", file: "help: true\n", wantErr: []string{`unknown key "help"`},
		},
		{
			name: "bad env value", env: map[string]string{"ORIGINAGENT_PORT": "http"},
			wantErr: []string{`"http"`, "--port", "ORIGINAGENT_PORT"},
		},
		{
			name: "bad file value", file: "verbose: true\ntimeout: soon\n",
			wantErr: []string{"config.yaml:2", "--timeout", "soon"},
		},
		{
			name: "list for a scalar flag", file: "port: [1, 2]\n",
			wantErr: []string{"config.yaml:1", "--port", "a list"},
		},
		{
			name: "mapping for a scalar flag", file: "port: {a: 1}\n",
			wantErr: []string{"--port", "a mapping"},
		},
		{
			name: "null value", file: "port:\n", wantErr: []string{"config.yaml:1", "--port", "no value"},
		},
		{
			name: "duplicate key", file: "port: 1\nport: 2\n", wantErr: []string{"config.yaml:2", `"port" appears twice`},
		},
		{
			name: "not a mapping", file: "- port\n", wantErr: []string{"must be a mapping"},
		},
		{
			name: "YAML syntax error", file: "port: [1\n", wantErr: []string{"parse config file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := append([]string{"run"}, tt.args...)
			if !tt.noToken {
				args = append(args, "--token", "t")
			}
			if tt.file != "" {
				path := filepath.Join(t.TempDir(), "config.yaml")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", path)
			}
			var got values
			root := newRoot(&got)
			root.SetArgs(args)
			err := root.Execute()
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want one containing %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaults()
			tt.want(&want)
			if got.Labels == nil {
				got.Labels = map[string]string{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestBindMissingFile(t *testing.T) {
	var got values
	root := newRoot(&got)
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	root.SetArgs([]string{"run", "--token", "t", "--config", missing})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("err = %v, want one naming %s", err, missing)
	}
}

func TestEnvName(t *testing.T) {
	tests := []struct{ prefix, flag, want string }{
		{"ORIGINAGENT", "listen-unix", "ORIGINAGENT_LISTEN_UNIX"},
		{"ORIGINAGENT_", "admin-addr", "ORIGINAGENT_ADMIN_ADDR"},
		{"originagent", "probes.max", "ORIGINAGENT_PROBES_MAX"},
	}
	for _, tt := range tests {
		if got := EnvName(tt.prefix, tt.flag); got != tt.want {
			t.Errorf("EnvName(%q, %q) = %q, want %q", tt.prefix, tt.flag, got, tt.want)
		}
	}
}

func TestAnnotateEnv(t *testing.T) {
	var got values
	root := newRoot(&got)
	run, _, err := root.Find([]string{"run"})
	if err != nil {
		t.Fatal(err)
	}
	AnnotateEnv(run.Flags(), "ORIGINAGENT")
	AnnotateEnv(run.Flags(), "ORIGINAGENT") // idempotent
	AnnotateEnv(root.PersistentFlags(), "ORIGINAGENT")
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"run", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	for _, w := range []string{
		"trace intake socket (env ORIGINAGENT_LISTEN_UNIX)",
		"frameworks to probe (env ORIGINAGENT_FRAMEWORKS)",
		"log level (env ORIGINAGENT_LOG_LEVEL)",
	} {
		if !strings.Contains(help, w) {
			t.Errorf("help lacks %q:\n%s", w, help)
		}
	}
	if strings.Count(help, "(env ORIGINAGENT_PORT)") != 1 {
		t.Errorf("port annotated %d times:\n%s", strings.Count(help, "(env ORIGINAGENT_PORT)"), help)
	}
	if strings.Contains(help, "ORIGINAGENT_HELP") {
		t.Errorf("help flag annotated:\n%s", help)
	}
}

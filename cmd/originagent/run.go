package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/originagent/originagent/internal/admin"
	"github.com/originagent/originagent/internal/config"
	"github.com/originagent/originagent/internal/export"
	"github.com/originagent/originagent/internal/probes"
	"github.com/originagent/originagent/internal/probes/discover"
)

const envPrefix = "ORIGINAGENT"

// logFlags configures logging for every long-running command.
type logFlags struct {
	format, level string
}

func (l *logFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", l.level, err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", l.format)
}

// registerAgentFlags declares the flags of `run` (and `demo`) on fs, filling cfg.
func registerAgentFlags(fs *pflag.FlagSet, cfg *agentConfig) {
	pc := export.DefaultConfig()
	ec := probes.DefaultConfig()
	cfg.proxy, cfg.engine = pc, ec
	fs.StringVar(&cfg.proxy.Listen, "listen", pc.Listen, "TCP address of the trace intake tracers send to (empty: none)")
	fs.StringVar(&cfg.proxy.ListenUnix, "listen-unix", "", "Unix socket of the trace intake, e.g. "+export.DefaultListenUnix+" (empty: none)")
	fs.StringVar(&cfg.proxy.Upstream, "upstream", "", "the Datadog Agent's trace intake, http://HOST:PORT or unix:///PATH (default: resolved like dd-trace-go: DD_TRACE_AGENT_URL, DD_AGENT_HOST/DD_TRACE_AGENT_PORT, "+export.DefaultAgentSocket+", "+export.DefaultAgentURL+")")
	fs.StringVar(&cfg.localAgent, "local-agent", "never", "keep payloads in a built-in stand-in for the Datadog Agent instead of forwarding them: never, auto (when the upstream is unreachable at start) or always")
	fs.IntVar(&cfg.proxy.StoreSize, "store-size", pc.StoreSize, "records waiting for their spans, at most (default: 10k requests/s for 60 s)")
	fs.DurationVar(&cfg.proxy.RecordTTL, "record-ttl", pc.RecordTTL, "how long a record waits for its span")
	fs.Int64Var(&cfg.proxy.MaxBody, "max-body", pc.MaxBody, "largest trace payload accepted, in bytes (the Agent's limit)")
	fs.DurationVar(&cfg.proxy.BodyTimeout, "body-timeout", pc.BodyTimeout, "time a tracer has to send a trace payload's body; a slower upload gets 408 (the Agent's read timeout)")
	fs.DurationVar(&cfg.proxy.DrainPeriod, "drain-period", pc.DrainPeriod, "on SIGTERM, how long the intake keeps serving (closing each connection after its answer) before it stops, so that tracers move to a successor agent without losing a payload")
	fs.IntVar(&cfg.proxy.MaxInFlight, "max-in-flight", pc.MaxInFlight, "trace payloads handled at once")
	fs.DurationVar(&cfg.proxy.SlotTimeout, "slot-timeout", pc.SlotTimeout, "how long a trace payload waits for one of --max-in-flight slots before 429 (the Agent's decoder timeout)")
	fs.Int64Var(&cfg.proxy.BufferBudget, "buffer-budget", 0, "bytes of trace payloads buffered at once for enrichment; beyond it payloads are streamed untagged, or refused with 429 when chunked (default: a quarter of GOMEMLIMIT or the cgroup memory limit, else 256 MiB)")

	fs.StringVar(&cfg.selectEnv, "select-env", discover.OptInEnv+"=true", "instrument processes whose environment holds KEY=VALUE (empty: off)")
	fs.StringSliceVar(&cfg.selectExe, "select-exe", nil, "also instrument processes whose executable path or name matches one of these globs")
	fs.BoolVar(&cfg.kube, "kube", false, "also instrument processes of pods labelled originagent.io/enabled=true on this node (needs the Kubernetes API)")
	fs.BoolVar(&cfg.kubeNS, "kube-namespaces", false, "with --kube: a namespace labelled originagent.io/enabled=true opts in all its pods")
	fs.StringVar(&cfg.kubeconfig, "kubeconfig", "", "with --kube: kubeconfig file (default: in-cluster configuration)")
	fs.StringVar(&cfg.nodeName, "node-name", os.Getenv("NODE_NAME"), "with --kube: this node's name (default: $NODE_NAME)")

	fs.StringSliceVar(&cfg.engine.Symbolize.Include, "include", nil, "import path prefixes that are user code besides package main, the main module and modules replaced by a local directory (=> ../dir); wins over the known frameworks and tracers")
	fs.StringSliceVar(&cfg.engine.Symbolize.Exclude, "exclude", nil, "import path prefixes that are never user code (wins over everything)")
	fs.Uint32Var(&cfg.engine.RingBufferBytes, "ring-buffer-size", ec.RingBufferBytes, "kernel-to-agent event ring buffer, bytes (a power of two)")
	fs.IntVar(&cfg.engine.MaxFrames, "max-frames", ec.MaxFrames, "user frames kept per record, the origin included")
	fs.StringVar(&cfg.discover.ProcRoot, "proc-root", "/proc", "where the host's procfs is mounted")
	cfg.engine.ProcRoot = "/proc"

	fs.StringVar(&cfg.adminAddr, "admin-addr", admin.DefaultAddr, "address of /healthz, /readyz, /metrics and /status")
	fs.StringVar(&cfg.events, "events", "", "also write each code origin record as a JSON line to FILE, or - for standard output")
}

func newRunCmd() *cobra.Command {
	var cfg agentConfig
	var logs logFlags
	var configFile string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the node agent: attach probes to opted-in Go processes and tag their spans",
		Long: `run finds opted-in Go processes, attaches uprobes to their HTTP handlers'
dispatch functions, and serves a trace intake that puts _dd.code_origin.* tags
on the matching spans before forwarding every payload to the Datadog Agent.
Point tracers at it with DD_TRACE_AGENT_URL.

Every flag can also be set with an ORIGINAGENT_* environment variable or a
key of the YAML file given with --config; the command line wins, then the
environment, then the file. It needs root, or CAP_SYS_ADMIN, CAP_SYS_PTRACE
and CAP_DAC_READ_SEARCH (on kernels before 6.16 without the 2025 backport,
CAP_BPF and CAP_PERFMON can stand in for CAP_SYS_ADMIN).`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if configFile == "" {
				configFile = os.Getenv(config.EnvName(envPrefix, "config"))
			}
			return config.Bind(cmd, envPrefix, configFile)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.logger(os.Stderr)
			if err != nil {
				return err
			}
			cfg.engine.ProcRoot = cfg.discover.ProcRoot
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			a, err := newAgent(cfg, log)
			if err != nil {
				return err
			}
			return a.run(ctx, nil)
		},
	}
	fs := cmd.Flags()
	registerAgentFlags(fs, &cfg)
	logs.register(fs)
	fs.StringVar(&configFile, "config", "", "YAML file of flag values (keys are flag names)")
	config.AnnotateEnv(fs, envPrefix)
	return cmd
}

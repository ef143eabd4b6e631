package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/originagent/originagent/internal/admin"
)

// newStatusCmd returns "originagent status", which asks a running agent's
// admin server which processes it has attached to.
func newStatusCmd() *cobra.Command {
	var (
		addr    string
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status [--admin-addr ADDR] [--json]",
		Short: "Show the processes a running originagent has attached to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			raw, st, err := fetchStatus(ctx, addr)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				_, err := out.Write(raw)
				return err
			}
			return printStatus(out, st)
		},
	}
	cmd.Flags().StringVar(&addr, "admin-addr", admin.DefaultAddr, "admin address of the running agent (host:port or URL)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the agent's /status JSON as it sent it")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the agent")
	return cmd
}

// fetchStatus gets /status from the agent at addr and returns the body as
// sent and decoded.
func fetchStatus(ctx context.Context, addr string) ([]byte, admin.Status, error) {
	var st admin.Status
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/status", nil)
	if err != nil {
		return nil, st, fmt.Errorf("bad admin address %q: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, st, fmt.Errorf("no originagent at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, st, fmt.Errorf("read /status from %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, st, fmt.Errorf("originagent at %s answered /status with %s: %s", addr, resp.Status, bytes.TrimSpace(raw))
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, st, fmt.Errorf("decode /status from %s (is it an originagent?): %w", addr, err)
	}
	return raw, st, nil
}

// printStatus prints the agent summary, a table of attached processes and
// the counters.
func printStatus(w io.Writer, st admin.Status) error {
	ready := "ready"
	if !st.Ready {
		ready = "NOT READY: " + st.NotReadyReason
	}
	uptime := time.Duration(st.UptimeSeconds * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(w, "originagent %s, up %s, %s\n\n", orDash(st.Version), uptime, ready)

	if len(st.Processes) == 0 {
		fmt.Fprintln(w, "no processes attached")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PID\tSERVICE\tBINARY\tGO\tFRAMEWORKS\tPROBES\tHITS\tLABELS")
		for _, p := range st.Processes {
			var hits uint64
			for _, pr := range p.Probes {
				hits += pr.Hits
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n",
				p.PID, orDash(p.Service), orDash(p.Binary), orDash(p.GoVersion),
				orDash(strings.Join(p.Frameworks, ",")), len(p.Probes), hits, labels(p.Labels))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if len(st.Counters) > 0 {
		fmt.Fprintln(w, "\ncounters:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, name := range slices.Sorted(maps.Keys(st.Counters)) {
			fmt.Fprintf(tw, "  %s\t%s\n", name, strconv.FormatFloat(st.Counters[name], 'f', -1, 64))
		}
		return tw.Flush()
	}
	return nil
}

func labels(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

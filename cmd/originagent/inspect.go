package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/originagent/originagent/internal/symbolize"
)

// newInspectCmd returns "originagent inspect", which prints what
// originagent knows about a Go binary or the executable of a process.
func newInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect [--json] BINARY_OR_PID",
		Short: "Print Go version, modules and build facts of a Go binary or process",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if pid, err := parsePID(path); err == nil {
				path = fmt.Sprintf("/proc/%d/exe", pid)
			}
			b, err := symbolize.Open(path, symbolize.Options{PCCacheSize: -1})
			if err != nil {
				return err
			}
			info := b.Info()
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					ID string `json:"id"`
					symbolize.BuildInfo
				}{b.ID(), info})
			}
			printInfo(out, b.ID(), info)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func parsePID(s string) (int, error) {
	var pid int
	if _, err := fmt.Sscanf(s, "%d", &pid); err != nil || pid <= 0 || fmt.Sprint(pid) != s {
		return 0, fmt.Errorf("not a PID: %q", s)
	}
	return pid, nil
}

func printInfo(w io.Writer, id string, info symbolize.BuildInfo) {
	fmt.Fprintf(w, "go version:    %s\n", info.GoVersion)
	fmt.Fprintf(w, "identity:      %s\n", id)
	fmt.Fprintf(w, "main package:  %s\n", info.Path)
	fmt.Fprintf(w, "main module:   %s %s\n", info.Main.Path, info.Main.Version)
	fmt.Fprintf(w, "stripped:      %t\n", info.Stripped)
	fmt.Fprintf(w, "PIE:           %t\n", info.PIE)
	fmt.Fprintf(w, "trimpath:      %t\n", info.TrimPath)
	fmt.Fprintf(w, "cgo:           %t\n", info.CGO)
	fmt.Fprintf(w, "external link: %t\n", info.ExternalLink)
	fmt.Fprintf(w, "DWARF:         %t\n", info.DWARF)
	fmt.Fprintf(w, "functions:     %d (pclntab %d bytes, text at %#x from %s)\n", info.Funcs, info.PclntabSize, info.TextStart, info.TextSource)
	fmt.Fprintf(w, "dependencies:  %d\n", len(info.Deps))
	for _, d := range info.Deps {
		v := d.Version
		if d.Replace != nil {
			v += " => " + d.Replace.Path + " " + d.Replace.Version
		}
		fmt.Fprintf(w, "\t%s %s\n", d.Path, v)
	}
}

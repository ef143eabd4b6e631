package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/originagent/originagent/internal/symbolize"
)

// newSymbolizeCmd returns "originagent symbolize", which prints the frames
// of addresses of a Go binary (file addresses) or of a process (runtime
// addresses).
func newSymbolizeCmd() *cobra.Command {
	var (
		asJSON, isReturn bool
		opts             symbolize.Options
	)
	cmd := &cobra.Command{
		Use:   "symbolize [--json] [--return-address] BINARY_OR_PID ADDR...",
		Short: "Symbolize addresses of a Go binary or process",
		Long: "Symbolize prints, for each hex address, its frames innermost first: function, file, line,\n" +
			"declaration line, type, method and whether it is user code. Addresses are file addresses\n" +
			"for a binary and runtime addresses for a PID.",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			lookup, err := openTarget(args[0], opts)
			if err != nil {
				return err
			}
			addrs := make([]uint64, 0, len(args)-1)
			for _, a := range args[1:] {
				v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(a), "0x"), 16, 64)
				if err != nil {
					return fmt.Errorf("address %q: not hex: %w", a, err)
				}
				addrs = append(addrs, v)
			}
			out := cmd.OutOrStdout()
			var all [][]symbolize.Frame
			var firstErr error
			for _, a := range addrs {
				frames, err := lookup(a, isReturn)
				if err != nil {
					cmd.PrintErrf("%#x: %v\n", a, err)
					if firstErr == nil {
						firstErr = err
					}
				}
				if frames == nil {
					frames = []symbolize.Frame{}
				}
				all = append(all, frames)
				if !asJSON {
					printFrames(out, a, frames)
				}
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(all); err != nil {
					return err
				}
			}
			if firstErr != nil {
				return fmt.Errorf("some addresses could not be symbolized")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON list per address")
	cmd.Flags().BoolVar(&isReturn, "return-address", false, "addresses are return addresses (look up at addr-1)")
	cmd.Flags().StringSliceVar(&opts.Include, "include", nil, "import path prefixes that are user code besides package main, the main module and modules replaced by a local directory (=> ../dir); wins over the known frameworks and tracers")
	cmd.Flags().StringSliceVar(&opts.Exclude, "exclude", nil, "import path prefixes that are never user code (wins over everything)")
	return cmd
}

// openTarget opens a binary path, or a process when arg is a PID.
func openTarget(arg string, opts symbolize.Options) (func(uint64, bool) ([]symbolize.Frame, error), error) {
	if pid, err := strconv.Atoi(arg); err == nil && pid > 0 {
		p, err := symbolize.OpenProcess(pid, symbolize.NewCache(1, opts))
		if err != nil {
			return nil, err
		}
		return p.Lookup, nil
	}
	b, err := symbolize.Open(arg, opts)
	if err != nil {
		return nil, err
	}
	return b.Lookup, nil
}

func printFrames(w io.Writer, addr uint64, frames []symbolize.Frame) {
	fmt.Fprintf(w, "%#x\n", addr)
	for _, f := range frames {
		var flags []string
		if f.User {
			flags = append(flags, "user")
		}
		if f.Inlined {
			flags = append(flags, "inlined")
		}
		if f.Wrapper != "" {
			flags = append(flags, "wrapper="+f.Wrapper)
		}
		fmt.Fprintf(w, "\t%s\n\t\t%s:%d (func at line %d) type=%s method=%s %s\n",
			f.Function, f.File, f.Line, f.StartLine, f.Type, f.Method, strings.Join(flags, " "))
	}
}

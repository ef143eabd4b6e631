// Command originagent is the Code Origin for Spans node daemon for Go.
package main

import (
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:          "originagent",
		Short:        "Code Origin for Spans for Go, with zero code changes",
		SilenceUsage: true,
		Version:      version,
	}
	root.AddCommand(newRunCmd(), newDemoCmd(), newStatusCmd(), newSymbolizeCmd(), newInspectCmd())
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}

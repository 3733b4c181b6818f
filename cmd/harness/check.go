package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/harness"
	"github.com/raftcheck/harness/results"
)

func newCheckCmd() *cobra.Command {
	cfg := harness.CheckConfig{MemoryLimit: checker.DefaultMemoryLimit}
	cmd := &cobra.Command{
		Use:   "check DIR",
		Short: "Re-check a stored run's history and rewrite its results.json",
		Long: `check reads DIR/history.jsonl (nothing else is needed), runs the workload's checkers and
rewrites DIR/results.json and DIR/report.html. It exits like run: 0 valid, 1 invalid, 2 unknown.`,
		Example: `  harness check store/latest
  harness check --workload set --check-timeout 5m path/to/run`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := harness.Recheck(cmd.Context(), args[0], cfg)
			if err != nil {
				return err
			}
			printTarget(args[0])
			fmt.Println(harness.DescribeVerdict(res))
			return verdictExit(res.Valid)
		},
	}
	cmd.Flags().StringVar(&cfg.Workload, "workload", "", "register or set (default: inferred from the operations)")
	cmd.Flags().DurationVar(&cfg.Timeout, "check-timeout", time.Minute, "bound on the linearizability check (expiry: unknown)")
	checkFlags(cmd.Flags(), &cfg.Checkers, &cfg.MemoryLimit)
	return cmd
}

func newReportCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "report DIR",
		Short:   "Regenerate DIR/report.html from the stored files",
		Example: `  harness report store/latest`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := results.WriteReport(args[0]); err != nil {
				return err
			}
			printTarget(args[0])
			fmt.Println(args[0] + "/" + results.ReportFile)
			return nil
		},
	}
}

// printTarget names what a stored run tested, when its test.json says.
func printTarget(dir string) {
	var t results.TestInfo
	if results.ReadJSON(filepath.Join(dir, results.TestFile), &t) == nil {
		fmt.Printf("target: %s\n", t.TargetLabel())
	}
}

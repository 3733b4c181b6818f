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
	var format, store string
	cmd := &cobra.Command{
		Use:   "check DIR | --format jepsen FILE",
		Short: "Re-check a stored run's history (or a Jepsen history.edn) and write its results.json",
		Long: `check reads DIR/history.jsonl (nothing else is needed), runs the workload's checkers and
rewrites DIR/results.json and DIR/report.html. It exits like run: 0 valid, 1 invalid, 2 unknown.
With --format jepsen it reads a Jepsen EDN history instead (register, independent keys
included, or set), stores it as a new run folder under --store, and checks that.`,
		Example: `  harness check store/latest
  harness check --workload set --check-timeout 5m path/to/run
  harness check --checker linearizable --checker-memory 512MiB store/latest
  harness check --format jepsen path/to/history.edn`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "jepsen":
				dir, res, err := harness.ImportJepsen(cmd.Context(), args[0], store, cfg)
				if err != nil {
					return err
				}
				fmt.Println("run folder: " + dir)
				fmt.Println(harness.DescribeVerdict(res))
				return verdictExit(res.Valid)
			case "", "harness":
			default:
				return usage(fmt.Errorf("--format must be harness or jepsen, got %q", format))
			}
			res, err := harness.Recheck(cmd.Context(), args[0], cfg)
			if err != nil {
				return err
			}
			printTarget(args[0])
			fmt.Println(harness.DescribeVerdict(res))
			return verdictExit(res.Valid)
		},
	}
	cmd.Flags().StringVar(&cfg.Workload, "workload", "", "lock, register or set (default: inferred from the operations)")
	cmd.Flags().DurationVar(&cfg.Timeout, "check-timeout", time.Minute, "bound on the linearizability check (expiry: unknown)")
	checkFlags(cmd.Flags(), &cfg.Checkers, &cfg.MemoryLimit)
	cmd.Flags().StringVar(&format, "format", "harness", "what DIR is: harness (a run folder) or jepsen (a Jepsen history.edn, stored as a new run folder)")
	cmd.Flags().StringVar(&store, "store", "store", "with --format jepsen: the folder that holds run folders")
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

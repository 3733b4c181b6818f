package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftcheck/harness/harness"
)

func newSelftestCmd() *cobra.Command {
	o := harness.Defaults()
	o.TimeLimit = 15 * time.Second
	o.NemesisInterval = 3 * time.Second
	o.RecoveryTime = 10 * time.Second
	var only []string
	cmd := &cobra.Command{
		Use:   "selftest",
		Short: "Prove detection: run every seeded bug against the nemesis that should expose it",
		Long: `selftest runs, for every -unsafe switch of the agent, a test with the workload, read mode and
nemesis that should expose it, and the same tests against the correct agent. It prints a table
(bug, nemesis, verdict, detected, seconds from workload start to the first anomalous operation,
run folder) and exits 1 if any bug went unseen or the correct agent was judged anything but valid.`,
		Example: `  harness selftest
  harness selftest --bug local-cas --bug long-lease --time-limit 20s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, ok, err := harness.Selftest(cmd.Context(), o, only, os.Stderr)
			harness.PrintSelftest(os.Stdout, rows)
			if err != nil {
				return err
			}
			if !ok {
				fmt.Println("selftest: FAILED (a seeded bug went unseen, or the correct agent was not valid)")
				return exitError{exitInvalid}
			}
			fmt.Println("selftest: every seeded bug detected; the correct agent valid")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&only, "bug", nil, "run only these seeded bugs")
	nodesFlag(f, &o)
	loadFlags(f, &o)
	f.Int64Var(&o.Seed, "seed", 1, "seed of every test")
	return cmd
}

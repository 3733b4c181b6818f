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
	attempts := harness.DefaultSelftestAttempts
	cmd := &cobra.Command{
		Use:   "selftest",
		Short: "Prove detection: run every seeded bug against the nemesis that should expose it",
		Long: `selftest runs, for every -unsafe switch of the agent, a test with the workload, read mode and
nemesis that should expose it, and the same tests against the correct agent. Each seeded bug is a
bounded search: run after run, seed after seed (--seed, --seed+1, …), until a run is invalid or
--attempts runs saw nothing; the correct agent runs each configuration once and must be valid. It
prints a table (bug, nemesis, verdict, detected, runs taken, seed, seconds from workload start to
the first anomalous operation, run folder) and exits 1 if any bug went unseen within its bound or
the correct agent was judged anything but valid.`,
		Example: `  harness selftest
  harness selftest --bug local-cas --bug long-lease --time-limit 20s
  harness selftest --bug ack-before-commit --attempts 1 --seed 7   # one run: a detection benchmark`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if attempts < 1 {
				return usage(fmt.Errorf("--attempts %d: want at least 1", attempts))
			}
			rows, ok, err := harness.Selftest(cmd.Context(), o, only, attempts, os.Stderr)
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
	f.Int64Var(&o.Seed, "seed", 1, "seed of each row's first run (later runs of a bug take the next seeds)")
	f.IntVar(&attempts, "attempts", attempts, "most runs per seeded bug; the first invalid verdict ends its search")
	return cmd
}

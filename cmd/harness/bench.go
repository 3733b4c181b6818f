package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftcheck/harness/harness"
)

func newBenchCmd() *cobra.Command {
	bo := harness.BenchOptions{Targets: []string{"agent", "consul"}, Nodes: 3, Clients: 16, Duration: 10 * time.Second, Rounds: 3}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Compare targets' throughput in one run: consistent writes and reads through consul/api",
		Long: `bench starts a cluster of each target (default: the agent and real Consul), then measures
consistent writes (PUT) and consistent reads (?consistent GET) through the official consul/api
client, with --clients clients spread over the nodes, for --duration each, --rounds times,
alternating the targets so both see the same machine load. It prints every measurement and the
medians with the ratio of the first target to the second: compare ratios, not absolute figures,
on a shared machine.`,
		Example: `  harness bench
  harness bench --targets agent,consul@1.19.2 --clients 32 --duration 5s --rounds 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if bo.Clients < 1 || bo.Rounds < 1 || bo.Duration <= 0 || len(bo.Targets) == 0 {
				return usage(fmt.Errorf("--clients, --rounds, --duration and --targets must be positive"))
			}
			dir, err := os.MkdirTemp("", "harness-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			bo.Store = dir
			rs, err := harness.Bench(cmd.Context(), bo, os.Stderr)
			if err != nil {
				return err
			}
			fmt.Print(harness.BenchSummary(rs))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&bo.Targets, "targets", bo.Targets, "targets to compare (the ratio is first / second)")
	f.IntVar(&bo.Nodes, "nodes", bo.Nodes, "servers per cluster")
	f.IntVar(&bo.Clients, "clients", bo.Clients, "concurrent consul/api clients, spread over the nodes")
	f.DurationVar(&bo.Duration, "duration", bo.Duration, "length of each measurement")
	f.IntVar(&bo.Rounds, "rounds", bo.Rounds, "measurements per target and operation")
	return cmd
}

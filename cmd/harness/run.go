package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/harness"
	"github.com/raftcheck/harness/nemesis"
	"github.com/raftcheck/harness/results"
	"github.com/raftcheck/harness/workloads"
)

func newRunCmd() *cobra.Command {
	o := harness.Defaults()
	var nem, junit string
	count := 1
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run one test and exit with its verdict",
		Example: `  harness run --nodes 3                                  # register workload, no faults, 30 s
  harness run --nodes 3 --nemesis partition --time-limit 60s
  harness run --target consul --nemesis partition,kill   # real Consul (built once, cached)
  harness run --target consul@1.19.2 --read-mode stale    # another Consul release
  harness run --nemesis restart --restart-signal INT     # the Consul #993 question
  harness run --nemesis upgrade --upgrade-from consul@1.15.7 --upgrade-to consul@1.16.3 --nemesis-interval 20s --time-limit 60s
                                                          # rolling upgrade of real Consul, then back
  harness run --unsafe local-cas --time-limit 10s         # a seeded bug: must exit 1
  harness run --bootstrap manual --read-mode default`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := nemesis.ParseSpec(nem)
			if err != nil {
				return usage(err)
			}
			o.Nemesis, o.NemesisTogether = spec.Faults, spec.Together
			if count < 1 {
				return usage(fmt.Errorf("--test-count must be at least 1, got %d", count))
			}
			var cases []results.JUnitCase
			var verdicts []checker.Validity
			for i := range count {
				oi := o
				if o.Seed != 0 {
					oi.Seed = o.Seed + int64(i)
				}
				t0 := time.Now()
				out, err := harness.Run(cmd.Context(), oi, os.Stderr)
				if out != nil {
					fmt.Println(harness.DescribeVerdict(out.Results))
					fmt.Printf("run folder: %s\n", out.Dir)
					cases = append(cases, results.NewJUnitCase(fmt.Sprintf("%s #%d", oi.Name, i+1), out.Dir, out.Results, time.Since(t0)))
				}
				if err != nil {
					return err
				}
				verdicts = append(verdicts, out.Results.Valid)
				if cmd.Context().Err() != nil {
					break
				}
			}
			if junit != "" {
				if err := results.WriteJUnit(junit, "harness run", cases); err != nil {
					return err
				}
			}
			return verdictExit(checker.MergeVerdicts(verdicts...))
		},
	}
	f := cmd.Flags()
	targetFlags(f, &o)
	nodesFlag(f, &o)
	serverFlags(f, &o)
	loadFlags(f, &o)
	f.StringVar(&o.Name, "name", "", "test name: the store folder of its runs (default: from workload, nemesis and bugs)")
	f.Int64Var(&o.Seed, "seed", 0, "seed for every random choice (0: pick one and record it)")
	f.StringVar(&o.Workload, "workload", o.Workload, strings.Join(workloads.Names(), " or "))
	f.IntVar(&o.Keys, "keys", o.Keys, "independent register keys")
	f.DurationVar(&o.OpTimeout, "op-timeout", o.OpTimeout, "timeout of one client call (expiry records info)")
	f.StringVar(&o.ReadMode, "read-mode", o.ReadMode, "consistent, default or stale")
	lockFlags(f, &o)
	f.StringVar(&nem, "nemesis", "none", "faults: "+strings.Join(nemesis.Kinds(), ",")+" joined by , (one at a time) or by + (each on its own schedule, at the same time), or all (every kind but upgrade, at the same time), or none")
	f.StringSliceVar(&o.PartitionShapes, "partition-shapes", nil, "partition shapes to draw from: "+strings.Join(nemesis.Shapes, ",")+" (default: all that fit)")
	f.StringVar(&o.RestartSignal, "restart-signal", o.RestartSignal, "signal of the restart fault: KILL, TERM or INT")
	f.BoolVar(&o.RestartRolling, "restart-rolling", false, "restart fault stops nodes one after another (default: all at once)")
	f.StringVar(&o.UpgradeFrom, "upgrade-from", "", "upgrade fault: the Consul release the cluster starts on, consul@X.Y.Z (--target may be left out)")
	f.StringVar(&o.UpgradeTo, "upgrade-to", "", "upgrade fault: the Consul release each roll switches every server to, one at a time, data dir kept; the next roll goes back (swap the two for a downgrade)")
	f.DurationVar(&o.PowerWriteback, "power-writeback", 0, "power fault: unsynced data this old was written back by the kernel and survives (Linux: 30s); 0: only fsync makes data durable")
	f.DurationVar(&o.RecoveryTime, "recovery-time", 0, "time the healed cluster has to elect a leader every node knows (0: the target's default, 10s agent, 90s Consul)")
	f.DurationVar(&o.CheckTimeout, "check-timeout", o.CheckTimeout, "bound on the linearizability check (expiry: unknown)")
	checkFlags(f, &o.Checkers, &o.CheckMemory)
	f.IntVar(&count, "test-count", 1, "run the test this many times (seeds count up from --seed)")
	f.StringVar(&junit, "junit", "", "write JUnit XML (one test case per run) to this file")
	return cmd
}

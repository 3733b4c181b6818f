package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftcheck/harness/harness"
	"github.com/raftcheck/harness/results"
)

func newSoakCmd() *cobra.Command {
	o := harness.Defaults()
	o.TimeLimit = 60 * time.Second
	so := harness.SoakOptions{KeepPassed: -1}
	var matrix, junit, summaryDir string
	cmd := &cobra.Command{
		Use:   "soak",
		Short: "Run test after test with new seeds over a matrix (nightly CI)",
		Long: `soak cycles through a matrix of targets, nemesis sets, workloads, read modes and node counts,
each test with a new seed, until --duration is over. Each cycle runs every configuration once, in an
order drawn from --seed, so a soak shorter than the matrix still draws from all of it. It stops at the first invalid run unless --keep-going,
and writes a summary as text, JSON and (with --junit) JUnit XML. Exit code as Jepsen's test-all:
any crash (255) beats any unknown (2) beats any invalid (1) beats valid (0).`,
		Example: `  harness soak --duration 8h --keep-going --keep-passed 20 --junit soak.xml
  harness soak --duration 30m --matrix 'nemesis=partition|kill;workload=register;nodes=3'
  harness soak --duration 1h --matrix 'target=agent|consul;nemesis=partition|kill;nodes=3'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := harness.ParseMatrix(matrix)
			if err != nil {
				return err
			}
			if so.Duration <= 0 && so.Count <= 0 {
				return usage(fmt.Errorf("give --duration or --count"))
			}
			sum, err := harness.Soak(cmd.Context(), o, m, so, os.Stderr)
			if err != nil {
				return err
			}
			sum.WriteText(os.Stdout)
			if summaryDir == "" {
				summaryDir = filepath.Join(o.Store, "soak-"+sum.Start.UTC().Format("20060102T150405"))
			}
			if err := sum.WriteFiles(summaryDir); err != nil {
				return err
			}
			fmt.Printf("summary: %s\n", summaryDir)
			if junit != "" {
				if err := results.WriteJUnit(junit, "harness soak", soakCases(sum)); err != nil {
					return err
				}
			}
			switch sum.ExitOutcome() {
			case "crashed":
				return exitError{exitHarness}
			case "unknown":
				return exitError{exitUnknown}
			case "invalid":
				return exitError{exitInvalid}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&so.Duration, "duration", 0, "start no new test after this long")
	f.IntVar(&so.Count, "count", 0, "stop after this many tests")
	f.BoolVar(&so.KeepGoing, "keep-going", false, "continue after an invalid run")
	f.IntVar(&so.KeepPassed, "keep-passed", -1, "keep only the newest N passing run folders (-1: all)")
	f.Int64Var(&so.Seed, "seed", 0, "seed of the first test; each next test adds one")
	f.StringVar(&matrix, "matrix", "", "narrow the matrix: 'target=agent|consul;nemesis=partition|kill+pause;workload=register;read-mode=consistent;nodes=3'")
	f.StringVar(&junit, "junit", "", "write JUnit XML to this file")
	targetFlags(f, &o)
	loadFlags(f, &o)
	f.StringVar(&summaryDir, "summary-dir", "", "folder for summary.json and summary.txt (default: <store>/soak-<time>)")
	return cmd
}

func soakCases(sum *harness.SoakSummary) []results.JUnitCase {
	var cs []results.JUnitCase
	for _, r := range sum.Runs {
		cs = append(cs, results.JUnitCase{
			Name: fmt.Sprintf("%s seed %d", r.Name, r.Seed), Dir: r.Dir, Valid: r.Valid,
			Reason: r.Reason, Duration: time.Duration(r.Seconds * float64(time.Second)),
		})
	}
	return cs
}

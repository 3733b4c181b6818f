// Command harness runs Jepsen-style consistency tests against a Docker cluster of a
// Consul-compatible agent. See `harness --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/harness"
)

// Exit codes (DESIGN.md): the verdict, or why there is none.
const (
	exitValid   = 0
	exitInvalid = 1
	exitUnknown = 2
	exitUsage   = 254
	exitHarness = 255
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(execute(ctx, os.Args[1:]))
}

// exitError carries an exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func execute(ctx context.Context, args []string) int {
	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return exitValid
	case errors.As(err, &ee):
		return ee.code
	case harness.IsUsage(err) || isCobraUsage(err):
		fmt.Fprintln(os.Stderr, "harness: "+err.Error())
		fmt.Fprintln(os.Stderr, "Run 'harness --help' for usage.")
		return exitUsage
	default:
		fmt.Fprintln(os.Stderr, "harness: "+err.Error())
		return exitHarness
	}
}

// usage makes err a usage error (exit 254): the one type the harness and its packages use.
func usage(err error) error { return &harness.UsageError{Msg: err.Error()} }

// isCobraUsage recognises cobra's own command errors, which carry no type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.HasPrefix(msg, "invalid argument")
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "harness",
		Short: "Jepsen-style consistency tests for a Consul-compatible Raft cluster",
		Long: `harness starts a Docker cluster of a Consul-compatible agent, drives a workload through the
official consul/api client while a nemesis injects faults, records every operation in
history.jsonl, checks it (linearizability with porcupine, set, liveness, stats) and writes a
run folder with results.json and report.html.

Exit codes: 0 valid, 1 invalid, 2 unknown, 254 bad usage, 255 harness error.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usage(err) })
	root.AddCommand(newRunCmd(), newCheckCmd(), newReportCmd(), newClusterCmd(), newCleanCmd(),
		newSelftestCmd(), newSoakCmd(), newServeCmd(), newBuildCmd(), newBenchCmd())
	return root
}

// verdictExit maps a merged verdict to the process exit code.
func verdictExit(v checker.Validity) error {
	switch v {
	case checker.Valid:
		return nil
	case checker.Invalid:
		return exitError{exitInvalid}
	default:
		return exitError{exitUnknown}
	}
}

// exactArgs is cobra.ExactArgs with a usage-class error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usage(err)
		}
		return nil
	}
}

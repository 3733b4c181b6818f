package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/raftcheck/harness/harness"
	"github.com/raftcheck/harness/targets"
	"github.com/raftcheck/harness/workloads"
)

// The flags shared by the commands that start clusters are declared here, once, so their names
// and help texts cannot drift apart. Defaults are o's values when the function is called.

// targetFlags: what the cluster runs (run, soak, cluster up).
func targetFlags(f *pflag.FlagSet, o *harness.Options) {
	f.StringVar(&o.Target, "target", "", "what the cluster runs: agent (default), consul (real Consul v"+targets.DefaultConsulVersion+
		", built from its Go module and cached), consul@X.Y.Z")
	f.StringVar(&o.AgentBinary, "agent-binary", "", "run this static Linux binary (Consul's agent command line) instead of the target's build")
	f.StringVar(&o.AgentImage, "agent-image", "", "run this image from the local engine (Consul's agent command line) instead of the target's build")
}

// nodesFlag: the cluster size (run, selftest, cluster up; a soak's sizes are in its matrix).
func nodesFlag(f *pflag.FlagSet, o *harness.Options) {
	f.IntVar(&o.Nodes, "nodes", o.Nodes, "number of servers")
}

// serverFlags: how the servers are started (run, cluster up).
func serverFlags(f *pflag.FlagSet, o *harness.Options) {
	f.StringVar(&o.Bootstrap, "bootstrap", o.Bootstrap, "how the servers form a cluster: "+strings.Join(targets.BootstrapModes, ", ")+
		" (expect: -bootstrap-expect=N; single: n1 -bootstrap; manual: the agent's bootstrap endpoint)")
	f.StringSliceVar(&o.Unsafe, "unsafe", nil, "seeded bug(s) passed to every agent as -unsafe (agent target only; see `agent -h`)")
	f.StringArrayVar(&o.AgentArgs, "agent-arg", nil, "extra flag for every server, after the target's own (repeatable)")
	f.DurationVar(&o.ReadyTimeout, "ready-timeout", 0, "bound on cluster formation (0: the target's default, 30s agent, 60s Consul)")
}

// loadFlags: how long and how hard each test drives the cluster, and where runs are kept (run,
// soak, selftest).
func loadFlags(f *pflag.FlagSet, o *harness.Options) {
	f.DurationVar(&o.TimeLimit, "time-limit", o.TimeLimit, "how long the workload and the nemesis run, per test")
	f.DurationVar(&o.NemesisInterval, "nemesis-interval", o.NemesisInterval, "time between faults and each fault's length")
	f.StringVar(&o.Store, "store", o.Store, "folder that holds run folders")
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "client workers, spread across nodes")
	f.Float64Var(&o.Rate, "rate", o.Rate, "target total operations per second (0: as fast as the cluster answers)")
}

// lockFlags: the lock workload's shape (run).
func lockFlags(f *pflag.FlagSet, o *harness.Options) {
	f.Float64Var(&o.LockStall, "lock-stall", o.LockStall, "lock workload: share of holdings (0-1) that never renew and hold 12-60 s, so that their sessions expire")
	f.Float64Var(&o.LockAbandon, "lock-abandon", o.LockAbandon, "lock workload: share of holders (0-1) that destroy their session without releasing (Consul applies the lock-delay)")
	f.StringVar(&o.LockSessions, "lock-sessions", o.LockSessions, "lock workload: sessions with the node's serfHealth check: "+strings.Join(workloads.LockSessionKinds, ", ")+" (mixed: half TTL-only, ttl: all TTL-only)")
}

// checkFlags: how a history is judged (run, check).
func checkFlags(f *pflag.FlagSet, checkers *[]string, memory *int64) {
	f.StringSliceVar(checkers, "checker", nil, "run only these checkers: comma list of "+strings.Join(harness.CheckerNames(), ",")+" (default: all of the workload's)")
	f.Var((*byteSize)(memory), "checker-memory", "bound on the linearizability search's Go heap, e.g. 2GiB, 512MiB, 0 for none (past it: unknown)")
}

// byteSize is a flag value in bytes written with a unit: 512MiB, 2GiB, 1.5G, 100000000.
type byteSize int64

func (b *byteSize) String() string {
	switch v := int64(*b); {
	case v <= 0:
		return "0"
	case v%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", v>>30)
	case v%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", v>>20)
	default:
		return strconv.FormatInt(v, 10)
	}
}

func (b *byteSize) Type() string { return "size" }

func (b *byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	num, mult := strings.TrimSpace(s), 1.0
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(num), strings.ToUpper(u.suffix)) {
			num, mult = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("want a size such as 512MiB or 2GiB, got %q", s)
	}
	if v == 0 {
		*b = -1 // no limit
		return nil
	}
	*b = byteSize(v * mult)
	return nil
}

package main

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/raftcheck/harness/harness"
	"github.com/raftcheck/harness/targets"
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

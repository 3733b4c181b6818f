package main

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/raftcheck/harness/harness"
	"github.com/raftcheck/harness/targets"
)

// targetFlags declares, once for every command that starts a cluster, the flags that choose
// what it runs and how its servers are started.
func targetFlags(f *pflag.FlagSet, o *harness.Options) {
	f.StringVar(&o.Target, "target", "", "what the cluster runs: agent (default), consul (real Consul v"+targets.DefaultConsulVersion+
		", built from its Go module and cached), consul@X.Y.Z")
	f.StringVar(&o.AgentBinary, "agent-binary", "", "run this static Linux binary (Consul's agent command line) instead of the target's build")
	f.StringVar(&o.AgentImage, "agent-image", "", "run this image from the local engine (Consul's agent command line) instead of the target's build")
	f.IntVar(&o.Nodes, "nodes", o.Nodes, "number of servers")
	f.StringVar(&o.Bootstrap, "bootstrap", o.Bootstrap, "how the servers form a cluster: "+strings.Join(targets.BootstrapModes, ", ")+
		" (expect: -bootstrap-expect=N; single: n1 -bootstrap; manual: the agent's bootstrap endpoint)")
	f.StringSliceVar(&o.Unsafe, "unsafe", nil, "seeded bug(s) passed to every agent as -unsafe (agent target only; see `agent -h`)")
	f.StringArrayVar(&o.AgentArgs, "agent-arg", nil, "extra flag for every server, after the target's own (repeatable)")
	f.DurationVar(&o.ReadyTimeout, "ready-timeout", 0, "bound on cluster formation (0: the target's default, 30s agent, 60s Consul)")
}

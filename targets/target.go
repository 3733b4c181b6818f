// Package targets says what a test runs: the project's own agent (built from ./cmd/agent), real
// Consul (built from its Go module at a pinned or chosen release and cached per version), or a
// user's Consul-compatible binary or local image. For each it gives the image every node runs and
// the node's command line, including the timing flags that make the target testable in seconds.
package targets

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Kinds of target.
const (
	Agent  = "agent"  // the project's agent, built from ./cmd/agent
	Consul = "consul" // real Consul, built from github.com/hashicorp/consul at Version
	Custom = "custom" // a user's binary or image taking Consul's agent command line, timing untouched
)

// DefaultConsulVersion is the Consul release `--target consul` runs: the newest release under an
// open-source licence (MPL-2.0) that the Go module proxy serves. Every later release, and patch
// releases of older lines made after HashiCorp's licence change of August 2023 (1.15.10 is one),
// are under the Business Source License 1.1: built only when a user names one, and then the
// build says so (the licence is read from the module's own LICENSE, not from its number).
const DefaultConsulVersion = "1.16.3"

// Bootstrap modes: how the servers form a cluster.
const (
	BootstrapExpect = "expect" // -bootstrap-expect=N on every server
	BootstrapSingle = "single" // -bootstrap on n1, the others join it
	BootstrapManual = "manual" // no flag; the harness bootstraps explicitly (the agent's own API)
)

// BootstrapModes lists the modes in the order the CLI names them.
var BootstrapModes = []string{BootstrapExpect, BootstrapSingle, BootstrapManual}

// UsageError is an error in what the user asked for (a bad target spec, a version that does not
// exist, an option the target cannot do); the CLI exits 254 on it.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// IsUsage reports whether err is (or wraps) a UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// Target is what a test runs.
type Target struct {
	Kind    string `json:"kind"`
	Version string `json:"version,omitempty"` // Consul release, e.g. "1.16.3"; "" for the others
}

// semver is the form of a release: X.Y.Z with an optional pre-release suffix (1.21.0-rc1).
var semver = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$`)

// Parse reads a --target spec: "agent" (also ""), "consul" (DefaultConsulVersion) or
// "consul@X.Y.Z". "custom" is what a run with only --agent-binary or --agent-image is.
func Parse(spec string) (Target, error) {
	name, version, hasVersion := strings.Cut(strings.TrimSpace(spec), "@")
	switch name {
	case "", Agent, Custom:
		if hasVersion {
			return Target{}, usagef("--target %s takes no version (got %q)", name, spec)
		}
		if name == "" {
			name = Agent
		}
		return Target{Kind: name}, nil
	case Consul:
		version = strings.TrimPrefix(version, "v")
		if !hasVersion {
			version = DefaultConsulVersion
		}
		if !semver.MatchString(version) {
			return Target{}, usagef("--target %q: want consul@X.Y.Z (a Consul release, e.g. consul@%s)", spec, DefaultConsulVersion)
		}
		return Target{Kind: Consul, Version: version}, nil
	}
	return Target{}, usagef("unknown --target %q (valid: agent, consul, consul@X.Y.Z)", spec)
}

// String is the spec Parse reads back: "agent", "consul@1.16.3", "custom".
func (t Target) String() string {
	if t.Version != "" {
		return t.Kind + "@" + t.Version
	}
	if t.Kind == "" {
		return Agent
	}
	return t.Kind
}

// Check refuses options the target cannot run: seeded bugs exist only in the project's agent,
// and manual bootstrap uses the agent's own bootstrap endpoint (Consul has none).
func (t Target) Check(bootstrap string, unsafe []string) error {
	if len(unsafe) > 0 && t.Kind != Agent {
		return usagef("--unsafe %s: seeded bugs exist only in the project's agent, not in target %s", strings.Join(unsafe, ","), t)
	}
	if !slices.Contains(BootstrapModes, bootstrap) {
		return usagef("--bootstrap must be %s, got %q", strings.Join(BootstrapModes, ", "), bootstrap)
	}
	if bootstrap == BootstrapManual && t.Kind != Agent {
		return usagef("--bootstrap manual needs the agent's bootstrap endpoint (PUT /v1/operator/raft/bootstrap); target %s has none: use expect or single", t)
	}
	return nil
}

// Node ports and paths every target uses (Consul's defaults).
const (
	HTTPPort   = 8500
	ServerPort = 8300
	DataDir    = "/data"
)

// ClusterSpec is what a node's command line depends on.
type ClusterSpec struct {
	Bootstrap string       // a Bootstrap mode
	IPs       []netip.Addr // every server's address, n1 first
	Unsafe    []string     // seeded bugs (agent only)
	Extra     []string     // the user's extra flags, last so they win
}

// NodeName is the name of node i (0-based): n1, n2, …
func NodeName(i int) string { return fmt.Sprintf("n%d", i+1) }

// Args is node i's command line after the image's entrypoint: Consul's agent flags, common to
// every target, then the target's timing flags, then the seeded bugs and the user's flags.
func (t Target) Args(c ClusterSpec, i int) []string {
	ip := c.IPs[i].String()
	args := []string{"agent", "-server",
		"-node=" + NodeName(i), "-bind=" + ip, "-client=0.0.0.0",
		"-data-dir=" + DataDir,
	}
	switch c.Bootstrap {
	case BootstrapExpect:
		args = append(args, fmt.Sprintf("-bootstrap-expect=%d", len(c.IPs)))
	case BootstrapSingle:
		if i == 0 {
			args = append(args, "-bootstrap")
		}
	}
	for j, other := range c.IPs {
		if j != i {
			args = append(args, "-retry-join="+other.String())
		}
	}
	args = append(args, t.timingFlags()...)
	if len(c.Unsafe) > 0 {
		args = append(args, "-unsafe="+strings.Join(c.Unsafe, ","))
	}
	return append(args, c.Extra...)
}

// agentFlags make the project's agent fast to test: elections in a few hundred milliseconds.
var agentFlags = []string{
	"-raft-heartbeat-timeout=300ms",
	"-raft-election-timeout=300ms",
	"-raft-leader-lease-timeout=150ms",
	"-retry-interval=500ms",
	"-gossip-profile=local",
}

// consulFlags make real Consul testable in seconds without changing what it promises:
// raft_multiplier 1 is Consul's own fastest documented Raft timing (1 s heartbeat and election
// timeouts, 500 ms lease); joins are retried every second; autopilot promotes a new server after
// 2 s of stability instead of 10 s; DNS, gRPC and WAN listeners, which no test uses, are off; and
// the update check, which would reach for a host outside the test network, is disabled.
var consulFlags = []string{
	"-retry-interval=1s",
	"-dns-port=-1",
	"-grpc-port=-1",
	"-serf-wan-port=-1",
	"-log-level=debug",
	"-hcl=performance { raft_multiplier = 1 }",
	"-hcl=ports { grpc_tls = -1 }",
	`-hcl=autopilot { server_stabilization_time = "2s" }`,
	"-hcl=disable_update_check = true",
}

func (t Target) timingFlags() []string {
	switch t.Kind {
	case Agent:
		return agentFlags
	case Consul:
		return consulFlags
	}
	return nil
}

// Timing is how long the harness waits for a target by default: its election times set how
// fast it can form and recover.
type Timing struct {
	Ready    time.Duration // cluster formation
	Recovery time.Duration // heal → one leader known to every node
}

// Timing returns the target's default waits.
func (t Target) Timing() Timing {
	switch t.Kind {
	case Agent:
		return Timing{Ready: 30 * time.Second, Recovery: 10 * time.Second}
	}
	// Consul's election timeout is 1 s at best, a restarted server first rejoins gossip, and
	// autopilot waits for stability before it promotes a server. After packet loss, autopilot may
	// have removed a live server it saw as failed (cleanup_dead_servers): that server comes back
	// only once gossip's push/pull (every 30 s on the LAN) has resurrected it, 40 s after the heal
	// in docs/findings/autopilot-loss. 90 s covers two push/pull rounds.
	return Timing{Ready: 60 * time.Second, Recovery: 90 * time.Second}
}

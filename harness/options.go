// Package harness runs one test: it builds the agent image, starts a Docker cluster, drives the
// workload while the nemesis injects faults, heals, checks the history and writes the run folder.
// The phases of Run read top-down in run.go.
package harness

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/nemesis"
	"github.com/raftcheck/harness/results"
	"github.com/raftcheck/harness/targets"
	"github.com/raftcheck/harness/workloads"
)

// Options are everything that defines a test. They are written to test.json as given.
type Options struct {
	// Name of the test: the store folder under which its runs are kept.
	Name string `json:"name"`
	// Nodes in the cluster (1–9). Servers are named n1…nN.
	Nodes int `json:"nodes"`
	// TimeLimit is how long the workload (and the nemesis) run.
	TimeLimit time.Duration `json:"time_limit"`
	// Seed drives every random choice of the workload and the nemesis.
	Seed int64 `json:"seed"`
	// Store is the folder that holds run folders.
	Store string `json:"store"`

	// Workload is register or set.
	Workload string `json:"workload"`
	// Keys is the number of independent register keys.
	Keys int `json:"keys"`
	// Concurrency is the number of client workers, spread across nodes.
	Concurrency int `json:"concurrency"`
	// Rate is the target total operations per second (0: as fast as the cluster answers).
	Rate float64 `json:"rate"`
	// OpTimeout bounds one client call; expiry records the op as info.
	OpTimeout time.Duration `json:"op_timeout"`
	// ReadMode is consistent, default or stale: how register reads query the KV store.
	ReadMode string `json:"read_mode"`
	// LockStall, LockAbandon and LockSessions are the lock workload's shape (workloads.LockShape):
	// the share of holdings that stall, the share of holders that destroy their session without
	// releasing, and which sessions carry the node's serfHealth check (mixed, node, ttl).
	LockStall    float64 `json:"lock_stall"`
	LockAbandon  float64 `json:"lock_abandon"`
	LockSessions string  `json:"lock_sessions"`

	// Target is what the cluster runs: agent (the project's), consul (real Consul at the pinned
	// release), consul@X.Y.Z, or custom (--agent-binary/--agent-image with Consul's command line
	// and no timing flags). Empty: custom when a binary or image is given, else agent.
	Target string `json:"target"`
	// Bootstrap is how the cluster forms: expect (-bootstrap-expect=N everywhere),
	// single (n1 with -bootstrap, others join) or manual (no flag, then an explicit bootstrap).
	Bootstrap string `json:"bootstrap"`
	// AgentBinary is a static Linux binary taking Consul's agent command line, run instead of
	// the target's own build.
	AgentBinary string `json:"agent_binary,omitempty"`
	// AgentImage is an image in the local engine run instead of the target's own build.
	AgentImage string `json:"agent_image,omitempty"`
	// Unsafe lists seeded bugs passed to every node as the agent's -unsafe flag.
	Unsafe []string `json:"unsafe,omitempty"`
	// AgentArgs are extra agent flags appended to every node's command line.
	AgentArgs []string `json:"agent_args,omitempty"`

	// Nemesis lists the fault kinds (empty: none).
	Nemesis []string `json:"nemesis"`
	// NemesisTogether runs every kind of Nemesis on its own schedule at the same time, so that
	// faults overlap (--nemesis a+b, all); default: one fault at a time.
	NemesisTogether bool `json:"nemesis_together,omitempty"`
	// PowerWriteback lets the power fault's filesystem write unsynced data back after this age,
	// as Linux does (30s), with entries committed every 5 s; 0: only an fsync makes data durable.
	PowerWriteback time.Duration `json:"power_writeback,omitempty"`
	// PartitionShapes restricts the partition fault to these grudge shapes (empty: all that fit).
	PartitionShapes []string `json:"partition_shapes,omitempty"`
	// NemesisInterval is the time between faults and each fault's duration.
	NemesisInterval time.Duration `json:"nemesis_interval"`
	// RestartSignal is the signal the restart fault stops every node with: KILL, TERM or INT.
	RestartSignal string `json:"restart_signal"`
	// RestartRolling stops the nodes one after another in the restart fault (default: all at once).
	RestartRolling bool `json:"restart_rolling,omitempty"`
	// UpgradeFrom and UpgradeTo are the two releases of the upgrade fault (--nemesis upgrade),
	// consul@X.Y.Z each: the cluster starts on UpgradeFrom (Target is UpgradeFrom or empty), and
	// every roll switches each server to the other release, A→B, then B→A, and so on.
	UpgradeFrom string `json:"upgrade_from,omitempty"`
	UpgradeTo   string `json:"upgrade_to,omitempty"`
	// RecoveryTime is how long the healed cluster has to elect a leader known to every node
	// (0: the target's default).
	RecoveryTime time.Duration `json:"recovery_time"`

	// CheckTimeout bounds the linearizability check; expiry gives "unknown", never valid.
	CheckTimeout time.Duration `json:"check_timeout"`
	// CheckMemory bounds the Go heap of the linearizability search, in bytes; past it the keys
	// not yet decided are "unknown" (negative: no limit).
	CheckMemory int64 `json:"checker_memory,omitempty"`
	// Checkers restricts the checkers to these names (empty: all of the workload's).
	Checkers []string `json:"checker,omitempty"`
	// ReadyTimeout bounds cluster formation (0: the target's default).
	ReadyTimeout time.Duration `json:"ready_timeout"`
}

// Defaults returns the options of `harness run` with no flags.
func Defaults() Options {
	o := Options{
		Name:            "",
		Nodes:           3,
		TimeLimit:       30 * time.Second,
		Store:           "store",
		Workload:        "register",
		Keys:            8,
		Concurrency:     6,
		Rate:            200,
		OpTimeout:       2 * time.Second,
		ReadMode:        "consistent",
		Bootstrap:       targets.BootstrapExpect,
		NemesisInterval: 5 * time.Second,
		RestartSignal:   "KILL",
		CheckTimeout:    60 * time.Second,
		CheckMemory:     checker.DefaultMemoryLimit,
	}
	o.setLockShape(workloads.DefaultLockShape())
	return o
}

// UsageError is a bad option value: the CLI exits 254 with its message.
type UsageError = targets.UsageError

func usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// IsUsage reports whether err is (or wraps) a UsageError.
func IsUsage(err error) bool { return targets.IsUsage(err) }

// Validate checks every option and names the first bad one.
func (o *Options) Validate() error {
	switch {
	case o.Nodes < 1 || o.Nodes > 9:
		return usagef("--nodes must be between 1 and 9, got %d", o.Nodes)
	case o.TimeLimit <= 0:
		return usagef("--time-limit must be positive, got %s", o.TimeLimit)
	case o.Keys < 1:
		return usagef("--keys must be at least 1, got %d", o.Keys)
	case o.Concurrency < 1:
		return usagef("--concurrency must be at least 1, got %d", o.Concurrency)
	case o.Rate < 0:
		return usagef("--rate must not be negative, got %g", o.Rate)
	case o.OpTimeout <= 0:
		return usagef("--op-timeout must be positive, got %s", o.OpTimeout)
	case o.CheckTimeout <= 0:
		return usagef("--check-timeout must be positive, got %s", o.CheckTimeout)
	case o.RecoveryTime < 0:
		return usagef("--recovery-time must not be negative, got %s", o.RecoveryTime)
	case o.NemesisInterval <= 0:
		return usagef("--nemesis-interval must be positive, got %s", o.NemesisInterval)
	case o.ReadyTimeout < 0:
		return usagef("--ready-timeout must not be negative, got %s", o.ReadyTimeout)
	}
	if !slices.Contains([]string{"consistent", "default", "stale"}, o.ReadMode) {
		return usagef("--read-mode must be consistent, default or stale, got %q", o.ReadMode)
	}
	if err := o.LockShape().Validate(); err != nil {
		return usagef("--lock-stall, --lock-abandon, --lock-sessions: %v", err)
	}
	if err := o.validateUpgrade(); err != nil {
		return err
	}
	t, err := o.target()
	if err != nil {
		return err
	}
	if err := t.Check(o.Bootstrap, o.Unsafe); err != nil {
		return err
	}
	if err := (targets.Source{Binary: o.AgentBinary, Image: o.AgentImage}).Check(); err != nil {
		return err
	}
	o.Target = t.String()
	timing := t.Timing()
	if o.RecoveryTime == 0 {
		o.RecoveryTime = timing.Recovery
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = timing.Ready
	}
	if !slices.Contains(workloads.Names(), o.Workload) {
		return usagef("--workload must be %s, got %q", strings.Join(workloads.Names(), " or "), o.Workload)
	}
	for _, c := range o.Checkers {
		if !slices.Contains(CheckerNames(), c) {
			return usagef("unknown --checker %q (valid: %s)", c, strings.Join(CheckerNames(), ", "))
		}
	}
	sig := strings.TrimPrefix(strings.ToUpper(o.RestartSignal), "SIG")
	if !slices.Contains([]string{"KILL", "TERM", "INT"}, sig) {
		return usagef("--restart-signal must be KILL, TERM or INT, got %q", o.RestartSignal)
	}
	o.RestartSignal = sig
	for _, u := range o.Unsafe {
		if u == "" || strings.ContainsAny(u, ", =") {
			return usagef("--unsafe: bad bug name %q", u)
		}
	}
	if o.Name == "" {
		o.Name = o.DefaultName()
	}
	if err := results.ValidTestName(o.Name); err != nil {
		return usagef("--name: %v", err)
	}
	return nil
}

// validateUpgrade checks the upgrade fault's releases and sets Target to the release the
// cluster starts on. Only Consul releases can be switched: the agent has one build, this
// checkout's, and a user's binary or image is one release.
func (o *Options) validateUpgrade() error {
	if !slices.Contains(o.Nemesis, nemesis.FaultUpgrade) {
		if o.UpgradeFrom != "" || o.UpgradeTo != "" {
			return usagef("--upgrade-from and --upgrade-to are for --nemesis upgrade, which this run does not have")
		}
		return nil
	}
	if o.UpgradeFrom == "" || o.UpgradeTo == "" {
		return usagef("--nemesis upgrade needs --upgrade-from and --upgrade-to, two Consul releases (e.g. --upgrade-from consul@1.15.7 --upgrade-to consul@%s)", targets.DefaultConsulVersion)
	}
	if o.AgentBinary != "" || o.AgentImage != "" {
		return usagef("--nemesis upgrade switches between the releases it builds; it cannot run --agent-binary or --agent-image")
	}
	var rel [2]targets.Target
	for i, spec := range []string{o.UpgradeFrom, o.UpgradeTo} {
		flag := [2]string{"--upgrade-from", "--upgrade-to"}[i]
		t, err := targets.Parse(spec)
		if err != nil {
			return usagef("%s: %v", flag, err)
		}
		if t.Kind != targets.Consul {
			return usagef("%s %s: the upgrade fault switches between Consul releases (consul@X.Y.Z); the agent has one build, this checkout's", flag, spec)
		}
		rel[i] = t
	}
	if rel[0] == rel[1] {
		return usagef("--upgrade-from and --upgrade-to are both %s: an upgrade needs two releases", rel[0])
	}
	o.UpgradeFrom, o.UpgradeTo = rel[0].String(), rel[1].String()
	if o.Target == "" {
		o.Target = o.UpgradeFrom
		return nil
	}
	if t, err := targets.Parse(o.Target); err != nil || t != rel[0] {
		return usagef("--target %s conflicts with --upgrade-from %s: with --nemesis upgrade the cluster starts on the --upgrade-from release (leave --target out)", o.Target, o.UpgradeFrom)
	}
	return nil
}

// LockShape is the lock workload's shape from LockStall, LockAbandon and LockSessions.
func (o *Options) LockShape() workloads.LockShape {
	return workloads.LockShape{Stall: o.LockStall, Abandon: o.LockAbandon, Sessions: o.LockSessions}
}

// setLockShape sets LockStall, LockAbandon and LockSessions from s.
func (o *Options) setLockShape(s workloads.LockShape) {
	o.LockStall, o.LockAbandon, o.LockSessions = s.Stall, s.Abandon, s.Sessions
}

// target is the parsed Target option (custom when only a binary or image is given).
func (o *Options) target() (targets.Target, error) {
	spec := o.Target
	if spec == "" && (o.AgentBinary != "" || o.AgentImage != "") {
		spec = targets.Custom
	}
	return targets.Parse(spec)
}

// DefaultName names a test after its target (when not the agent), workload, nemesis and seeded
// bugs, e.g. "register-partition-local-cas" or "consul-register-partition".
func (o *Options) DefaultName() string {
	var parts []string
	if t, err := o.target(); err == nil && t.Kind != targets.Agent {
		parts = append(parts, t.Kind)
	}
	parts = append(parts, o.Workload)
	if len(o.Nemesis) == 0 {
		parts = append(parts, "none")
	} else if o.NemesisTogether {
		parts = append(parts, strings.Join(o.Nemesis, "_with_"))
	} else {
		parts = append(parts, strings.Join(o.Nemesis, "+"))
	}
	parts = append(parts, o.Unsafe...)
	return strings.ReplaceAll(strings.Join(parts, "-"), "+", "_")
}

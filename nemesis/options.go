package nemesis

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Fault kinds, as named on the command line (--nemesis) and in history events.
const (
	FaultPartition  = "partition"  // cut links by a grudge shape (Shapes)
	FaultKill       = "kill"       // SIGKILL one node, the leader or a minority; start them at the end
	FaultPause      = "pause"      // SIGSTOP one node or the leader; resume at the end
	FaultRestart    = "restart"    // stop every node at once with RestartSignal; start all at the end
	FaultMembership = "membership" // remove a follower from the Raft configuration and rejoin it at the end; or have a follower leave gracefully (agent leave: it shuts down) and start it again at the end; or replace a follower by a fresh server (empty data, new node id) at the same address
	FaultLoss       = "loss"       // random packet loss on every link between nodes
	FaultPower      = "power"      // power loss of one node, a minority or all: SIGKILL, then every change its data dir did not make durable is lost; start them at the end
	FaultUpgrade    = "upgrade"    // a rolling switch of every server to the other release (Options.UpgradeFrom/UpgradeTo), one at a time, data dir kept; the window is the roll
)

// Faults lists every fault kind in the order "all" expands to. The upgrade fault is not among
// them: it needs two releases (Options.UpgradeFrom, UpgradeTo), so it must be named.
var Faults = []string{FaultPartition, FaultKill, FaultPause, FaultRestart, FaultMembership, FaultLoss, FaultPower}

// named lists the fault kinds a spec must name: "all" leaves them out.
var named = []string{FaultUpgrade}

// targets are the target specs each fault draws from: shapes for partitions, node choices
// for the others.
var targets = map[string][]string{
	FaultPartition:  Shapes,
	FaultKill:       {"one", "leader", "minority"},
	FaultPause:      {"one", "leader"},
	FaultRestart:    {"all"},
	FaultMembership: {"follower", "replace-follower", "leave-follower"},
	FaultLoss:       {"all"},
	FaultPower:      {"one", "minority", "all"},
	FaultUpgrade:    {UpgradeLeaderLast, UpgradeLeaderFirst},
}

// Spec is a parsed --nemesis.
type Spec struct {
	// Faults are the fault kinds, in the canonical order of Faults.
	Faults []string
	// Together runs every kind on its own schedule at the same time ("a+b", "all"), instead of
	// one schedule that draws a kind per step ("a,b").
	Together bool
}

// ParseSpec reads a --nemesis spec: kinds joined by "," (one schedule draws a kind per step:
// one fault at a time), or by "+" (each kind on its own seeded schedule, all at the same time:
// faults overlap); "all" is every kind of Faults at the same time (upgrade must be named:
// "all+upgrade"), "none" (or "") no fault.
func ParseSpec(spec string) (Spec, error) {
	if strings.Contains(spec, "+") && strings.Contains(spec, ",") {
		return Spec{}, fmt.Errorf("nemesis spec %q mixes \",\" (one fault at a time) and \"+\" (faults at the same time): use one of them", spec)
	}
	kinds, err := Parse(strings.ReplaceAll(spec, "+", ","))
	if err != nil {
		return Spec{}, err
	}
	together := strings.Contains(spec, "+")
	for _, name := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == '+' }) {
		together = together || strings.TrimSpace(name) == "all"
	}
	return Spec{Faults: kinds, Together: together && len(kinds) > 1}, nil
}

// String writes s back as a spec: kinds joined by "+" when Together, else by ",".
func (s Spec) String() string {
	if len(s.Faults) == 0 {
		return "none"
	}
	if s.Together {
		return strings.Join(s.Faults, "+")
	}
	return strings.Join(s.Faults, ",")
}

// Parse reads the fault kinds of a --nemesis spec: a comma-separated list of fault kinds, "all"
// (every kind of Faults) or "none" ("" is none). The result is in the canonical order of Kinds,
// without duplicates. Whether they overlap is ParseSpec's business.
func Parse(spec string) ([]string, error) {
	want := map[string]bool{}
	none := false
	for _, name := range strings.Split(spec, ",") {
		switch name = strings.TrimSpace(name); {
		case name == "":
		case name == "none":
			none = true
		case name == "all":
			for _, f := range Faults {
				want[f] = true
			}
		case slices.Contains(Kinds(), name):
			want[name] = true
		default:
			return nil, fmt.Errorf("unknown nemesis %q (valid: %s, all, none)", name, strings.Join(Kinds(), ", "))
		}
	}
	if none && len(want) > 0 {
		return nil, fmt.Errorf("nemesis spec %q combines none with faults", spec)
	}
	var out []string
	for _, f := range Kinds() {
		if want[f] {
			out = append(out, f)
		}
	}
	return out, nil
}

// Options configure a Nemesis. Zero values take the defaults named on each field.
type Options struct {
	// Faults are the fault kinds to draw from (see Parse); empty means no faults.
	Faults []string
	// Together gives every kind in Faults its own schedule, all running at the same time, so that
	// faults overlap (--nemesis a+b, all). Each kind's schedule is seeded from Seed and the kind;
	// the k kinds start Interval·i/k apart. Default: one schedule, one fault at a time.
	Together bool
	// Interval is both the quiet time before each fault and how long the fault lasts.
	// Default 10s: long enough for an election (Consul's default timings are seconds).
	Interval time.Duration
	// Seed determines every choice: fault, target, nodes, loss rate. Same seed, same schedule.
	Seed int64
	// RestartSignal is the signal the restart fault stops every node with: KILL, TERM or INT
	// (a leading SIG is accepted). Default TERM, as `docker stop`. INT with a graceful-leave
	// agent is the hashicorp/consul#993 scenario.
	RestartSignal string
	// RestartRolling makes the restart fault stop the nodes one after another, each after the
	// previous one exited, instead of all at once. With graceful leaves this is an orderly
	// shutdown (the configuration shrinks 3→2→1 and the last server keeps itself), the case a
	// correct agent always recovers from.
	RestartRolling bool
	// StopTimeout is how long a restart waits for nodes to exit before killing them. Default 10s.
	StopTimeout time.Duration
	// Shapes are the partition shapes to draw from. Default: every shape the cluster is big
	// enough for.
	Shapes []string
	// LossMin and LossMax bound the packet loss percentage of the loss fault. Default 20–40.
	LossMin, LossMax int
	// UpgradeFrom and UpgradeTo name the two releases the upgrade fault rolls the servers between,
	// as Cluster.SwitchRelease knows them (the harness passes "consul@1.15.7" and
	// "consul@1.16.3"). The cluster starts on UpgradeFrom; the first roll goes to UpgradeTo, the
	// next back, and so on. Both are required with the upgrade fault, and must differ.
	UpgradeFrom, UpgradeTo string
	// RejoinTimeout bounds how long the upgrade fault waits for a switched server to rejoin
	// (Cluster.Rejoined) before it gives up the roll. Default 60s.
	RejoinTimeout time.Duration
}

// withDefaults validates o for a cluster of n nodes and fills in the defaults.
func (o Options) withDefaults(n int) (Options, error) {
	var errs []error
	for _, f := range o.Faults {
		if !slices.Contains(Kinds(), f) {
			errs = append(errs, fmt.Errorf("Faults: unknown fault %q (valid: %s)", f, strings.Join(Kinds(), ", ")))
		}
		if n < 2 && (f == FaultPartition || f == FaultLoss || f == FaultMembership) {
			errs = append(errs, fmt.Errorf("Faults: %s needs at least 2 nodes, the cluster has %d", f, n))
		}
	}
	if slices.Contains(o.Faults, FaultUpgrade) {
		switch {
		case o.UpgradeFrom == "" || o.UpgradeTo == "":
			errs = append(errs, errors.New("UpgradeFrom and UpgradeTo: the upgrade fault needs both releases"))
		case o.UpgradeFrom == o.UpgradeTo:
			errs = append(errs, fmt.Errorf("UpgradeFrom and UpgradeTo are both %q: an upgrade needs two releases", o.UpgradeFrom))
		}
	}
	if o.Interval < 0 || o.StopTimeout < 0 || o.RejoinTimeout < 0 {
		errs = append(errs, errors.New("Interval, StopTimeout and RejoinTimeout must not be negative"))
	}
	if o.RejoinTimeout == 0 {
		o.RejoinTimeout = 60 * time.Second
	}
	if o.Interval == 0 {
		o.Interval = 10 * time.Second
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 10 * time.Second
	}
	sig := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(o.RestartSignal)), "SIG")
	switch sig {
	case "":
		sig = "TERM"
	case "KILL", "TERM", "INT":
	default:
		errs = append(errs, fmt.Errorf("RestartSignal %q is not one of KILL, TERM, INT", o.RestartSignal))
	}
	o.RestartSignal = sig
	if len(o.Shapes) == 0 {
		for _, s := range Shapes {
			if n >= minNodes[s] {
				o.Shapes = append(o.Shapes, s)
			}
		}
	}
	for _, s := range o.Shapes {
		if !slices.Contains(Shapes, s) {
			errs = append(errs, fmt.Errorf("Shapes: unknown partition shape %q (valid: %s)", s, strings.Join(Shapes, ", ")))
		} else if n < minNodes[s] {
			errs = append(errs, fmt.Errorf("Shapes: %s needs at least %d nodes, the cluster has %d", s, minNodes[s], n))
		}
	}
	if o.LossMin == 0 && o.LossMax == 0 {
		o.LossMin, o.LossMax = 20, 40
	}
	if o.LossMin < 0 || o.LossMax > 100 || o.LossMin > o.LossMax {
		errs = append(errs, fmt.Errorf("LossMin %d and LossMax %d must satisfy 0 <= LossMin <= LossMax <= 100", o.LossMin, o.LossMax))
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("nemesis options: %w", err)
	}
	return o, nil
}

// Kinds returns the fault kinds a --nemesis spec may name, besides all and none: Faults, then the
// kinds "all" leaves out.
func Kinds() []string { return slices.Concat(Faults, named) }

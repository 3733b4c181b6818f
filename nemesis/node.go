// Package nemesis injects faults into a running cluster on a seeded schedule and heals them:
// partitions (grudges), packet loss, kills, pauses, restarts of every node, membership
// changes, power losses, and rolling upgrades to another release and back. Every fault is
// recorded in the history as a nemesis event before it is applied and again when it ends, so
// checkers and reports can see the fault windows.
//
// The package speaks to the cluster through the small Node and Cluster interfaces below, which
// the docker package satisfies and unit tests fake.
package nemesis

import (
	"context"
	"net/netip"
	"time"
)

// Node is one member of the cluster as the nemesis needs it.
type Node interface {
	// Name is the node's name, as used in history targets and grudges.
	Name() string
	// IP is the address other nodes reach it at; partitions and loss are expressed in IPs.
	IP() netip.Addr
	// Kill stops the node's process with SIGKILL.
	Kill(ctx context.Context) error
	// Start starts a stopped or killed node; starting a running node is not an error.
	Start(ctx context.Context) error
	// Stop sends sig ("KILL", "TERM" or "INT") and waits up to timeout before killing.
	Stop(ctx context.Context, sig string, timeout time.Duration) error
	// Wipe replaces a stopped node by a fresh one with the same name and address and empty
	// storage (a server whose data dir was lost); it is left stopped.
	Wipe(ctx context.Context) error
	// Exited reports whether the node's process has exited (crashed, or left and shut down)
	// while the nemesis did not stop it.
	Exited(ctx context.Context) (bool, error)
	// Pause freezes the node's processes (SIGSTOP semantics); Unpause resumes them.
	Pause(ctx context.Context) error
	Unpause(ctx context.Context) error
	// LoseUnsynced drops every change to the killed node's data dir that it had not made durable
	// (a power loss; see package powerfs) and returns what was lost, for the record. A node whose
	// data is not on a power-loss filesystem returns an error.
	LoseUnsynced(ctx context.Context) (lost any, err error)
	// NetFault runs the netfault command line in the node's network namespace with args, e.g.
	// ["set", "--drop-in", "IP,IP", "--drop-out", "IP,IP", "--loss", "30", "--loss-peers", "IP,IP"]
	// or ["heal"]. A set replaces all rules the previous one made.
	NetFault(ctx context.Context, args []string) error
}

// Cluster is the cluster as the nemesis needs it.
type Cluster interface {
	// Nodes lists every node of the cluster, running or not.
	Nodes() []Node
	// Leader is the name of the current Raft leader, "" if there is none.
	Leader(ctx context.Context) (string, error)
	// RemovePeer removes node from the Raft configuration (operator raft remove-peer).
	RemovePeer(ctx context.Context, node string) error
	// Join makes node rejoin the cluster (agent join).
	Join(ctx context.Context, node string) error
	// Leave asks node to leave the cluster gracefully through its own API (agent leave); the
	// server then shuts down.
	Leave(ctx context.Context, node string) error
	// SwitchRelease makes the stopped node run release (Options.UpgradeFrom or UpgradeTo) when
	// it next starts, keeping its name, address and data dir; the node is left stopped.
	SwitchRelease(ctx context.Context, node, release string) error
	// Rejoined reports whether node is back in the cluster: every node names one leader, and
	// that leader counts node as a healthy voter.
	Rejoined(ctx context.Context, node string) (bool, error)
	// Version is the version node's server says it runs (e.g. "1.16.3"), asked through its API.
	Version(ctx context.Context, node string) (string, error)
}

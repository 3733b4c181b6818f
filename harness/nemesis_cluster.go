package harness

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/raftcheck/harness/nemesis"
	"github.com/raftcheck/harness/targets"
)

// nemesisCluster lets the nemesis act on the cluster: docker nodes for process and network
// faults, the consul API for membership.
type nemesisCluster struct{ c *Cluster }

func (nc nemesisCluster) Nodes() []nemesis.Node {
	out := make([]nemesis.Node, len(nc.c.nodes))
	for i, n := range nc.c.nodes {
		out[i] = nemesisNode{Node: n, fs: nc.c.power[n.Name()]}
	}
	return out
}

// Leader is the leader every node agrees on, or the leader most nodes report, or "" (see
// mostNamedLeader: ties go to the lowest name, so a seeded schedule replays).
func (nc nemesisCluster) Leader(ctx context.Context) (string, error) {
	return mostNamedLeader(nc.c.Leaders(ctx)), nil
}

// mostNamedLeader picks from leaders (node → the leader it reports, "" for none) the leader named
// by the most nodes; among equally named ones the lowest name, so that the answer never depends
// on map order. It is "" when no node names a leader.
func mostNamedLeader(leaders map[string]string) string {
	votes := map[string]int{}
	for _, l := range leaders {
		if l != "" {
			votes[l]++
		}
	}
	best := ""
	for l, v := range votes {
		if best == "" || v > votes[best] || v == votes[best] && l < best {
			best = l
		}
	}
	return best
}

// RemovePeer removes node from the Raft configuration through the leader.
func (nc nemesisCluster) RemovePeer(ctx context.Context, node string) error {
	n := nc.c.nodeByName(node)
	if n == nil {
		return fmt.Errorf("remove peer: no node %q", node)
	}
	leader, _ := nc.Leader(ctx)
	if leader == "" {
		return fmt.Errorf("remove peer %s: no leader", node)
	}
	addr := netip.AddrPortFrom(n.IP(), targets.ServerPort).String()
	q := (&api.WriteOptions{}).WithContext(ctx)
	return nc.c.client(nc.c.nodeByName(leader)).Operator().RaftRemovePeerByAddress(addr, q)
}

// Join asks node to join the others through gossip; the leader then adds it back to Raft.
func (nc nemesisCluster) Join(ctx context.Context, node string) error {
	n := nc.c.nodeByName(node)
	if n == nil {
		return fmt.Errorf("join: no node %q", node)
	}
	var last error
	for _, other := range nc.c.nodes {
		if other == n {
			continue
		}
		if last = nc.c.client(n).Agent().Join(other.IP().String(), false); last == nil {
			return nil
		}
	}
	return fmt.Errorf("join %s: %w", node, last)
}

// leaveTimeout bounds a graceful leave: Consul answers PUT /v1/agent/leave only once the leave is
// done, about 9 s after the request here (its Raft removal and gossip propagation delays).
const leaveTimeout = 30 * time.Second

// Leave asks node to leave the cluster gracefully (PUT /v1/agent/leave on the node itself) and
// returns when the node answered.
func (nc nemesisCluster) Leave(ctx context.Context, node string) error {
	n := nc.c.nodeByName(node)
	if n == nil {
		return fmt.Errorf("leave: no node %q", node)
	}
	ctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	defer cancel()
	if err := put(ctx, n, "/v1/agent/leave"); err != nil {
		return fmt.Errorf("leave %s: %w", node, err)
	}
	return nil
}

// SwitchRelease gives the stopped node a container of release's image with release's command line
// for the node (targets.Target.Args: flags may differ per release), keeping its name, address and
// data dir (docker.Node.Replace). The release must be one the run prepared (Cluster.releases).
func (nc nemesisCluster) SwitchRelease(ctx context.Context, node, release string) error {
	n := nc.c.nodeByName(node)
	image := nc.c.releases[release]
	if n == nil || image == "" {
		return fmt.Errorf("switch %s to %s: no such node or release prepared", node, release)
	}
	t, err := targets.Parse(release)
	if err != nil {
		return err
	}
	return n.Replace(ctx, image, t.Args(nc.c.spec, slices.Index(nc.c.nodes, n)))
}

// Rejoined reports whether node is back after a restart: every node names one leader, and that
// leader's autopilot counts node as a healthy voter (GET /v1/operator/autopilot/health: Serf
// alive, in contact with the leader within its threshold, on the leader's term, its log close
// behind). This is what Consul's upgrade guide asks an operator to wait for before the next
// server.
func (nc nemesisCluster) Rejoined(ctx context.Context, node string) (bool, error) {
	leader := agreedLeader(nc.c.Leaders(ctx))
	if leader == "" {
		return false, nil
	}
	q := (&api.QueryOptions{}).WithContext(ctx)
	h, err := nc.c.client(nc.c.nodeByName(leader)).Operator().AutopilotServerHealth(q)
	if err != nil {
		return false, fmt.Errorf("autopilot health from %s: %w", leader, err)
	}
	for _, s := range h.Servers {
		if s.Name == node {
			return s.Healthy && s.Voter, nil
		}
	}
	return false, nil
}

// Version is the version node's agent reports (GET /v1/agent/self, Config.Version).
func (nc nemesisCluster) Version(ctx context.Context, node string) (string, error) {
	n := nc.c.nodeByName(node)
	if n == nil {
		return "", fmt.Errorf("version: no node %q", node)
	}
	self, err := nc.c.client(n).Agent().Self()
	if err != nil {
		return "", fmt.Errorf("version of %s: %w", node, err)
	}
	v, _ := self["Config"]["Version"].(string)
	if v == "" {
		return "", fmt.Errorf("version of %s: /v1/agent/self has no Config.Version", node)
	}
	return v, nil
}

package nemesis

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// The orders in which an upgrade roll switches the servers (the upgrade fault's target specs).
const (
	// UpgradeLeaderLast switches the followers first, in name order, and the leader last: the
	// procedure Consul's upgrade guide gives, so that leadership moves once.
	UpgradeLeaderLast = "leader-last"
	// UpgradeLeaderFirst switches the leader of the moment first: whenever the current leader
	// still runs the old release it is the next one, so most steps depose a leader and the
	// cluster elects among mixed releases (otherwise name order).
	UpgradeLeaderFirst = "leader-first"
)

// rejoinPoll is how often a roll asks whether a switched server is back.
const rejoinPoll = 250 * time.Millisecond

// prepareUpgrade rolls every server to the release the last complete roll did not go to (the
// first roll to UpgradeTo, the next back to UpgradeFrom, …): one server at a time it is stopped
// (SIGTERM, as `systemctl stop`), switched to the release with its data dir kept, started, and
// waited for until it has rejoined and every node names one leader. The fault's window is the
// roll: its start line comes before the first stop and its end line once the last server is
// back, so Run ends it at once (endsWhenApplied). When the run ends (the context Run's actions
// carry, see runContext) the roll stops before the next server and leaves the cluster mixed;
// a server it failed on (it would not stop, switch, start or rejoin) ends the roll too, as an
// operator would stop. The next roll goes to the same release and finishes the job. The end
// line says where every server is: releases (node → release), versions (what each switched
// server said it runs), order, rejoin_s (stop to rejoined, per server) and complete.
func (n *Nemesis) prepareUpgrade(f *Fault) (func(context.Context) error, error) {
	n.mu.Lock()
	to := n.rollTo
	n.mu.Unlock()
	from := n.opts.UpgradeFrom
	if to == from {
		from = n.opts.UpgradeTo
	}
	f.Targets, f.Detail["from"], f.Detail["to"] = n.names, from, to
	f.undo = func(ctx context.Context) error { return n.releaseNodes(ctx, f, n.heldBy(f)) }
	return func(ctx context.Context) error { return n.roll(ctx, f, from, to) }, nil
}

// roll switches every server that does not run to yet, one at a time; see prepareUpgrade.
func (n *Nemesis) roll(ctx context.Context, f *Fault, from, to string) error {
	n.rollMu.Lock()
	defer n.rollMu.Unlock()
	run := runContext(ctx)
	var order []string
	versions := map[string]string{}
	rejoin := map[string]float64{}
	complete := false
	defer func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		f.ended = map[string]any{"releases": maps.Clone(n.release), "versions": versions, "order": order, "rejoin_s": rejoin, "complete": complete}
		if !complete && run.Err() != nil {
			f.ended["stopped"] = "the run ended"
		}
		if complete {
			n.rollTo = from
		}
	}()
	for {
		// One server's switch is never cut short: a half-done one (stopped, or on the new release
		// but not started) would be a state nobody recorded.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.opts.StopTimeout+n.opts.RejoinTimeout+actionTimeout)
		name := n.nextToSwitch(sctx, f, to)
		if name == "" || run.Err() != nil {
			cancel()
			complete = name == ""
			return nil
		}
		order = append(order, name)
		began := time.Now()
		v, err := n.switchServer(sctx, f, name, to)
		cancel()
		if err != nil {
			return fmt.Errorf("upgrade to %s: %s: %w", to, name, err)
		}
		versions[name] = v
		rejoin[name] = math.Round(time.Since(began).Seconds()*1000) / 1000
	}
}

// nextToSwitch picks the next server of the roll to release to: by the step's order, among the
// servers that do not run it; "" when every server does.
func (n *Nemesis) nextToSwitch(ctx context.Context, f *Fault, to string) string {
	n.mu.Lock()
	var left []string
	for _, name := range n.names {
		if n.release[name] != to {
			left = append(left, name)
		}
	}
	n.mu.Unlock()
	if len(left) == 0 {
		return ""
	}
	leader, _ := n.c.Leader(ctx)
	if !slices.Contains(left, leader) {
		return left[0]
	}
	if f.Step.Target == UpgradeLeaderFirst || len(left) == 1 {
		return leader
	}
	return without(left, leader)[0]
}

// switchServer stops name, switches it to release, starts it (unless another fault holds it
// down) and waits until it has rejoined; it returns the version the server then says it runs.
func (n *Nemesis) switchServer(ctx context.Context, f *Fault, name, release string) (string, error) {
	node := n.byName[name]
	err := func() error {
		defer n.lockNode(name)()
		n.hold(f, name)
		if err := node.Stop(ctx, "TERM", n.opts.StopTimeout); err != nil {
			return err
		}
		if err := n.c.SwitchRelease(ctx, name, release); err != nil {
			return err
		}
		n.mu.Lock()
		n.release[name] = release
		n.mu.Unlock()
		return nil
	}()
	if err != nil {
		return "", err
	}
	if err := n.releaseNodes(ctx, f, []string{name}); err != nil {
		return "", err
	}
	if err := n.awaitRejoined(ctx, name); err != nil {
		return "", err
	}
	return n.c.Version(ctx, name)
}

// awaitRejoined polls Cluster.Rejoined until it says yes or RejoinTimeout has passed.
func (n *Nemesis) awaitRejoined(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.RejoinTimeout)
	defer cancel()
	var last error
	for {
		ok, err := n.c.Rejoined(ctx, name)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if !sleep(ctx, rejoinPoll) {
			if last != nil {
				return fmt.Errorf("not rejoined within %s: %w", n.opts.RejoinTimeout, last)
			}
			return fmt.Errorf("not rejoined within %s", n.opts.RejoinTimeout)
		}
	}
}

// heldBy lists the nodes f holds down.
func (n *Nemesis) heldBy(f *Fault) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, name := range n.names {
		if n.down[name][f] {
			out = append(out, name)
		}
	}
	return out
}

// Releases returns the release every node runs (node → release), as the upgrade fault left
// them; nil without the upgrade fault.
func (n *Nemesis) Releases() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.release) == 0 {
		return nil
	}
	return maps.Clone(n.release)
}

// endsWhenApplied are the kinds whose window is their action: Run ends them as soon as they are
// applied, instead of an Interval later.
var endsWhenApplied = map[string]bool{FaultUpgrade: true}

// runKey carries the run's own context into the detached context of a fault action, so that an
// action made of several steps (an upgrade's roll) can stop between them when the run ends.
type runKey struct{}

// runContext is the run's context an action was detached from, or ctx itself.
func runContext(ctx context.Context) context.Context {
	if r, ok := ctx.Value(runKey{}).(context.Context); ok {
		return r
	}
	return ctx
}

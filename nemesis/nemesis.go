package nemesis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftcheck/harness/history"
)

// EventError is the Event of the follow-up nemesis line recorded when a fault could not be
// applied (fully); its Error says why. The start line before it stays: the fault may have
// partly happened.
const EventError = "error"

// Nemesis runs a seeded schedule of faults against a cluster and remembers what is broken, so
// that restarted nodes get their network rules back and HealAll can undo everything.
// Its methods are safe for concurrent use; call HealAll after Run has returned.
type Nemesis struct {
	opts   Options
	c      Cluster
	rec    *history.Recorder
	nodes  []Node // sorted by name
	byName map[string]Node
	names  []string

	// nodeMu serialises what changes a node's process or storage (kill, stop, start, wipe, power
	// loss) when faults overlap, so that a start never slips between a kill and the loss of
	// unsynced data.
	nodeMu map[string]*sync.Mutex

	mu      sync.Mutex
	part    Grudge                     // the current partition
	loss    map[string]lossRule        // node → its loss rule
	down    map[string]map[*Fault]bool // killed or stopped → the faults holding it down; started when none is left
	paused  map[string]bool            // to be unpaused
	removed map[string]bool            // removed from Raft, to rejoin
	active  map[*Fault]struct{}        // started and not yet ended
	seq     int                        // start order, to close faults in order
	order   map[*Fault]int
	release map[string]string // node → the release it runs (upgrade fault)
	rollTo  string            // the release the next upgrade roll goes to

	rollMu sync.Mutex // one upgrade roll at a time
}

type lossRule struct {
	percent int
	peers   []string
}

// New validates opts against the cluster and returns a Nemesis recording into rec.
func New(opts Options, c Cluster, rec *history.Recorder) (*Nemesis, error) {
	if c == nil || rec == nil {
		return nil, errors.New("nemesis: cluster and recorder are required")
	}
	nodes := slices.Clone(c.Nodes())
	if len(nodes) == 0 {
		return nil, errors.New("nemesis: the cluster has no nodes")
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name() < nodes[j].Name() })
	opts, err := opts.withDefaults(len(nodes))
	if err != nil {
		return nil, err
	}
	n := &Nemesis{opts: opts, c: c, rec: rec, nodes: nodes, byName: map[string]Node{},
		loss: map[string]lossRule{}, down: map[string]map[*Fault]bool{}, paused: map[string]bool{}, removed: map[string]bool{},
		active: map[*Fault]struct{}{}, order: map[*Fault]int{}, nodeMu: map[string]*sync.Mutex{}, release: map[string]string{}, rollTo: opts.UpgradeTo}
	for _, node := range nodes {
		if n.byName[node.Name()] != nil {
			return nil, fmt.Errorf("nemesis: two nodes are named %q", node.Name())
		}
		n.byName[node.Name()] = node
		n.names = append(n.names, node.Name())
		n.nodeMu[node.Name()] = &sync.Mutex{}
		if opts.UpgradeFrom != "" {
			n.release[node.Name()] = opts.UpgradeFrom
		}
	}
	return n, nil
}

// Options returns the options in effect, defaults filled in.
func (n *Nemesis) Options() Options { return n.opts }

// Run starts and ends faults until ctx is done: wait Interval, start the next step of the plan,
// wait Interval, end it. A kind whose window is its action (an upgrade's roll) ends as soon as
// it is applied, then the next Interval of quiet begins. With Together every kind follows its
// own plan so, the k plans starting Interval·i/k apart: faults of different kinds overlap. A
// fault still active when ctx ends is left for HealAll, which the caller must run afterwards.
// Failures to apply a fault are recorded, not returned.
func (n *Nemesis) Run(ctx context.Context) error {
	if len(n.opts.Faults) == 0 {
		<-ctx.Done()
		return nil
	}
	lanes := n.opts.lanes()
	var wg sync.WaitGroup
	for i, p := range lanes {
		wg.Go(func() {
			if !sleep(ctx, n.opts.Interval*time.Duration(i)/time.Duration(len(lanes))) {
				return
			}
			for {
				if !sleep(ctx, n.opts.Interval) {
					return
				}
				f, _ := n.Start(detached(ctx), p.next())
				if !endsWhenApplied[f.Step.Fault] && !sleep(ctx, n.opts.Interval) {
					return
				}
				f.End(detached(ctx))
			}
		})
	}
	wg.Wait()
	return nil
}

// actionTimeout bounds one fault's application or reversal.
const actionTimeout = time.Minute

// detached lets a fault action that has begun run to its end when the run's ctx is cancelled:
// a half-applied action (a SIGKILL still in flight while HealAll starts the node) would leave
// the cluster in a state nobody recorded. The run's ctx stays reachable (runContext) for an
// action of several steps.
func detached(ctx context.Context) context.Context {
	c, cancel := context.WithTimeout(context.WithValue(context.WithoutCancel(ctx), runKey{}, ctx), actionTimeout)
	context.AfterFunc(c, cancel)
	return c
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Fault is a started fault; End reverses it.
type Fault struct {
	Step    Step           // what was drawn
	Targets []string       // the nodes it singles out, as recorded
	Detail  map[string]any // as recorded: target spec, seed, grudge, signal, percent, leader, …
	n       *Nemesis
	undo    func(ctx context.Context) error
	once    sync.Once
	// ended is recorded as the detail of the end line: what applying the fault found out (what
	// a power loss dropped).
	ended map[string]any
}

// Start records the start of step, then applies it. The returned Fault is never nil, also when
// the fault could not be applied (fully): End still undoes whatever happened. The error is also
// recorded as an EventError line.
func (n *Nemesis) Start(ctx context.Context, step Step) (*Fault, error) {
	r := rand.New(rand.NewPCG(step.Seed, 0))
	f := &Fault{Step: step, n: n, Detail: map[string]any{"target": step.Target, "seed": step.Seed}}
	apply, err := n.prepare(ctx, f, r)
	n.rec.Nemesis(step.Fault, history.NemesisEvent{Event: history.EventStart, Targets: f.Targets, Detail: f.Detail})
	n.mu.Lock()
	n.active[f] = struct{}{}
	n.seq++
	n.order[f] = n.seq
	n.mu.Unlock()
	if err == nil {
		err = apply(ctx)
	}
	if err != nil {
		n.rec.Nemesis(step.Fault, history.NemesisEvent{Event: EventError, Targets: f.Targets, Error: err.Error()})
		return f, fmt.Errorf("start %s: %w", step, err)
	}
	return f, nil
}

// End reverses the fault and records its end (with the error, if reversing failed). Calling
// it again, or after HealAll closed the fault, does nothing.
func (f *Fault) End(ctx context.Context) error {
	var err error
	f.once.Do(func() {
		n := f.n
		n.mu.Lock()
		_, open := n.active[f]
		delete(n.active, f)
		delete(n.order, f)
		n.mu.Unlock()
		if !open {
			return
		}
		began := time.Now()
		if f.undo != nil {
			err = f.undo(ctx)
		}
		// The end is recorded once the fault is surely gone; undo_s says how long reversing it
		// took, so a checker can tell when the heal began to take effect.
		detail := map[string]any{history.DetailUndoSeconds: math.Round(time.Since(began).Seconds()*1000) / 1000}
		ev := history.NemesisEvent{Event: history.EventEnd, Targets: f.Targets, Detail: detail}
		n.mu.Lock()
		maps.Copy(detail, f.ended)
		n.mu.Unlock()
		if err != nil {
			ev.Error = err.Error()
		}
		n.rec.Nemesis(f.Step.Fault, ev)
	})
	return err
}

// prepare resolves the step's targets into f and returns the action applying it; f.undo is
// set to its reversal. Each fault kind has its own prepare function.
func (n *Nemesis) prepare(ctx context.Context, f *Fault, r *rand.Rand) (func(context.Context) error, error) {
	switch f.Step.Fault {
	case FaultPartition:
		return n.preparePartition(ctx, f, r)
	case FaultLoss:
		return n.prepareLoss(f, r)
	case FaultKill:
		return n.prepareKill(ctx, f, r)
	case FaultRestart:
		return n.prepareRestart(f)
	case FaultPause:
		return n.preparePause(ctx, f, r)
	case FaultMembership:
		return n.prepareMembership(ctx, f, r)
	case FaultPower:
		return n.preparePower(ctx, f, r)
	case FaultUpgrade:
		return n.prepareUpgrade(f)
	}
	return nil, fmt.Errorf("unknown fault %q", f.Step.Fault)
}

// preparePartition cuts links by the step's grudge shape (around the leader for
// isolate-leader); the end heals the partition.
func (n *Nemesis) preparePartition(ctx context.Context, f *Fault, r *rand.Rand) (func(context.Context) error, error) {
	leader := ""
	if f.Step.Target == ShapeIsolateLeader {
		leader = n.leader(ctx, f)
	}
	g, t, err := shapeGrudge(f.Step.Target, n.names, leader, r)
	if err != nil {
		return nil, err
	}
	f.Targets, f.Detail["grudge"] = t, g
	f.undo = func(ctx context.Context) error {
		n.mu.Lock()
		n.part = nil
		n.mu.Unlock()
		return n.applyNet(ctx, n.names)
	}
	return func(ctx context.Context) error {
		n.mu.Lock()
		n.part = g
		n.mu.Unlock()
		return n.applyNet(ctx, n.names)
	}, nil
}

// prepareLoss drops a random percentage (LossMin–LossMax) of packets on every link between
// nodes; the end clears the loss.
func (n *Nemesis) prepareLoss(f *Fault, r *rand.Rand) (func(context.Context) error, error) {
	pct := n.opts.LossMin + r.IntN(n.opts.LossMax-n.opts.LossMin+1)
	f.Targets, f.Detail["percent"] = n.names, pct
	f.undo = func(ctx context.Context) error {
		n.mu.Lock()
		clear(n.loss)
		n.mu.Unlock()
		return n.applyNet(ctx, n.names)
	}
	return func(ctx context.Context) error {
		n.mu.Lock()
		for _, name := range n.names {
			n.loss[name] = lossRule{percent: pct, peers: without(n.names, name)}
		}
		n.mu.Unlock()
		return n.applyNet(ctx, n.names)
	}, nil
}

// prepareKill SIGKILLs the step's nodes (one, the leader or a minority); the end starts them.
func (n *Nemesis) prepareKill(ctx context.Context, f *Fault, r *rand.Rand) (func(context.Context) error, error) {
	f.Targets = n.pickNodes(ctx, f, r)
	f.undo = func(ctx context.Context) error { return n.releaseNodes(ctx, f, f.Targets) }
	return func(ctx context.Context) error {
		return n.each(ctx, f.Targets, func(ctx context.Context, node Node) error {
			defer n.lockNode(node.Name())()
			n.hold(f, node.Name())
			return node.Kill(ctx)
		})
	}, nil
}

// preparePower cuts the power of the step's nodes (one, a minority or all): each is killed and
// loses every change to its data dir it had not made durable. The end starts them on what
// survived. The end line's detail says what each node lost.
func (n *Nemesis) preparePower(ctx context.Context, f *Fault, r *rand.Rand) (func(context.Context) error, error) {
	f.Targets = n.pickNodes(ctx, f, r)
	f.undo = func(ctx context.Context) error { return n.releaseNodes(ctx, f, f.Targets) }
	return func(ctx context.Context) error {
		lost := map[string]any{}
		err := n.each(ctx, f.Targets, func(ctx context.Context, node Node) error {
			defer n.lockNode(node.Name())()
			n.hold(f, node.Name())
			t := time.Now()
			if err := node.Kill(ctx); err != nil {
				return err
			}
			killed := time.Since(t).Seconds()
			l, err := node.LoseUnsynced(ctx)
			n.mu.Lock()
			lost[node.Name()] = map[string]any{"lost": l, "kill_seconds": killed}
			n.mu.Unlock()
			return err
		})
		n.mu.Lock()
		f.ended = map[string]any{"lost": lost}
		n.mu.Unlock()
		return err
	}, nil
}

// prepareRestart stops every node with RestartSignal, all at once or one after another
// (RestartRolling); the end starts them all.
func (n *Nemesis) prepareRestart(f *Fault) (func(context.Context) error, error) {
	f.Targets, f.Detail["signal"] = n.names, n.opts.RestartSignal
	f.Detail["rolling"] = n.opts.RestartRolling
	f.undo = func(ctx context.Context) error { return n.releaseNodes(ctx, f, f.Targets) }
	stop := func(ctx context.Context, node Node) error {
		defer n.lockNode(node.Name())()
		n.hold(f, node.Name())
		return node.Stop(ctx, n.opts.RestartSignal, n.opts.StopTimeout)
	}
	return func(ctx context.Context) error {
		if n.opts.RestartRolling {
			var errs []error
			for _, name := range f.Targets {
				if err := stop(ctx, n.byName[name]); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", name, err))
				}
			}
			return errors.Join(errs...)
		}
		return n.each(ctx, f.Targets, stop)
	}, nil
}

// preparePause SIGSTOPs the step's nodes; the end resumes them.
func (n *Nemesis) preparePause(ctx context.Context, f *Fault, r *rand.Rand) (func(context.Context) error, error) {
	f.Targets = n.pickNodes(ctx, f, r)
	f.undo = func(ctx context.Context) error { return n.unpauseNodes(ctx, f.Targets) }
	return func(ctx context.Context) error {
		return n.each(ctx, f.Targets, func(ctx context.Context, node Node) error {
			defer n.lockNode(node.Name())()
			n.mu.Lock()
			down := len(n.down[node.Name()]) > 0
			n.mu.Unlock()
			if down { // nothing runs to freeze; another fault stopped it
				return nil
			}
			if err := node.Pause(ctx); err != nil {
				return err // not marked: a failed freeze leaves the node running (the heal must not fail on it)
			}
			n.mark(n.paused, []string{node.Name()}, true)
			return nil
		})
	}, nil
}

// prepareMembership picks a random follower and, by the step's target, replaces it by a fresh
// server, has it leave gracefully, or removes it from the Raft configuration.
func (n *Nemesis) prepareMembership(ctx context.Context, f *Fault, r *rand.Rand) (func(context.Context) error, error) {
	leader := n.leader(ctx, f)
	candidates := without(n.names, leader)
	f.Targets = []string{candidates[r.IntN(len(candidates))]}
	switch f.Step.Target {
	case "replace-follower":
		return n.replaceFollower(f), nil
	case "leave-follower":
		return n.leaveFollower(f), nil
	}
	return n.removeFollower(f), nil
}

// replaceFollower: a new server joins where an old one was: the leader must drop the stale
// entry (same address, old id) and add the newcomer. Nothing is left to undo.
func (n *Nemesis) replaceFollower(f *Fault) func(context.Context) error {
	f.Detail["action"] = "replace"
	f.undo = func(context.Context) error { return nil }
	return func(ctx context.Context) error {
		node := n.byName[f.Targets[0]]
		unlock := n.lockNode(node.Name())
		n.hold(f, node.Name())
		if err := node.Kill(ctx); err != nil {
			unlock()
			return err
		}
		err := node.Wipe(ctx)
		unlock()
		if err != nil {
			return err
		}
		return n.releaseNodes(ctx, f, f.Targets)
	}
}

// leaveFollower: the server leaves through its own API and shuts down; at the end it starts
// again on its old data and rejoins through -retry-join.
func (n *Nemesis) leaveFollower(f *Fault) func(context.Context) error {
	f.Detail["action"] = "leave"
	f.undo = func(ctx context.Context) error { return n.releaseNodes(ctx, f, f.Targets) }
	return func(ctx context.Context) error {
		n.hold(f, f.Targets[0])
		if err := n.c.Leave(ctx, f.Targets[0]); err != nil {
			return err
		}
		// A server that left exits by itself; one that did not within StopTimeout is
		// stopped, so that the end of the fault always starts it.
		defer n.lockNode(f.Targets[0])()
		return n.byName[f.Targets[0]].Stop(ctx, "TERM", n.opts.StopTimeout)
	}
}

// removeFollower removes the server from the Raft configuration through the leader; at the end
// it rejoins.
func (n *Nemesis) removeFollower(f *Fault) func(context.Context) error {
	f.Detail["action"] = "remove"
	f.undo = func(ctx context.Context) error { return n.rejoinNodes(ctx, f.Targets) }
	return func(ctx context.Context) error {
		n.mark(n.removed, f.Targets, true)
		return n.c.RemovePeer(ctx, f.Targets[0])
	}
}

// leader asks the cluster for its leader and notes the answer in f's detail; "" if unknown.
func (n *Nemesis) leader(ctx context.Context, f *Fault) string {
	l, err := n.c.Leader(ctx)
	if err != nil {
		f.Detail["leader_error"] = err.Error()
		l = ""
	}
	if n.byName[l] == nil {
		l = ""
	}
	f.Detail["leader"] = l
	return l
}

// pickNodes resolves one, leader and minority. Without a known leader, "leader" picks a random
// node (the detail says so).
func (n *Nemesis) pickNodes(ctx context.Context, f *Fault, r *rand.Rand) []string {
	switch f.Step.Target {
	case "leader":
		if l := n.leader(ctx, f); l != "" {
			return []string{l}
		}
		f.Detail["fallback"] = "no leader: a random node"
	case "minority":
		k := max(1, (len(n.names)-1)/2)
		return sorted(shuffled(n.names, r)[:k])
	case "all":
		return slices.Clone(n.names)
	}
	return []string{n.names[r.IntN(len(n.names))]}
}

// ReapplyNet sends node its current network rules again (partition and loss); call it after
// anything restarted the node's container, since the rules die with it.
func (n *Nemesis) ReapplyNet(ctx context.Context, node string) error {
	if n.byName[node] == nil {
		return fmt.Errorf("reapply net: unknown node %q", node)
	}
	return n.netFault(ctx, n.byName[node])
}

// netArgs are the `net` arguments that give node its current rules.
func (n *Nemesis) netArgs(node string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	in := n.part[node]
	var out []string
	for dst, srcs := range n.part {
		if slices.Contains(srcs, node) {
			out = append(out, dst)
		}
	}
	l := n.loss[node]
	if len(in) == 0 && len(out) == 0 && l.percent == 0 {
		return []string{"heal"}
	}
	args := []string{"set"}
	if len(in) > 0 {
		args = append(args, "--drop-in", n.ips(in))
	}
	if len(out) > 0 {
		args = append(args, "--drop-out", n.ips(out))
	}
	if l.percent > 0 {
		args = append(args, "--loss", strconv.Itoa(l.percent), "--loss-peers", n.ips(l.peers))
	}
	return args
}

func (n *Nemesis) ips(names []string) string {
	ips := make([]string, 0, len(names))
	for _, name := range names {
		ips = append(ips, n.byName[name].IP().String())
	}
	slices.Sort(ips)
	return strings.Join(ips, ",")
}

func (n *Nemesis) netFault(ctx context.Context, node Node) error {
	return node.NetFault(ctx, n.netArgs(node.Name()))
}

// applyNet sends the current rules to every named node that is running; stopped nodes get
// theirs when they start.
func (n *Nemesis) applyNet(ctx context.Context, names []string) error {
	n.mu.Lock()
	up := slices.DeleteFunc(slices.Clone(names), func(s string) bool { return len(n.down[s]) > 0 })
	n.mu.Unlock()
	return n.each(ctx, up, n.netFault)
}

// lockNode takes the node's lifecycle lock and returns its release.
func (n *Nemesis) lockNode(name string) func() {
	m := n.nodeMu[name]
	m.Lock()
	return m.Unlock
}

// hold marks node as held down by f (nil: by the heal). A kill ends a pause: the engine thaws
// a paused container to deliver the signal.
func (n *Nemesis) hold(f *Fault, node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down[node] == nil {
		n.down[node] = map[*Fault]bool{}
	}
	n.down[node][f] = true
	delete(n.paused, node)
}

// releaseNodes lets go of f's hold on the named nodes and starts those no other fault holds
// down, each under its node lock.
func (n *Nemesis) releaseNodes(ctx context.Context, f *Fault, names []string) error {
	return n.each(ctx, names, func(ctx context.Context, node Node) error {
		defer n.lockNode(node.Name())()
		n.mu.Lock()
		delete(n.down[node.Name()], f)
		held := len(n.down[node.Name()]) > 0
		n.mu.Unlock()
		if held {
			return nil
		}
		return n.startNode(ctx, node)
	})
}

// startNode starts node, then gives it its network rules back. The caller holds its node lock.
func (n *Nemesis) startNode(ctx context.Context, node Node) error {
	if err := node.Start(ctx); err != nil {
		return err
	}
	return n.started(ctx, node)
}

// started marks a node the engine has just started as up and gives it the network rules in force.
func (n *Nemesis) started(ctx context.Context, node Node) error {
	n.mu.Lock()
	delete(n.down, node.Name())
	n.mu.Unlock()
	return n.netFault(ctx, node)
}

// downNodes lists the nodes some fault holds down.
func (n *Nemesis) downNodes() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for name, by := range n.down {
		if len(by) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// unpauseNodes resumes the named nodes that are still paused (a kill since thawed the others).
func (n *Nemesis) unpauseNodes(ctx context.Context, names []string) error {
	return n.each(ctx, names, func(ctx context.Context, node Node) error {
		defer n.lockNode(node.Name())()
		n.mu.Lock()
		paused := n.paused[node.Name()]
		n.mu.Unlock()
		if !paused {
			return nil
		}
		if err := node.Unpause(ctx); err != nil {
			return err
		}
		n.mark(n.paused, []string{node.Name()}, false)
		return nil
	})
}

func (n *Nemesis) rejoinNodes(ctx context.Context, names []string) error {
	return n.each(ctx, names, func(ctx context.Context, node Node) error {
		if err := n.c.Join(ctx, node.Name()); err != nil {
			return err
		}
		n.mark(n.removed, []string{node.Name()}, false)
		return nil
	})
}

func (n *Nemesis) mark(set map[string]bool, names []string, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, name := range names {
		if on {
			set[name] = true
		} else {
			delete(set, name)
		}
	}
}

func (n *Nemesis) marked(set map[string]bool) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Sorted(maps.Keys(set))
}

// each runs fn on the named nodes in parallel; the errors name their nodes.
func (n *Nemesis) each(ctx context.Context, names []string, fn func(context.Context, Node) error) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx, n.byName[name]); err != nil {
				errs[i] = fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// HealAll undoes every fault: unpauses paused nodes, starts stopped ones, heals the network on
// every node, rejoins removed ones, and records the end of every fault still open, all between
// a heal start and a heal end event. It tries everything even when a step fails, and returns
// the failures joined.
func (n *Nemesis) HealAll(ctx context.Context) error {
	// A node whose process exited although no fault stopped it (a crash, or a server that shut
	// down after leaving) is started too; the heal event names it.
	exited := n.exitedUnasked(ctx)
	for _, name := range exited {
		n.hold(nil, name)
	}
	detail := map[string]any{"unpause": n.marked(n.paused), "start": n.downNodes(), "rejoin": n.marked(n.removed)}
	if rel := n.Releases(); rel != nil {
		detail["releases"] = rel // the heal switches no release: a cut roll leaves the cluster mixed
	}
	if len(exited) > 0 {
		detail["exited_unasked"] = exited
	}
	n.rec.Nemesis(history.FHeal, history.NemesisEvent{Event: history.EventStart, Targets: n.names, Detail: detail})

	var errs []error
	add := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	add("unpause", n.unpauseNodes(ctx, n.marked(n.paused)))
	n.mu.Lock()
	n.part = nil
	clear(n.loss)
	n.mu.Unlock()
	var died diedAfterStart
	add("start", n.each(ctx, n.downNodes(), func(ctx context.Context, node Node) error {
		defer n.lockNode(node.Name())()
		if err := node.Start(ctx); err != nil {
			return err // the engine's refusal is the heal's failure
		}
		return died.excuse(ctx, node, n.started(ctx, node))
	}))
	// Nodes that would not start have no rules left; their failure is reported above.
	down := n.downNodes()
	up := slices.DeleteFunc(slices.Clone(n.names), func(s string) bool { return slices.Contains(down, s) || died.has(s) })
	add("net heal", n.each(ctx, up, func(ctx context.Context, node Node) error {
		return died.excuse(ctx, node, node.NetFault(ctx, []string{"heal"}))
	}))
	add("rejoin", n.rejoinNodes(ctx, n.marked(n.removed)))

	// Close the windows of faults Run left open; what they broke is repaired above.
	n.mu.Lock()
	open := slices.SortedFunc(maps.Keys(n.active), func(a, b *Fault) int { return n.order[a] - n.order[b] })
	clear(n.active)
	clear(n.order)
	n.mu.Unlock()
	for _, f := range open {
		f.once.Do(func() {
			n.rec.Nemesis(f.Step.Fault, history.NemesisEvent{Event: history.EventEnd, Targets: f.Targets, Detail: map[string]any{"by": history.FHeal}})
		})
	}

	err := errors.Join(errs...)
	ev := history.NemesisEvent{Event: history.EventEnd, Targets: n.names}
	if err != nil {
		ev.Error = err.Error()
	}
	if names := died.sorted(); len(names) > 0 {
		// The system under test's own failure, for the checkers to judge (no leader, failed final
		// reads), not the harness's: e.g. Consul after a power loss that emptied its node-id.
		ev.Detail = map[string]any{"exited_after_start": names}
	}
	n.rec.Nemesis(history.FHeal, ev)
	if err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	return nil
}

// exitedUnasked lists the nodes that are not marked down, paused or removed but have exited.
func (n *Nemesis) exitedUnasked(ctx context.Context) []string {
	var out []string
	var mu sync.Mutex
	_ = n.each(ctx, n.names, func(ctx context.Context, node Node) error {
		n.mu.Lock()
		known := len(n.down[node.Name()]) > 0 || n.paused[node.Name()]
		n.mu.Unlock()
		if known {
			return nil
		}
		if gone, err := node.Exited(ctx); err == nil && gone {
			mu.Lock()
			out = append(out, node.Name())
			mu.Unlock()
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// diedAfterStart collects the nodes whose process exited by itself during the heal: the engine
// started the container, and the system under test then stopped (a server that refuses its own
// data dir), so the network rules the heal gives it fail with "not running". That is a finding
// about the system, which the checkers judge, not a failure of the heal.
type diedAfterStart struct {
	mu    sync.Mutex
	names []string
}

// excuse returns err, or nil when err came from a node whose process has exited (recording it).
func (d *diedAfterStart) excuse(ctx context.Context, node Node, err error) error {
	if err == nil {
		return nil
	}
	if gone, xerr := node.Exited(ctx); xerr != nil || !gone {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.names, node.Name()) {
		d.names = append(d.names, node.Name())
	}
	return nil
}

func (d *diedAfterStart) has(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Contains(d.names, name)
}

func (d *diedAfterStart) sorted() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(slices.Values(d.names))
}

func without(names []string, drop string) []string {
	return slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == drop })
}

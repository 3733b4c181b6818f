package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/raftcheck/harness/docker"
	"github.com/raftcheck/harness/powerfs"
	"github.com/raftcheck/harness/targets"
)

// Cluster is a running set of agent containers on one Docker network.
type Cluster struct {
	runID  string
	dc     *docker.Client
	net    *docker.Network
	nodes  []*docker.Node
	opts   Options
	target targets.Target
	image  string
	spec   targets.ClusterSpec // what every node's command line was made from
	// releases maps each release an upgrade run switches between ("consul@1.15.7") to its image.
	releases map[string]string

	mu      sync.Mutex
	clients map[string]*api.Client

	// power holds each node's power-loss filesystem (its /data) when the run has power faults.
	power map[string]*powerfs.FS
}

func nodeName(i int) string { return targets.NodeName(i) }

// startCluster creates the network and the nodes and starts them all in parallel.
func startCluster(ctx context.Context, dc *docker.Client, runID, image string, o Options) (*Cluster, error) {
	t, err := o.target()
	if err != nil {
		return nil, err
	}
	nw, err := dc.CreateNetwork(ctx, runID)
	if err != nil {
		return nil, err
	}
	c := &Cluster{runID: runID, dc: dc, net: nw, opts: o, target: t, image: image, clients: map[string]*api.Client{}}
	ips := make([]netip.Addr, o.Nodes)
	for i := range ips {
		ips[i] = nw.NodeIP(i + 1)
	}
	spec := targets.ClusterSpec{Bootstrap: o.Bootstrap, IPs: ips, Unsafe: o.Unsafe, Extra: o.AgentArgs}
	c.spec = spec
	if usesPower(o) {
		names := make([]string, o.Nodes)
		for i := range names {
			names[i] = nodeName(i)
		}
		if c.power, err = mountPower(runID, names, o.PowerWriteback); err != nil {
			return c, err
		}
	}
	c.nodes = make([]*docker.Node, o.Nodes)
	errs := make([]error, o.Nodes)
	var wg sync.WaitGroup
	for i := range o.Nodes {
		wg.Go(func() {
			spec := docker.NodeSpec{Name: nodeName(i), IP: ips[i], Image: image, Cmd: t.Args(spec, i), RunID: runID}
			if f := c.power[nodeName(i)]; f != nil {
				spec.DataDir = f.Mountpoint()
			}
			n, err := dc.CreateNode(ctx, nw, spec)
			if err == nil {
				err = n.Start(ctx)
			}
			c.nodes[i], errs[i] = n, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("start nodes: %w", err)
	}
	return c, nil
}

// HTTPAddr is node's HTTP API address as the harness reaches it.
func httpAddr(n *docker.Node) string { return netip.AddrPortFrom(n.IP(), targets.HTTPPort).String() }

// clientTimeout bounds one harness API call to a node (status probes, readiness writes): a healthy node answers in milliseconds, and a probe loop must move on from a paused or cut-off node quickly.
const clientTimeout = 2 * time.Second

// client returns a consul/api client for node (cached; short timeouts for status probes).
func (c *Cluster) client(n *docker.Node) *api.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[n.Name()]; ok {
		return cl
	}
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = httpAddr(n)
	cfg.HttpClient = &http.Client{Timeout: clientTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	cl, err := api.NewClient(cfg)
	if err != nil {
		panic(err) // only fails on TLS misconfiguration, which we never set
	}
	c.clients[n.Name()] = cl
	return cl
}

func (c *Cluster) nodeByName(name string) *docker.Node {
	for _, n := range c.nodes {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

// nameOfServerAddr maps a Raft address "ip:8300" to a node name ("" if unknown).
func (c *Cluster) nameOfServerAddr(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return ""
	}
	for _, n := range c.nodes {
		if n.IP() == ap.Addr() {
			return n.Name()
		}
	}
	return ""
}

// Leaders asks every node which leader it knows; a node that does not answer maps to "".
func (c *Cluster) Leaders(ctx context.Context) map[string]string {
	out := make(map[string]string, len(c.nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Go(func() {
			q := (&api.QueryOptions{}).WithContext(ctx)
			addr, err := c.client(n).Status().LeaderWithQueryOptions(q)
			name := ""
			if err == nil {
				name = c.nameOfServerAddr(addr)
			}
			mu.Lock()
			out[n.Name()] = name
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// agreedLeader returns the leader every node reports, or "".
func agreedLeader(leaders map[string]string) string {
	var l string
	for _, v := range leaders {
		if v == "" || (l != "" && v != l) {
			return ""
		}
		l = v
	}
	return l
}

// ErrSplitBrain means every node knows a leader but they do not agree: several clusters formed
// (for example every server bootstrapped alone). The run goes on so the checkers can show it.
var ErrSplitBrain = errors.New("nodes report different leaders: more than one cluster formed")

// splitBrainPatience is how long disagreeing leaders must persist before readiness gives up on
// agreement and reports ErrSplitBrain.
const splitBrainPatience = 3 * time.Second

// WaitReady waits until every node reports the same leader and a consistent write through the
// leader succeeds. On manual bootstrap it first performs the explicit bootstrap step. When every
// node keeps naming a leader of its own it returns ErrSplitBrain once each of those leaders took
// a write.
func (c *Cluster) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if c.opts.Bootstrap == targets.BootstrapManual {
		if err := c.manualBootstrap(ctx); err != nil {
			return err
		}
	}
	var last map[string]string
	var splitSince time.Time
	for {
		last = c.Leaders(ctx)
		if l := agreedLeader(last); l != "" {
			if c.readyWrite(ctx, l) == nil {
				return nil
			}
		} else if allKnowALeader(last) {
			if splitSince.IsZero() {
				splitSince = time.Now()
			}
			if time.Since(splitSince) > splitBrainPatience && c.writeEachLeader(ctx, last) == nil {
				return fmt.Errorf("%w: %v", ErrSplitBrain, last)
			}
		} else {
			splitSince = time.Time{}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ready after %s (leaders seen: %v)", timeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ReadEverywhere reads the readiness key with ?consistent through every node at once; the error
// names each node that failed.
func (c *Cluster) ReadEverywhere(ctx context.Context) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() {
			q := (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx)
			if _, _, err := c.client(n).KV().Get("harness/ready", q); err != nil {
				errs[i] = fmt.Errorf("%s: %w", n.Name(), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Cluster) readyWrite(ctx context.Context, leader string) error {
	w := (&api.WriteOptions{}).WithContext(ctx)
	_, err := c.client(c.nodeByName(leader)).KV().Put(&api.KVPair{Key: "harness/ready", Value: []byte("1")}, w)
	return err
}

func (c *Cluster) writeEachLeader(ctx context.Context, leaders map[string]string) error {
	seen := map[string]bool{}
	for _, l := range leaders {
		if !seen[l] {
			seen[l] = true
			if err := c.readyWrite(ctx, l); err != nil {
				return err
			}
		}
	}
	return nil
}

func allKnowALeader(leaders map[string]string) bool {
	for _, l := range leaders {
		if l == "" {
			return false
		}
	}
	return len(leaders) > 0
}

// manualBootstrap waits until n1 sees every server through gossip, then asks it to bootstrap
// Raft with all of them (the agent's PUT /v1/operator/raft/bootstrap).
func (c *Cluster) manualBootstrap(ctx context.Context) error {
	n1 := c.nodes[0]
	for {
		members, err := c.client(n1).Agent().Members(false)
		if err == nil && countAlive(members) >= len(c.nodes) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("manual bootstrap: n1 did not see %d servers: %v", len(c.nodes), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := put(ctx, n1, "/v1/operator/raft/bootstrap"); err != nil {
		return fmt.Errorf("manual bootstrap: %w", err)
	}
	return nil
}

// put sends an empty PUT to path on node's HTTP API (endpoints consul/api has no call for, or
// none with the caller's timeout) and turns any answer but 200 into an error with its text.
func put(ctx context.Context, n *docker.Node, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+httpAddr(n)+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func countAlive(ms []*api.AgentMember) int {
	n := 0
	for _, m := range ms {
		if m.Status == 1 {
			n++
		}
	}
	return n
}

// CollectLogs writes each node's container log to dir/<name>.log.
func (c *Cluster) CollectLogs(ctx context.Context, dir string, open func(name string) (io.WriteCloser, error)) error {
	var errs []error
	for _, n := range c.nodes {
		if n == nil {
			continue
		}
		w, err := open(n.Name() + ".log")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := n.Logs(ctx, w); err != nil {
			errs = append(errs, fmt.Errorf("logs of %s: %w", n.Name(), err))
		}
		if err := w.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LogTails returns the last lines of every node's log, for error messages.
func (c *Cluster) LogTails(ctx context.Context, lines int) string {
	var b strings.Builder
	for _, n := range c.nodes {
		if n == nil {
			continue
		}
		var buf strings.Builder
		_ = n.Logs(ctx, &buf)
		all := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		fmt.Fprintf(&b, "--- %s (last %d lines) ---\n%s\n", n.Name(), len(all), strings.Join(all, "\n"))
	}
	return b.String()
}

// VerifyHealed checks that the heal really happened: every node runs (not paused, not stopped)
// and has no fault rules left in its network namespace (asked through the helper, so it works on
// any target). A node whose process exited by itself after the heal started it is the system's
// failure, not the heal's (the heal's end line names it; the liveness checker judges the run).
func (c *Cluster) VerifyHealed(ctx context.Context) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = verifyNodeHealed(ctx, n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func verifyNodeHealed(ctx context.Context, n *docker.Node) error {
	st, err := n.State(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name(), err)
	}
	if st == "exited" { // started by the heal, then stopped by itself (the nemesis's heal end names it): the checkers judge
		return nil
	}
	if st != "running" {
		return fmt.Errorf("%s is %s after heal", n.Name(), st)
	}
	out, err := n.NetShow(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name(), err)
	}
	if out != "(healed)" {
		return fmt.Errorf("%s still has fault rules after heal: %s", n.Name(), out)
	}
	return nil
}

// Commands returns every node's full command line (image entrypoint arguments), by node name,
// for test.json and the report's reproduction notes.
func (c *Cluster) Commands() map[string][]string {
	out := make(map[string][]string, len(c.nodes))
	for _, n := range c.nodes {
		if n != nil {
			out[n.Name()] = n.Cmd()
		}
	}
	return out
}

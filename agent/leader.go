package agent

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"
)

// serverInfo is a Serf member that is a server, decoded from its Consul tags.
type serverInfo struct {
	Name      string
	ID        string
	DC        string
	Addr      string // Raft address ip:port
	Expect    int
	Bootstrap bool
	Status    serf.MemberStatus
}

func parseServer(m serf.Member) (serverInfo, bool) {
	if m.Tags["role"] != "consul" {
		return serverInfo{}, false
	}
	port, err := strconv.Atoi(m.Tags["port"])
	if err != nil {
		return serverInfo{}, false
	}
	expect, _ := strconv.Atoi(m.Tags["expect"])
	return serverInfo{
		Name:      m.Name,
		ID:        m.Tags["id"],
		DC:        m.Tags["dc"],
		Addr:      net.JoinHostPort(m.Addr.String(), strconv.Itoa(port)),
		Expect:    expect,
		Bootstrap: m.Tags["bootstrap"] == "1",
		Status:    m.Status,
	}, true
}

// serfEventLoop feeds membership changes to bootstrap and, on the leader, to reconcile.
func (a *Agent) serfEventLoop() {
	defer a.wg.Done()
	for {
		select {
		case <-a.shutdownCh:
			return
		case e := <-a.serfCh:
			me, ok := e.(serf.MemberEvent)
			if !ok {
				continue
			}
			for _, m := range me.Members {
				a.logger.Printf("[INFO] agent: member %s: %s (%s)", me.Type, m.Name, m.Addr)
			}
			if me.Type == serf.EventMemberJoin && a.bootstrapExpect.Load() != 0 {
				a.maybeBootstrap()
			}
			reap := me.Type == serf.EventMemberReap
			for _, m := range me.Members {
				queued := false
				if a.IsLeader() {
					select {
					case a.reconcileCh <- memberEvent{m: m, reap: reap}:
						queued = true
					default: // the periodic full reconcile catches up
					}
				}
				// A reaped member is gone from Serf's member list, so no full reconcile can see
				// it again: remember it for whichever leader this server becomes.
				if reap && !queued {
					a.rememberReap(m)
				}
			}
		}
	}
}

// maybeBootstrap is Consul's -bootstrap-expect algorithm (research §1.2): once N servers of
// our datacenter are known and none reports Raft peers, bootstrap with exactly them, once.
func (a *Agent) maybeBootstrap() {
	expect := int(a.bootstrapExpect.Load())
	last, err := a.logStore.LastIndex()
	if err != nil {
		a.logger.Printf("[ERR] agent: bootstrap: read last log index: %v", err)
		return
	}
	if last != 0 {
		a.logger.Printf("[INFO] agent: Raft data found, disabling bootstrap mode")
		a.bootstrapExpect.Store(0)
		return
	}
	var servers []serverInfo
	for _, m := range a.serf.Members() {
		s, ok := parseServer(m)
		if !ok {
			continue
		}
		if s.DC != a.cfg.Datacenter {
			a.logger.Printf("[WARN] agent: member %s is in datacenter %q, ignored for bootstrap", s.Name, s.DC)
			continue
		}
		if s.Expect != 0 && s.Expect != expect {
			a.logger.Printf("[ERR] agent: member %s has a conflicting expect value. All nodes should expect the same number.", s.Name)
			return
		}
		if s.Bootstrap {
			a.logger.Printf("[ERR] agent: member %s has bootstrap mode. Expect disabled.", s.Name)
			return
		}
		servers = append(servers, s)
	}
	if len(servers) < expect {
		return
	}
	for _, s := range servers {
		peers, err := a.peersOf(s)
		if err != nil {
			a.logger.Printf("[WARN] agent: could not confirm peer status of %s: %v; treating as none", s.Name, err)
		}
		if len(peers) > 0 {
			a.logger.Printf("[INFO] agent: existing Raft peers reported by %s, disabling bootstrap mode", s.Name)
			a.bootstrapExpect.Store(0)
			return
		}
	}
	conf := raft.Configuration{}
	for _, s := range servers {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Addr)})
	}
	a.logger.Printf("[INFO] agent: found expected number of peers, attempting bootstrap: %v", conf.Servers)
	if err := a.raft.BootstrapCluster(conf).Error(); err != nil {
		a.logger.Printf("[ERR] agent: failed to bootstrap cluster: %v", err)
	}
	a.bootstrapExpect.Store(0)
}

// peersOf asks a server for its Raft peers (GET /v1/status/peers over its server port), retrying with
// exponential backoff from 250ms, 6 attempts (Consul: Status.Peers RPC, from 1s).
func (a *Agent) peersOf(s serverInfo) ([]string, error) {
	client := &http.Client{Transport: a.proxy, Timeout: 2 * time.Second}
	var lastErr error
	for attempt := 0; attempt < 6; attempt++ {
		if attempt > 0 {
			select {
			case <-a.shutdownCh:
				return nil, fmt.Errorf("shutting down")
			case <-time.After((250 * time.Millisecond) << (attempt - 1)):
			}
		}
		resp, err := client.Get(serverURL(s.Addr, "/v1/status/peers"))
		if err != nil {
			lastErr = err
			continue
		}
		var peers []string
		err = json.NewDecoder(resp.Body).Decode(&peers)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil {
			lastErr = fmt.Errorf("status %d: %v", resp.StatusCode, err)
			continue
		}
		return peers, nil
	}
	return nil, lastErr
}

// monitorLeadership runs the leader loop while this server is leader.
func (a *Agent) monitorLeadership() {
	defer a.wg.Done()
	var stop, done chan struct{}
	stopLoop := func() {
		if stop != nil {
			close(stop)
			<-done
			stop, done = nil, nil
			a.lostLeaderAt.Store(time.Now().UnixNano())
			a.logger.Printf("[INFO] agent: cluster leadership lost")
		}
	}
	for {
		select {
		case <-a.shutdownCh:
			stopLoop()
			return
		case isLeader := <-a.leaderNotify:
			if isLeader && stop == nil {
				stop, done = make(chan struct{}), make(chan struct{})
				a.wasLeader.Store(true)
				a.logger.Printf("[INFO] agent: cluster leadership acquired")
				go a.leaderLoop(stop, done)
			} else if !isLeader {
				stopLoop()
			}
		}
	}
}

// leaderLoop makes the new leader ready for reads (barrier), then keeps Raft membership in
// line with Serf: one configuration change at a time.
func (a *Agent) leaderLoop(stop, done chan struct{}) {
	defer close(done)
	for {
		if err := a.leaderReady(); err == nil {
			break
		} else {
			a.logger.Printf("[WARN] agent: leader barrier failed: %v", err)
		}
		select {
		case <-stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	a.armSessionTimers()
	defer a.timers.stopAll()
	a.reconcileAll()
	t := time.NewTicker(a.cfg.ReconcileInterval)
	defer t.Stop()
	gc := time.NewTicker(a.cfg.TombstoneGranularity)
	defer gc.Stop()
	var tombs tombstoneGC
	a.reapTombstones(&tombs) // the first note: tombstones from before this term
	for {
		select {
		case <-stop:
			return
		case e := <-a.reconcileCh:
			a.reconcileMember(e.m, e.reap)
		case <-t.C:
			a.reconcileAll()
		case <-gc.C:
			a.reapTombstones(&tombs)
		}
	}
}

// leaderReady returns nil once this server is leader and a barrier completed in the
// current term, i.e. its FSM has applied everything committed before it took over.
func (a *Agent) leaderReady() error {
	term := a.raft.CurrentTerm()
	if a.raft.State() != raft.Leader {
		return raft.ErrNotLeader
	}
	if a.readyTerm.Load() == term {
		return nil
	}
	if err := a.await(a.raft.Barrier(a.cfg.HoldTimeout)); err != nil {
		return err
	}
	a.readyTerm.Store(term)
	return nil
}

// await waits for a Raft future, or for the agent to shut down. With BatchApplyCh a future
// still in the apply channel's buffer when Raft shuts down is never answered, so its Error()
// would block for ever, and Shutdown, which waits for the leader loop, with it (seen as a hung
// test: Shutdown → wg.Wait, leader loop → Barrier().Error()).
func (a *Agent) await(f raft.Future) error {
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }() // stays blocked on an unanswered future; ends with the process
	select {
	case err := <-errc:
		return err
	case <-a.shutdownCh:
		return raft.ErrRaftShutdown
	}
}

func (a *Agent) reconcileAll() {
	members := a.serf.Members()
	for _, m := range members {
		a.reconcileMember(m, false)
	}
	a.reconcileReaped(members)
}

func (a *Agent) rememberReap(m serf.Member) {
	if s, ok := parseServer(m); ok && s.DC == a.cfg.Datacenter {
		a.reapMu.Lock()
		a.pendingReaps[s.ID] = s
		a.reapMu.Unlock()
	}
}

// reconcileReaped removes from Raft the servers reaped while this server was not leader, unless
// they came back (a member of that name is known again).
func (a *Agent) reconcileReaped(members []serf.Member) {
	a.reapMu.Lock()
	pending := make([]serverInfo, 0, len(a.pendingReaps))
	for _, s := range a.pendingReaps {
		pending = append(pending, s)
	}
	a.reapMu.Unlock()
	for _, s := range pending {
		back := slices.ContainsFunc(members, func(m serf.Member) bool { return m.Name == s.Name })
		if !back && (a.raft.State() != raft.Leader || a.removeServer(s) != nil) {
			return // kept for the next reconcile
		}
		if !back && a.fsm.Node(s.Name) != nil {
			a.applyCatalog(command{Op: "node-deregister", Node: &CatalogNode{Node: s.Name}})
		}
		a.reapMu.Lock()
		delete(a.pendingReaps, s.ID)
		a.reapMu.Unlock()
	}
}

func (a *Agent) reconcileMember(m serf.Member, reap bool) {
	if a.raft.State() == raft.Leader {
		a.reconcileNode(m, reap)
	}
	s, ok := parseServer(m)
	if !ok || s.DC != a.cfg.Datacenter {
		return
	}
	if a.raft.State() != raft.Leader {
		if reap {
			a.rememberReap(m)
		}
		return
	}
	switch {
	case reap:
		if a.removeServer(s) != nil {
			a.rememberReap(m)
		}
	case m.Status == serf.StatusLeft:
		_ = a.removeServer(s) // the next full reconcile retries
	case m.Status == serf.StatusAlive:
		a.addServer(s)
	}
	// Failed servers stay in the configuration: no automatic dead-server cleanup, so a
	// quorum is never removed. Operators use DELETE /v1/operator/raft/peer.
}

func (a *Agent) addServer(s serverInfo) {
	if s.ID == a.nodeID || s.ID == "" {
		return
	}
	if s.Bootstrap {
		for _, m := range a.serf.Members() {
			if o, ok := parseServer(m); ok && o.Bootstrap && o.Name != s.Name && m.Status == serf.StatusAlive {
				a.logger.Printf("[ERR] agent: Two nodes are in bootstrap mode. Only one node should be in bootstrap mode, not adding Raft peer %s.", s.Name)
				return
			}
		}
	}
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == s.ID && string(srv.Address) == s.Addr {
			return
		}
		if string(srv.Address) == s.Addr && string(srv.ID) != s.ID && string(srv.ID) != a.nodeID {
			a.logger.Printf("[INFO] agent: removing stale Raft server %s at %s (address now used by %s)", srv.ID, srv.Address, s.Name)
			if err := a.await(a.raft.RemoveServer(srv.ID, 0, membershipTimeout)); err != nil {
				a.logger.Printf("[ERR] agent: remove stale server %s: %v", srv.ID, err)
				return
			}
		}
	}
	a.logger.Printf("[INFO] agent: adding Raft voter %s (%s, %s)", s.Name, s.ID, s.Addr)
	if a.testHookMembership != nil {
		a.testHookMembership()
	}
	if err := a.await(a.raft.AddVoter(raft.ServerID(s.ID), raft.ServerAddress(s.Addr), 0, membershipTimeout)); err != nil {
		a.logger.Printf("[ERR] agent: add voter %s: %v", s.Name, err)
	}
}

// membershipTimeout bounds how long the leader loop waits to hand Raft a membership change: with
// no bound, a change submitted while leadership is lost and won again could wait for ever, and
// with it the loop (Consul's leader loop uses timeouts too).
const membershipTimeout = 10 * time.Second

// removeServer removes a server from the Raft configuration; nil when it is not (or no longer)
// there.
func (a *Agent) removeServer(s serverInfo) error {
	if s.ID == a.nodeID {
		return nil // a leader never removes itself here; Leave transfers leadership first
	}
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == s.ID {
			a.logger.Printf("[INFO] agent: removing Raft server %s (%s): member left or reaped", s.Name, s.ID)
			if err := a.await(a.raft.RemoveServer(srv.ID, 0, membershipTimeout)); err != nil {
				a.logger.Printf("[ERR] agent: remove server %s: %v", s.Name, err)
				return err
			}
			return nil
		}
	}
	return nil
}

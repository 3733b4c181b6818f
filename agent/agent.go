package agent

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"
)

// Version is what the agent reports as its Consul-compatible version and build tag.
const Version = "1.20.0"

// Agent is one running server: Raft, Serf and the HTTP API.
type Agent struct {
	cfg    *Config
	logger *log.Logger
	logw   io.Writer
	nodeID string

	fsm      *store
	raft     *raft.Raft
	trans    *raft.NetworkTransport
	logStore logStore
	stable   raft.StableStore
	serf     *serf.Serf
	serfCh   chan serf.Event

	httpLn  net.Listener
	httpSrv *http.Server
	port    *serverPort     // the server port: Raft and server-to-server requests
	rpcSrv  *http.Server    // serves other servers' requests arriving on the server port
	proxy   *http.Transport // sends requests to other servers over their server port

	bootstrapExpect atomic.Int64
	readyTerm       atomic.Uint64 // term in which a leader barrier completed
	wasLeader       atomic.Bool
	lostLeaderAt    atomic.Int64 // unix nanos, for -unsafe=long-lease

	leaderNotify chan bool
	reconcileCh  chan memberEvent
	// pendingReaps are servers Serf reaped while this server could not act on it (not leader,
	// or the reconcile channel full); a leader removes them from Raft once it is ready.
	reapMu       sync.Mutex
	pendingReaps map[string]serverInfo
	timers       sessionTimers // the leader's session TTL timers
	shutdownCh   chan struct{}
	shutdownOnce sync.Once
	shutdownErr  error
	leaving      atomic.Bool
	wg           sync.WaitGroup

	// testHookMembership, when set by a test, runs in the leader loop right before it hands Raft
	// a membership change.
	testHookMembership func()
}

type memberEvent struct {
	m    serf.Member
	reap bool
}

// New starts an agent. It returns when Raft, Serf and HTTP are running and -join (if any)
// succeeded; bootstrap, retry-join and leader election continue in the background.
func New(cfg *Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	out := cfg.LogOutput
	if out == nil {
		out = os.Stderr
	}
	a := &Agent{
		cfg:          cfg,
		logw:         &prefixWriter{w: out, prefix: []byte("[" + cfg.NodeName + "] ")},
		fsm:          newStore(),
		leaderNotify: make(chan bool, 10), // as Consul: Raft blocks on a full NotifyCh
		reconcileCh:  make(chan memberEvent, 256),
		pendingReaps: map[string]serverInfo{},
		shutdownCh:   make(chan struct{}),
		proxy:        rpcTransport(),
	}
	a.logger = log.New(a.logw, "", log.LstdFlags|log.Lmicroseconds)
	a.bootstrapExpect.Store(int64(cfg.BootstrapExpect))
	if u := cfg.UnsafeList(); len(u) > 0 {
		for i := 0; i < 3; i++ {
			a.logger.Printf("[WARN] agent: !!! UNSAFE MODE: seeded bugs enabled: %s — this agent is deliberately NOT consistent !!!", strings.Join(u, ","))
		}
	}
	if err := a.start(); err != nil {
		a.Shutdown()
		return nil, err
	}
	return a, nil
}

func (a *Agent) start() error {
	cfg := a.cfg
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "raft"), 0o755); err != nil {
		return fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "serf"), 0o755); err != nil {
		return fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	id, err := loadNodeID(cfg.DataDir, cfg.NodeID)
	if err != nil {
		return err
	}
	a.nodeID = id
	advertise, err := advertiseIP(cfg)
	if err != nil {
		return err
	}
	a.logger.Printf("[INFO] agent: starting node=%s id=%s dc=%s advertise=%s version=%s", cfg.NodeName, id, cfg.Datacenter, advertise, Version)

	a.httpLn, err = net.Listen("tcp", net.JoinHostPort(cfg.ClientAddr, strconv.Itoa(cfg.HTTPPort)))
	if err != nil {
		return fmt.Errorf("listen HTTP on %s:%d: %w", cfg.ClientAddr, cfg.HTTPPort, err)
	}

	if err := a.setupRaft(advertise); err != nil {
		return err
	}
	if err := a.setupSerf(advertise); err != nil {
		return err
	}
	// Serve only now that Raft and Serf exist (handlers use both); connections made since the
	// listeners opened wait in their backlog. Other servers' requests (forwarded to this leader,
	// the bootstrap peer check) come over the server port, to the same handler.
	newServer := func() *http.Server {
		return &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: cfg.HTTPReadTimeout, IdleTimeout: httpIdleTimeout, ErrorLog: a.logger}
	}
	a.httpSrv, a.rpcSrv = newServer(), newServer()
	for _, s := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{a.httpSrv, a.httpLn}, {a.rpcSrv, a.port.forward}} {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				a.logger.Printf("[ERR] agent: HTTP server: %v", err)
			}
		}()
	}
	a.logger.Printf("[INFO] agent: HTTP API on %s", a.httpLn.Addr())
	a.wg.Add(2)
	go a.serfEventLoop()
	go a.monitorLeadership()

	if len(cfg.Join) > 0 {
		addrs := make([]string, len(cfg.Join))
		for i, j := range cfg.Join {
			addrs[i] = joinAddr(j)
		}
		n, err := a.serf.Join(addrs, true)
		if n == 0 {
			return fmt.Errorf("join %v: %v", addrs, err)
		}
		a.logger.Printf("[INFO] agent: joined %d nodes", n)
	}
	if len(cfg.RetryJoin) > 0 {
		a.wg.Add(1)
		go a.retryJoin()
	}
	return nil
}

// maxAppendEntries bounds the entries of one AppendEntries message (Raft's default, as Consul).
const maxAppendEntries = 64

// httpIdleTimeout closes keep-alive connections idle this long.
const httpIdleTimeout = 90 * time.Second

func (a *Agent) setupRaft(advertise net.IP) error {
	cfg := a.cfg
	raftDir := filepath.Join(cfg.DataDir, "raft")
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(a.nodeID)
	rc.ProtocolVersion = raft.ProtocolVersionMax
	rc.HeartbeatTimeout = cfg.RaftHeartbeatTimeout
	rc.ElectionTimeout = cfg.RaftElectionTimeout
	rc.LeaderLeaseTimeout = cfg.RaftLeaderLeaseTimeout
	rc.PreVoteDisabled = cfg.RaftNoPreVote
	// Raft's default, as Consul: with values up to 512 KiB, 256 entries could make one ~130 MB
	// AppendEntries message (64: at most 32 MiB).
	rc.MaxAppendEntries = maxAppendEntries
	rc.BatchApplyCh = true
	rc.ShutdownOnRemove = false
	rc.SnapshotInterval = 30 * time.Second
	rc.SnapshotThreshold = 16384
	rc.NotifyCh = a.leaderNotify
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Output: a.logw, Level: hclog.Info})

	store, backend, err := openLogStore(raftDir, cfg)
	if err != nil {
		return fmt.Errorf("open raft log store: %w", err)
	}
	a.logger.Printf("[INFO] agent: Raft log store: %s", backend)
	a.logStore, a.stable = store, store
	logs, err := raft.NewLogCache(512, store)
	if err != nil {
		return err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, rc.Logger.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	bind := net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.ServerPort))
	a.port, err = listenServerPort(bind, advertise, a.logger.Printf)
	if err != nil {
		return fmt.Errorf("listen on the server port %s: %w", bind, err)
	}
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.port.serve() }()
	a.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: raftLayer{a.port.raft}, MaxPool: 3, Timeout: 10 * time.Second, Logger: rc.Logger.Named("transport"),
	})

	peersFile := filepath.Join(raftDir, "peers.json")
	hadState, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		return err
	}
	if _, err := os.Stat(peersFile); err == nil && !hadState {
		// As Consul: peers.json recovers an existing server; in a fresh data dir it is ignored
		// and deleted (a recovery of nothing would fail start-up).
		if err := os.Remove(peersFile); err != nil {
			return fmt.Errorf("delete %s: %w", peersFile, err)
		}
		a.logger.Printf("[WARN] agent: ignored and deleted %s: the data dir has no Raft state to recover", peersFile)
	} else if err == nil {
		conf, err := raft.ReadConfigJSON(peersFile)
		if err != nil {
			return fmt.Errorf("recovery failed to parse %s: %w", peersFile, err)
		}
		if err := raft.RecoverCluster(rc, newStore(), logs, store, snaps, a.trans, conf); err != nil {
			return fmt.Errorf("recovery from %s failed: %w", peersFile, err)
		}
		if err := os.Remove(peersFile); err != nil {
			return fmt.Errorf("recovery: delete %s: %w", peersFile, err)
		}
		a.logger.Printf("[INFO] agent: recovered Raft configuration from peers.json and deleted it: %v", conf.Servers)
	}

	hasState, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		return err
	}
	if cfg.Bootstrap || cfg.Unsafe[UnsafeBootstrapAlone] {
		if hasState {
			a.logger.Printf("[INFO] agent: bootstrap mode: Raft state exists, not bootstrapping")
		} else {
			conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: a.trans.LocalAddr()}}}
			if err := raft.BootstrapCluster(rc, logs, store, snaps, a.trans, conf); err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
			a.logger.Printf("[INFO] agent: bootstrapped a one-server cluster (bootstrap mode)")
		}
	}
	if hasState && a.bootstrapExpect.Load() != 0 {
		a.logger.Printf("[INFO] agent: Raft data found, disabling bootstrap mode")
		a.bootstrapExpect.Store(0)
	}
	a.raft, err = raft.NewRaft(rc, a.fsm, logs, store, snaps, a.trans)
	if err != nil {
		return fmt.Errorf("start Raft: %w", err)
	}
	a.logger.Printf("[INFO] agent: Raft on %s (server id %s)", a.trans.LocalAddr(), a.nodeID)
	return nil
}

func (a *Agent) setupSerf(advertise net.IP) error {
	cfg := a.cfg
	sc := serf.DefaultConfig()
	sc.Init()
	sc.NodeName = cfg.NodeName
	sc.Tags = a.tags()
	a.serfCh = make(chan serf.Event, 2048)
	sc.EventCh = a.serfCh
	sc.SnapshotPath = filepath.Join(cfg.DataDir, "serf", "local.snapshot")
	sc.RejoinAfterLeave = false
	sc.ReconnectTimeout, sc.ReapInterval = cfg.ReconnectTimeout, cfg.ReapInterval
	sc.LogOutput = a.logw
	sc.EnableNameConflictResolution = false
	if cfg.GossipProfile == "local" {
		sc.MemberlistConfig = memberlist.DefaultLocalConfig()
	} else {
		sc.MemberlistConfig = memberlist.DefaultLANConfig()
	}
	mc := sc.MemberlistConfig
	mc.Name = cfg.NodeName
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.SerfLANPort
	mc.AdvertiseAddr = advertise.String()
	mc.AdvertisePort = cfg.SerfLANPort
	mc.LogOutput = a.logw
	var err error
	a.serf, err = serf.Create(sc)
	if err != nil {
		return fmt.Errorf("start Serf on %s:%d: %w", cfg.BindAddr, cfg.SerfLANPort, err)
	}
	lm := a.serf.LocalMember()
	a.logger.Printf("[INFO] agent: Serf LAN on %s:%d", lm.Addr, lm.Port)
	return nil
}

// tags are Consul's server tags.
func (a *Agent) tags() map[string]string {
	_, port, _ := net.SplitHostPort(string(a.trans.LocalAddr()))
	t := map[string]string{
		"role":     "consul",
		"dc":       a.cfg.Datacenter,
		"id":       a.nodeID,
		"port":     port,
		"vsn":      "2",
		"vsn_min":  "2",
		"vsn_max":  "3",
		"raft_vsn": "3",
		"build":    Version + ":raftcheck",
		"segment":  "",
	}
	if a.cfg.BootstrapExpect > 0 {
		t["expect"] = strconv.Itoa(a.cfg.BootstrapExpect)
	}
	// bootstrap-alone models every server started with -bootstrap, so it advertises the tag as
	// that misconfiguration would (and leaders then refuse to add each other, as in Consul).
	if a.cfg.Bootstrap || a.cfg.Unsafe[UnsafeBootstrapAlone] {
		t["bootstrap"] = "1"
	}
	return t
}

func (a *Agent) retryJoin() {
	defer a.wg.Done()
	addrs := make([]string, len(a.cfg.RetryJoin))
	for i, j := range a.cfg.RetryJoin {
		addrs[i] = joinAddr(j)
	}
	for {
		n, err := a.serf.Join(addrs, true)
		if n > 0 {
			a.logger.Printf("[INFO] agent: retry-join: joined %d nodes of %v", n, addrs)
			return
		}
		a.logger.Printf("[WARN] agent: retry-join %v failed: %v; retrying in %s", addrs, err, a.cfg.RetryInterval)
		select {
		case <-a.shutdownCh:
			return
		case <-time.After(a.cfg.RetryInterval):
		}
	}
}

// NodeID returns the Raft server ID.
func (a *Agent) NodeID() string { return a.nodeID }

// HTTPAddr returns the host:port of the HTTP API.
func (a *Agent) HTTPAddr() string { return a.httpLn.Addr().String() }

// SerfAddr returns the host:port to join this agent's gossip pool.
func (a *Agent) SerfAddr() string {
	m := a.serf.LocalMember()
	return net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))
}

// RaftAddr returns the Raft transport address.
func (a *Agent) RaftAddr() string { return string(a.trans.LocalAddr()) }

// IsLeader reports whether Raft thinks this server is leader.
func (a *Agent) IsLeader() bool { return a.raft != nil && a.raft.State() == raft.Leader }

// Join joins the gossip pool through the given Serf addresses.
func (a *Agent) Join(addrs ...string) (int, error) {
	for i := range addrs {
		addrs[i] = joinAddr(addrs[i])
	}
	return a.serf.Join(addrs, true)
}

// ShutdownCh is closed once the agent has shut down (e.g. after PUT /v1/agent/leave).
func (a *Agent) ShutdownCh() <-chan struct{} { return a.shutdownCh }

// Shutdown stops the agent without leaving: the Raft configuration is unchanged, as after
// a crash. It is safe to call more than once.
func (a *Agent) Shutdown() error {
	a.shutdownOnce.Do(func() {
		a.logger.Printf("[INFO] agent: shutting down")
		close(a.shutdownCh)
		if a.port != nil {
			a.port.closeForward()
		}
		if a.httpSrv != nil {
			a.httpSrv.Close()
			a.rpcSrv.Close()
		} else if a.httpLn != nil {
			a.httpLn.Close()
		}
		if a.serf != nil {
			a.serf.Shutdown()
		}
		if a.raft != nil {
			if err := a.raft.Shutdown().Error(); err != nil {
				a.shutdownErr = err
			}
		}
		if a.trans != nil {
			a.trans.Close()
		}
		if a.port != nil {
			a.port.closeRaft()
		}
		a.wg.Wait()
		a.proxy.CloseIdleConnections()
		if a.logStore != nil {
			if a.leaving.Load() && a.cfg.Unsafe[UnsafeLeaveWipesPeers] {
				a.wipePeers()
			}
			a.logStore.Close()
		}
		a.logger.Printf("[INFO] agent: shutdown complete")
	})
	return a.shutdownErr
}

// Leave leaves the cluster gracefully and shuts down, as Consul's Server.Leave: a leader
// with other voters hands leadership over; Serf announces the leave; a follower waits
// (up to 5s) until the leader has removed it from the Raft configuration.
func (a *Agent) Leave() error {
	if err := a.leaveCluster(); err != nil {
		return err
	}
	return a.Shutdown()
}

// leaveCluster is Leave without the shutdown.
func (a *Agent) leaveCluster() error {
	if !a.leaving.CompareAndSwap(false, true) {
		return errors.New("already leaving")
	}
	a.logger.Printf("[INFO] agent: leaving the cluster gracefully")
	voters := 0
	inConfig := func() bool {
		f := a.raft.GetConfiguration()
		if f.Error() != nil {
			return false
		}
		voters = 0
		found := false
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
			if s.ID == raft.ServerID(a.nodeID) {
				found = true
			}
		}
		return found
	}
	inConfig()
	if a.raft.State() == raft.Leader && voters > 1 {
		if err := a.raft.LeadershipTransfer().Error(); err != nil {
			a.logger.Printf("[WARN] agent: leadership transfer failed (%v); removing self", err)
			if err := a.raft.RemoveServer(raft.ServerID(a.nodeID), 0, 0).Error(); err != nil {
				a.logger.Printf("[ERR] agent: remove self from Raft: %v", err)
			}
		}
	}
	if err := a.serf.Leave(); err != nil {
		a.logger.Printf("[ERR] agent: Serf leave: %v", err)
	}
	if voters > 1 {
		deadline := time.Now().Add(5 * time.Second)
		for inConfig() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if inConfig() {
			a.logger.Printf("[WARN] agent: failed to leave raft configuration gracefully, timeout")
		} else {
			a.logger.Printf("[INFO] agent: removed from the Raft configuration")
		}
	}
	return nil
}

// wipePeers appends an empty configuration to the local log (-unsafe=leave-wipes-peers),
// reproducing the old library's nulled peer set: after restart the node has no peers.
func (a *Agent) wipePeers() {
	last, err := a.logStore.LastIndex()
	if err != nil {
		a.logger.Printf("[ERR] agent: unsafe leave-wipes-peers: %v", err)
		return
	}
	term, _ := a.stable.GetUint64([]byte("CurrentTerm"))
	entry := &raft.Log{Index: last + 1, Term: term, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(raft.Configuration{})}
	if err := a.logStore.StoreLog(entry); err != nil {
		a.logger.Printf("[ERR] agent: unsafe leave-wipes-peers: %v", err)
		return
	}
	a.logger.Printf("[WARN] agent: UNSAFE leave-wipes-peers: local Raft peer set emptied at index %d", last+1)
}

// loadNodeID returns the persisted node ID, writing the given or a new one on first start.
func loadNodeID(dataDir, want string) (string, error) {
	path := filepath.Join(dataDir, "node-id")
	b, err := os.ReadFile(path)
	if err == nil {
		have := strings.TrimSpace(string(b))
		if !validUUID(have) {
			return "", fmt.Errorf("%s holds %q, not a UUID: fix or delete it", path, have)
		}
		if want != "" && !strings.EqualFold(want, have) {
			return "", fmt.Errorf("-node-id %s differs from %s in %s", want, have, path)
		}
		return have, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	id := want
	if id == "" {
		var u [16]byte
		if _, err := rand.Read(u[:]); err != nil {
			return "", err
		}
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		id = fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	}
	id = strings.ToLower(id)
	if err := writeFileDurably(path, []byte(id), 0o600); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}

// advertiseIP picks the address other servers use: -advertise, else -bind, else the first
// non-loopback IPv4 address (as Consul's GetPrivateIP).
func advertiseIP(cfg *Config) (net.IP, error) {
	if cfg.AdvertiseAddr != "" {
		return net.ParseIP(cfg.AdvertiseAddr), nil
	}
	if ip := net.ParseIP(cfg.BindAddr); ip != nil && !ip.IsUnspecified() {
		return ip, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	for _, ad := range addrs {
		if n, ok := ad.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.To4(), nil
		}
	}
	return nil, errors.New("no private IPv4 address found: pass -advertise or -bind")
}

// prefixWriter puts the node name at the start of every line so interleaved logs of
// several agents stay readable.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var buf bytes.Buffer
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		buf.Write(p.prefix)
		buf.Write(line)
	}
	if _, err := p.w.Write(buf.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

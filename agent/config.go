package agent

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is everything an agent needs to start. ParseFlags builds one from a Consul-style
// command line; tests build one directly and call DefaultConfig first.
type Config struct {
	NodeName   string // -node: Serf member name (default: host name)
	NodeID     string // -node-id: Raft server ID; default read from or written to <data-dir>/node-id
	Datacenter string // -datacenter (dc1)
	DataDir    string // -data-dir: created if missing; holds node-id, raft/, serf/

	Server          bool // -server: only server mode is implemented
	Bootstrap       bool // -bootstrap: bootstrap a one-server cluster if there is no Raft state
	BootstrapExpect int  // -bootstrap-expect: bootstrap once with exactly the first N servers seen

	BindAddr      string // -bind: address for Serf and Raft (default 0.0.0.0)
	AdvertiseAddr string // -advertise: address others use (default: bind, or first private IP)
	ClientAddr    string // -client: address of the HTTP API (default 127.0.0.1)
	HTTPPort      int    // -http-port (8500)
	SerfLANPort   int    // -serf-lan-port (8301)
	ServerPort    int    // -server-port (8300): Raft transport

	Join          []string      // -join: joined once at start; failure is fatal as in Consul
	RetryJoin     []string      // -retry-join: retried every RetryInterval until one join succeeds
	RetryInterval time.Duration // -retry-interval (30s)

	LeaveOnTerminate     bool // -leave-on-terminate (false for servers)
	SkipLeaveOnInterrupt bool // -skip-leave-on-interrupt (true for servers)

	// Raft timing. Defaults are hashicorp/raft's unscaled defaults (1s, 1s, 500ms), i.e.
	// Consul with raft_multiplier=1, so tests and the harness see failover in seconds.
	// Consul's production default (multiplier 5) is 5s, 5s, 2.5s.
	RaftHeartbeatTimeout   time.Duration // -raft-heartbeat-timeout
	RaftElectionTimeout    time.Duration // -raft-election-timeout
	RaftLeaderLeaseTimeout time.Duration // -raft-leader-lease-timeout
	// RaftNoPreVote turns off hashicorp/raft's pre-vote (v1.7's default): with it, a server cut
	// off from the leader asks whether it could win before it raises its term, so a partitioned
	// server that rejoins does not depose a healthy leader. Consul 1.20.1 builds with raft v1.5.0,
	// which has no pre-vote: -raft-prevote=false behaves as it does on a heal.
	RaftNoPreVote bool // -raft-prevote=false

	// GossipProfile selects memberlist's timing: "lan" (memberlist.DefaultLANConfig, as
	// Consul) or "local" (DefaultLocalConfig: 1s probes, failure detected in ~2-3s).
	GossipProfile string // -gossip-profile

	// HoldTimeout is how long a request that needs a leader waits for one before answering
	// 500 "No cluster leader" (Consul's rpc_hold_timeout, 7s).
	HoldTimeout time.Duration // -rpc-hold-timeout
	// HTTPReadTimeout bounds reading one whole request, body included, so that a client that
	// stops sending cannot hold a connection for ever (0: no bound).
	HTTPReadTimeout time.Duration

	// ReconcileInterval is how often the leader re-reconciles all Serf members into Raft
	// even without Serf events (Consul: 60s).
	ReconcileInterval time.Duration // -reconcile-interval

	// ReconnectTimeout is how long Serf keeps a failed member before reaping it (Consul's
	// reconnect_timeout, 72h); ReapInterval how often it looks (Serf's 15s). Tests shorten both.
	ReconnectTimeout time.Duration
	ReapInterval     time.Duration

	// TombstoneTTL is how long the leader keeps a deleted key's tombstone (which keeps the index
	// of its prefix from going backwards for blocking queries) before reaping it through Raft;
	// TombstoneGranularity batches the reaps (Consul: 15 min, 30 s).
	TombstoneTTL         time.Duration
	TombstoneGranularity time.Duration

	// SessionTTLMin is the shortest session TTL accepted (Consul's session_ttl_min, 10s).
	SessionTTLMin time.Duration // -session-ttl-min

	// RaftLogStore is the Raft log store backend, wal or boltdb ("": wal, as Consul 1.20 for a new
	// data dir; a data dir holding raft.db keeps BoltDB).
	RaftLogStore string // -raft-logstore-backend

	// Unsafe lists enabled seeded bugs (see Unsafe* constants). Empty means correct.
	Unsafe map[string]bool // -unsafe=NAME[,NAME]

	// LogOutput receives one line per event; nil means os.Stderr.
	LogOutput io.Writer
}

// Seeded bugs, enabled with -unsafe=NAME[,NAME]. Each breaks one promise on purpose so the
// harness can prove it detects the breakage.
const (
	// UnsafeStaleConsistentReads serves ?consistent reads from the receiving node's local
	// state without verifying leadership or forwarding.
	UnsafeStaleConsistentReads = "stale-consistent-reads"
	// UnsafeLongLease lets a node that was leader keep serving default-mode reads from its
	// local state for LongLease after it lost leadership (a deposed or partitioned leader).
	UnsafeLongLease = "long-lease"
	// UnsafeLocalCAS compares ?cas and txn cas against the receiving node's local state and
	// then writes unconditionally through Raft.
	UnsafeLocalCAS = "local-cas"
	// UnsafeAckBeforeCommit acknowledges writes as soon as the leader has submitted them to
	// Raft, before they commit.
	UnsafeAckBeforeCommit = "ack-before-commit"
	// UnsafeBootstrapAlone makes every server bootstrap a cluster of one at first start.
	UnsafeBootstrapAlone = "bootstrap-alone"
	// UnsafeLeaveWipesPeers empties the local Raft configuration after a graceful leave, as
	// the old Raft library did (hashicorp/consul#993): after restart the node cannot elect.
	UnsafeLeaveWipesPeers = "leave-wipes-peers"
	// UnsafeSkipFsync keeps the Raft log and stable store (term, vote) without fsync: bbolt's
	// NoSync and NoGrowSync. A kill loses nothing (the kernel has the writes); a power loss
	// loses what the last fsync did not cover.
	UnsafeSkipFsync = "skip-fsync"
	// UnsafeSessionTTL1x expires a session once 1×TTL passes without a renew (Consul: 2×TTL), so
	// a holder renewing late loses its lock sooner than Consul promises.
	UnsafeSessionTTL1x = "session-ttl-1x"
	// UnsafeLockDelayIgnored lets a key released by an invalidated session be locked again at
	// once, ignoring the session's lock-delay.
	UnsafeLockDelayIgnored = "lock-delay-ignored"
	// UnsafeLocalCheckSession evaluates a transaction's check-session on the receiving server's
	// local state and then sends the rest of the transaction through Raft unconditionally: a
	// lagging follower lets a fenced write through under a session that lost the lock, and rolls
	// back the fenced write of a session that has just acquired it (the face the lock workload
	// sees: its confirm read shows the session still holding).
	UnsafeLocalCheckSession = "local-check-session"
	// UnsafeSessionTimersNotRearmed leaves a new leader without TTL timers for the sessions that
	// existed when it took over (Consul's initializeSessionTimers re-arms every one at 2×TTL):
	// a session that is not renewed after a leader change never expires, and its holder keeps
	// the lock for as long as it stays silent.
	UnsafeSessionTimersNotRearmed = "session-timers-not-rearmed"
)

// UnsafeNames lists every seeded bug the agent knows.
var UnsafeNames = []string{
	UnsafeStaleConsistentReads, UnsafeLongLease, UnsafeLocalCAS,
	UnsafeAckBeforeCommit, UnsafeBootstrapAlone, UnsafeLeaveWipesPeers, UnsafeSkipFsync,
	UnsafeSessionTTL1x, UnsafeLockDelayIgnored, UnsafeLocalCheckSession, UnsafeSessionTimersNotRearmed,
}

// LongLease is how long a deposed leader keeps serving default reads under -unsafe=long-lease.
const LongLease = 60 * time.Second

// DefaultConfig returns Consul's defaults for a server agent.
func DefaultConfig() *Config {
	host, _ := os.Hostname()
	return &Config{
		NodeName:               host,
		Datacenter:             "dc1",
		BindAddr:               "0.0.0.0",
		ClientAddr:             "127.0.0.1",
		HTTPPort:               8500,
		SerfLANPort:            8301,
		ServerPort:             8300,
		RetryInterval:          30 * time.Second,
		SkipLeaveOnInterrupt:   true,
		RaftHeartbeatTimeout:   time.Second,
		RaftElectionTimeout:    time.Second,
		RaftLeaderLeaseTimeout: 500 * time.Millisecond,
		GossipProfile:          "lan",
		HoldTimeout:            7 * time.Second,
		HTTPReadTimeout:        60 * time.Second,
		ReconcileInterval:      10 * time.Second,
		ReconnectTimeout:       72 * time.Hour,
		ReapInterval:           15 * time.Second,
		TombstoneTTL:           15 * time.Minute,
		TombstoneGranularity:   30 * time.Second,
		SessionTTLMin:          DefaultSessionTTLMin,
		Unsafe:                 map[string]bool{},
	}
}

// UsageError is a command-line mistake; the binary exits 2 on it.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// ParseFlags parses a Consul-style agent command line (without the leading "agent" word).
// Errors are *UsageError.
func ParseFlags(args []string, output io.Writer) (*Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, not printed with the whole usage
	var join, retryJoin listFlag
	var unsafe string
	fs.BoolVar(&c.Server, "server", false, "run in server mode (required)")
	fs.BoolVar(&c.Bootstrap, "bootstrap", false, "bootstrap a one-server cluster if there is no Raft state")
	fs.IntVar(&c.BootstrapExpect, "bootstrap-expect", 0, "bootstrap once when this many servers are seen")
	fs.StringVar(&c.NodeName, "node", c.NodeName, "node name")
	fs.StringVar(&c.NodeID, "node-id", "", "node ID (UUID); default persisted in <data-dir>/node-id")
	fs.StringVar(&c.Datacenter, "datacenter", c.Datacenter, "datacenter")
	fs.StringVar(&c.DataDir, "data-dir", "", "data directory (created if missing)")
	fs.StringVar(&c.BindAddr, "bind", c.BindAddr, "address for gossip and Raft")
	fs.StringVar(&c.AdvertiseAddr, "advertise", "", "address advertised to other servers")
	fs.StringVar(&c.ClientAddr, "client", c.ClientAddr, "address of the HTTP API")
	fs.IntVar(&c.HTTPPort, "http-port", c.HTTPPort, "HTTP API port")
	fs.IntVar(&c.SerfLANPort, "serf-lan-port", c.SerfLANPort, "Serf LAN port")
	fs.IntVar(&c.ServerPort, "server-port", c.ServerPort, "Raft (server RPC) port")
	fs.Var(&join, "join", "address to join at start (repeatable)")
	fs.Var(&retryJoin, "retry-join", "address to join, retried until it succeeds (repeatable)")
	fs.DurationVar(&c.RetryInterval, "retry-interval", c.RetryInterval, "interval between join retries")
	fs.BoolVar(&c.LeaveOnTerminate, "leave-on-terminate", false, "leave gracefully on SIGTERM")
	fs.BoolVar(&c.SkipLeaveOnInterrupt, "skip-leave-on-interrupt", true, "do not leave on SIGINT")
	fs.DurationVar(&c.RaftHeartbeatTimeout, "raft-heartbeat-timeout", c.RaftHeartbeatTimeout, "Raft heartbeat timeout")
	fs.DurationVar(&c.RaftElectionTimeout, "raft-election-timeout", c.RaftElectionTimeout, "Raft election timeout")
	fs.DurationVar(&c.RaftLeaderLeaseTimeout, "raft-leader-lease-timeout", c.RaftLeaderLeaseTimeout, "Raft leader lease timeout")
	preVote := fs.Bool("raft-prevote", true, "Raft pre-vote (false: as Consul 1.20.1's raft v1.5.0, a rejoining server deposes the leader)")
	fs.StringVar(&c.GossipProfile, "gossip-profile", c.GossipProfile, "gossip timing: lan or local (fast failure detection)")
	fs.DurationVar(&c.HoldTimeout, "rpc-hold-timeout", c.HoldTimeout, "how long a request waits for a leader")
	fs.DurationVar(&c.ReconcileInterval, "reconcile-interval", c.ReconcileInterval, "leader's full reconcile interval")
	fs.StringVar(&c.RaftLogStore, "raft-logstore-backend", c.RaftLogStore, "Raft log store: wal or boltdb (Consul's raft_logstore.backend)")
	fs.DurationVar(&c.SessionTTLMin, "session-ttl-min", c.SessionTTLMin, "shortest session TTL accepted (Consul's session_ttl_min)")
	fs.StringVar(&unsafe, "unsafe", "", "seeded bugs to enable: "+strings.Join(UnsafeNames, ","))
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(output)
			fs.PrintDefaults()
			return nil, err
		}
		return nil, &UsageError{Msg: err.Error() + " (run 'agent -h' for the flag list)"}
	}
	c.RaftNoPreVote = !*preVote
	if fs.NArg() > 0 {
		return nil, &UsageError{Msg: fmt.Sprintf("unexpected argument %q: flags only", fs.Arg(0))}
	}
	c.Join, c.RetryJoin = join, retryJoin
	if unsafe != "" {
		for _, name := range strings.Split(unsafe, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if !isUnsafeName(name) {
				return nil, &UsageError{Msg: fmt.Sprintf("-unsafe: unknown name %q (known: %s)", name, strings.Join(UnsafeNames, ", "))}
			}
			c.Unsafe[name] = true
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func isUnsafeName(name string) bool {
	for _, n := range UnsafeNames {
		if n == name {
			return true
		}
	}
	return false
}

// Validate checks the configuration and applies Consul's rewrites (-bootstrap-expect=1 means
// -bootstrap). Errors are *UsageError.
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }
	if !c.Server {
		return bad("only server mode is implemented: pass -server")
	}
	if c.DataDir == "" {
		return bad("-data-dir is required")
	}
	if c.RaftLogStore != "" && c.RaftLogStore != LogStoreWAL && c.RaftLogStore != LogStoreBoltDB {
		return bad("-raft-logstore-backend must be %s or %s, got %q", LogStoreWAL, LogStoreBoltDB, c.RaftLogStore)
	}
	if c.TombstoneTTL <= 0 || c.TombstoneGranularity <= 0 || c.ReconnectTimeout <= 0 || c.ReapInterval <= 0 || c.SessionTTLMin <= 0 {
		return bad("tombstone TTL and granularity, reconnect timeout, reap interval and -session-ttl-min must be positive")
	}
	if c.NodeName == "" {
		return bad("-node is required (no host name available)")
	}
	if c.Bootstrap && c.BootstrapExpect != 0 {
		return bad("Bootstrap cannot be provided with an expected server count")
	}
	if c.BootstrapExpect < 0 {
		return bad("-bootstrap-expect must be >= 0, got %d", c.BootstrapExpect)
	}
	if c.BootstrapExpect == 1 {
		c.BootstrapExpect, c.Bootstrap = 0, true
	}
	for name, port := range map[string]int{"-http-port": c.HTTPPort, "-serf-lan-port": c.SerfLANPort, "-server-port": c.ServerPort} {
		if port < 0 || port > 65535 {
			return bad("%s must be in 0..65535 (0 picks a free port), got %d", name, port)
		}
	}
	for name, addr := range map[string]string{"-bind": c.BindAddr, "-client": c.ClientAddr, "-advertise": c.AdvertiseAddr} {
		if addr != "" && net.ParseIP(addr) == nil {
			return bad("%s must be an IP address, got %q", name, addr)
		}
	}
	if c.NodeID != "" && !validUUID(c.NodeID) {
		return bad("-node-id must be a UUID, got %q", c.NodeID)
	}
	if c.GossipProfile != "lan" && c.GossipProfile != "local" {
		return bad("-gossip-profile must be lan or local, got %q", c.GossipProfile)
	}
	if c.RetryInterval <= 0 {
		return bad("-retry-interval must be positive")
	}
	if c.RaftHeartbeatTimeout < 5*time.Millisecond || c.RaftElectionTimeout < 5*time.Millisecond || c.RaftLeaderLeaseTimeout < 5*time.Millisecond {
		return bad("raft timeouts must be at least 5ms")
	}
	if c.RaftLeaderLeaseTimeout > c.RaftHeartbeatTimeout {
		return bad("-raft-leader-lease-timeout (%s) must not exceed -raft-heartbeat-timeout (%s)", c.RaftLeaderLeaseTimeout, c.RaftHeartbeatTimeout)
	}
	if c.RaftElectionTimeout < c.RaftHeartbeatTimeout {
		return bad("-raft-election-timeout (%s) must be at least -raft-heartbeat-timeout (%s)", c.RaftElectionTimeout, c.RaftHeartbeatTimeout)
	}
	if c.HoldTimeout <= 0 || c.ReconcileInterval <= 0 {
		return bad("-rpc-hold-timeout and -reconcile-interval must be positive")
	}
	if c.Unsafe == nil {
		c.Unsafe = map[string]bool{}
	}
	for name := range c.Unsafe {
		if !isUnsafeName(name) {
			return bad("unknown unsafe name %q", name)
		}
	}
	return nil
}

// UnsafeList returns the enabled seeded bugs, sorted.
func (c *Config) UnsafeList() []string {
	var out []string
	for n, on := range c.Unsafe {
		if on {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// joinAddr adds the default Serf port to an address without one.
func joinAddr(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(8301))
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

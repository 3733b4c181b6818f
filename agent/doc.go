// Package agent is the project's Consul-compatible server: the system under test of the
// harness. It keeps a KV store in a Raft log (hashicorp/raft, raft-boltdb/v2 with fsync,
// FileSnapshotStore, Raft protocol 3 with the persisted node ID as server ID), learns
// membership through Serf LAN gossip with Consul's server tags, and serves the part of
// Consul's HTTP API that github.com/hashicorp/consul/api and the consul CLI use for KV,
// transactions, status, operator and agent calls.
//
// # Command line (cmd/agent)
//
//	agent [agent] -server -node=n1 -data-dir=/data -bind=IP -client=IP \
//	      (-bootstrap-expect=N | -bootstrap | neither) -retry-join=IP[:PORT] ... [flags]
//
// Consul's flags with Consul's meaning: -server (required), -bootstrap, -bootstrap-expect
// (=1 means -bootstrap; both together is an error), -join and -retry-join (repeatable; the
// Serf port defaults to 8301), -retry-interval (30s), -http-port (8500), -serf-lan-port
// (8301), -server-port (8300, Raft), -datacenter (dc1), -node, -node-id, -advertise,
// -leave-on-terminate (false), -skip-leave-on-interrupt (true). A port of 0 picks a free
// one. Flags of our own:
//
//	-raft-heartbeat-timeout=1s -raft-election-timeout=1s -raft-leader-lease-timeout=500ms
//	    hashicorp/raft's unscaled defaults, i.e. Consul with raft_multiplier=1 (Consul's
//	    production defaults are 5s/5s/2.5s). Lease must not exceed heartbeat; election must
//	    be at least heartbeat.
//	-gossip-profile=lan|local   memberlist LAN timing (as Consul) or local timing (failure
//	    detected in about 2-3s; use in tests)
//	-rpc-hold-timeout=7s        how long a request waits for a leader before 500 "No cluster leader"
//	-reconcile-interval=10s     leader's periodic full Serf→Raft reconcile (Consul: 60s)
//	-unsafe=NAME[,NAME]         seeded bugs, see below
//
// Unknown or invalid flags print one line and exit 2. Logs go to stderr, one line per
// event, each prefixed with "[<node>]". SIGTERM and SIGINT stop without leaving unless
// -leave-on-terminate / -skip-leave-on-interrupt=false; a second signal exits at once.
// The data dir is created if missing and is the only path the agent touches:
// <data-dir>/node-id, <data-dir>/raft/{raft.db,snapshots/,peers.json}, <data-dir>/serf/.
//
// Timings for fast tests and the harness (all 3 nodes on one host or one Docker network):
//
//	-retry-interval=1s -gossip-profile=local -raft-heartbeat-timeout=300ms
//	-raft-election-timeout=300ms -raft-leader-lease-timeout=150ms
//
// # Cluster formation
//
// As Consul (see research/consul-semantics.md §1): -bootstrap-expect=N bootstraps once,
// with exactly the servers seen, when N servers of the datacenter are known through Serf,
// never when the Raft log has entries, aborting on a conflicting "expect" tag or a member
// with the "bootstrap" tag, and only after every seen server reports no Raft peers on
// GET /v1/status/peers (6 attempts, backoff from 250ms; unreachable counts as none, as in
// Consul). -bootstrap bootstraps a one-server cluster if there is no Raft state. With
// neither flag a server never elects itself: it waits to be added by a leader, or for the
// manual bootstrap step:
//
//	PUT /v1/operator/raft/bootstrap     (not a Consul endpoint)
//
// which bootstraps the receiving server as a one-voter cluster, exactly as if it had
// started with -bootstrap (200 true); 409 if it already has Raft state. The leader then
// adds the others. So the harness's "--bootstrap manual" mode is: start all servers with no
// bootstrap flag, wait for gossip, PUT /v1/operator/raft/bootstrap on one of them.
//
// The leader waits for a Raft barrier, then reconciles Serf members into Raft one change at
// a time: alive servers become voters directly (AddVoter; no autopilot non-voter stage),
// a stale entry with the same address but another ID is removed first, a second
// bootstrap-mode server is refused, servers that left (or were reaped) are removed. Failed
// servers are never removed automatically (no dead-server cleanup), so a quorum is never
// removed; use DELETE /v1/operator/raft/peer.
//
// Leave (PUT /v1/agent/leave, or a leaving signal): a leader with other voters transfers
// leadership (else removes itself), Serf leave, then wait up to 5s to be removed from the
// configuration, then shut down. A sole server keeps itself. <data-dir>/raft/peers.json
// (protocol 3: [{"id","address","non_voter"}]) is applied once at start with
// raft.RecoverCluster and deleted.
//
// # HTTP API
//
//	GET|PUT|DELETE /v1/kv/<key>   recurse, keys, separator, flags, cas, raw, index, wait,
//	                              stale, consistent, dc; values up to 512 KiB (else 413)
//	PUT  /v1/txn                  KV verbs only, ≤128 ops, body ≤512 KiB; one Raft entry;
//	                              200 {Results} or 409 {Errors}; read-only txns not via Raft
//	GET  /v1/status/leader, /v1/status/peers      local view, never forwarded
//	GET  /v1/operator/raft/configuration          (?stale served locally)
//	DELETE /v1/operator/raft/peer?id=|address=
//	PUT  /v1/operator/raft/bootstrap              manual bootstrap (ours)
//	POST /v1/operator/raft/transfer-leader
//	GET  /v1/agent/self, /v1/agent/members
//	PUT  /v1/agent/join/<addr>, /v1/agent/leave, /v1/agent/force-leave/<node>[?prune]
//
// Reads: consistent = raft.VerifyLeader plus a barrier completed in the current term;
// default = the leader answers from its FSM once that barrier is done (lease only); stale
// = any server that has had leader contact answers from its FSM. Requests a follower
// cannot serve are proxied over keep-alive HTTP to the leader's HTTP address (Serf tag
// "http"); a proxied request that lands on a non-leader answers 500 "No cluster leader"
// rather than hop again. With no leader for -rpc-hold-timeout: 500 "No cluster leader".
// Headers X-Consul-Index (never 0), X-Consul-KnownLeader, X-Consul-LastContact (as Consul,
// no X-Consul-Effective-Consistency on KV). Errors are plain text: bad cas/flags/index/wait
// 400 (Consul: 500 for cas and flags), ?stale with ?consistent 400, malformed txn 400, an
// unknown txn verb 409 (as Consul), too large 413, too many txn ops 413, a dc other than ours
// 500 "No path to datacenter" (as Consul). docs/consul-differences.md lists what still differs.
//
// # Seeded bugs (-unsafe)
//
// Off by default, logged three times as a WARN at start when on:
//
//	stale-consistent-reads  ?consistent reads served from local state by any node, not verified, not forwarded
//	long-lease              a node that lost leadership keeps serving default reads locally for 60s
//	local-cas               ?cas (PUT and DELETE) compared on the receiving node's state, then written unconditionally
//	ack-before-commit       PUT/DELETE acknowledged as soon as the leader submitted them to Raft
//	bootstrap-alone         every server bootstraps a one-server cluster at first start
//	leave-wipes-peers       a graceful leave appends an empty configuration to the local log
//	                        (hashicorp/consul#993): after a restart the node cannot elect
//
// # Known differences from Consul
//
// Server mode only; no sessions, locks (acquire/release and txn lock/unlock answer errors),
// catalog, health, ACLs, DNS, WAN or RPC port protocol; tombstones are never reaped; an
// identical re-PUT still advances ModifyIndex; joining servers become voters at once (no
// autopilot stabilisation); no leave_drain_time; default reads are gated on the post-
// election barrier (Consul gates only consistent reads); -bootstrap-expect's peer check
// uses HTTP instead of the Status.Peers RPC; Raft addresses are not re-resolved through
// Serf when a server's IP changes (the leader's reconcile replaces a stale entry instead).
package agent

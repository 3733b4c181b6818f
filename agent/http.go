package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// forwardedHeader marks a request proxied from a follower to the leader. A server that
// receives one and is not leader answers "No cluster leader" instead of forwarding again,
// so a stale leader view can never build a forwarding loop.
const forwardedHeader = "X-Raftcheck-Forwarded"

var errNoLeader = errf(http.StatusInternalServerError, "No cluster leader")

// handler routes on the raw path: no ServeMux cleaning, so KV keys keep their bytes.
func (a *Agent) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.logger.Printf("[ERR] http: panic serving %s %s: %v", r.Method, r.URL, v)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		p := r.URL.Path
		var err error
		switch {
		case strings.HasPrefix(p, "/v1/kv/") || p == "/v1/kv":
			err = a.handleKV(w, r, strings.TrimPrefix(strings.TrimPrefix(p, "/v1/kv"), "/"))
		case strings.HasPrefix(p, "/v1/session/"):
			err = a.handleSession(w, r, strings.TrimPrefix(p, "/v1/session/"))
		case p == "/v1/catalog/nodes":
			err = a.handleCatalogNodes(w, r)
		case strings.HasPrefix(p, "/v1/health/node/"):
			err = a.handleHealthNode(w, r, strings.TrimPrefix(p, "/v1/health/node/"))
		case p == "/v1/txn":
			err = a.handleTxn(w, r)
		case p == "/v1/status/leader":
			err = a.handleStatusLeader(w, r)
		case p == "/v1/status/peers":
			err = a.handleStatusPeers(w, r)
		case p == "/v1/operator/raft/configuration":
			err = a.handleRaftConfiguration(w, r)
		case p == "/v1/operator/raft/peer":
			err = a.handleRaftRemovePeer(w, r)
		case p == "/v1/operator/raft/bootstrap":
			err = a.handleRaftBootstrap(w, r)
		case p == "/v1/operator/raft/transfer-leader":
			err = a.handleTransferLeader(w, r)
		case p == "/v1/agent/self":
			err = a.handleAgentSelf(w, r)
		case p == "/v1/agent/members":
			err = a.handleAgentMembers(w, r)
		case strings.HasPrefix(p, "/v1/agent/join/"):
			err = a.handleAgentJoin(w, r, strings.TrimPrefix(p, "/v1/agent/join/"))
		case p == "/v1/agent/leave":
			err = a.handleAgentLeave(w, r)
		case strings.HasPrefix(p, "/v1/agent/force-leave/"):
			err = a.handleForceLeave(w, r, strings.TrimPrefix(p, "/v1/agent/force-leave/"))
		default:
			err = errf(http.StatusNotFound, "Invalid URL path: not a recognized HTTP API endpoint")
		}
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) {
				he = errf(http.StatusInternalServerError, "%v", err)
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(he.code)
			io.WriteString(w, he.msg)
		}
	})
}

func allow(r *http.Request, methods ...string) *httpError {
	for _, m := range methods {
		if r.Method == m {
			return nil
		}
	}
	return errf(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, err = w.Write(b)
	return err
}

// setMeta writes Consul's query metadata headers. The index is never 0.
func (a *Agent) setMeta(w http.ResponseWriter, index uint64) {
	h := w.Header()
	if index == 0 {
		index = 1
	}
	h.Set("X-Consul-Index", strconv.FormatUint(index, 10))
	a.setLeaderMeta(w)
	// Consul sets X-Consul-Effective-Consistency only on endpoints served through the agent's
	// cache (catalog, health), never on KV: neither does the agent.
}

func (a *Agent) setLeaderMeta(w http.ResponseWriter) {
	h := w.Header()
	known, lastContact := a.leaderMeta()
	h.Set("X-Consul-KnownLeader", strconv.FormatBool(known))
	h.Set("X-Consul-LastContact", strconv.FormatInt(lastContact.Milliseconds(), 10))
}

// leaderMeta is Consul's KnownLeader and LastContact (0 on the leader) for this server.
func (a *Agent) leaderMeta() (known bool, lastContact time.Duration) {
	addr, _ := a.raft.LeaderWithID()
	if a.raft.State() != raft.Leader {
		if lc := a.raft.LastContact(); !lc.IsZero() {
			lastContact = time.Since(lc)
		}
	}
	return addr != "", lastContact
}

// txnReadResponse is Consul's answer to a read-only transaction (TxnReadResponse): the results
// and the query metadata, in Consul's field order.
type txnReadResponse struct {
	TxnResponse
	Index                 uint64
	LastContact           time.Duration
	KnownLeader           bool
	ConsistencyLevel      string
	NotModified           bool
	Backend               int
	ResultsFilteredByACLs bool
}

// route decides where a request runs. It returns true when the caller should serve it
// locally; false when it was forwarded to the leader (the response is written).
// needLeader=false means any server may answer (stale reads).
func (a *Agent) route(w http.ResponseWriter, r *http.Request, body []byte, mode readMode, write bool) (bool, error) {
	if !write {
		switch {
		case mode == modeStale:
			if a.IsLeader() || !a.raft.LastContact().IsZero() {
				return true, nil
			}
		case mode == modeConsistent && a.cfg.Unsafe[UnsafeStaleConsistentReads]:
			return true, nil // seeded bug: no leadership check, no forwarding
		case mode == modeDefault && a.cfg.Unsafe[UnsafeLongLease] && !a.IsLeader() && a.wasLeader.Load() &&
			time.Since(time.Unix(0, a.lostLeaderAt.Load())) < LongLease:
			return true, nil // seeded bug: a deposed leader still trusts its lease
		}
	}
	deadline := time.Now().Add(a.cfg.HoldTimeout)
	for {
		if a.IsLeader() {
			if write {
				return true, nil
			}
			if mode == modeConsistent {
				if err := a.raft.VerifyLeader().Error(); err != nil {
					return false, errf(http.StatusInternalServerError, "leadership check failed: %v", err)
				}
			}
			if err := a.leaderReady(); err == nil {
				return true, nil
			} else if a.IsLeader() {
				return false, errf(http.StatusInternalServerError, "leader not ready for reads: %v", err)
			}
			continue
		}
		if r.Header.Get(forwardedHeader) != "" {
			return false, errNoLeader
		}
		if target := a.leaderAddr(); target != "" {
			return false, a.forward(w, r, body, target)
		}
		if time.Now().After(deadline) {
			return false, errNoLeader
		}
		select {
		case <-r.Context().Done():
			return false, errNoLeader
		case <-a.shutdownCh:
			return false, errNoLeader
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// leaderAddr returns the Raft address of the current leader, unless that is this server.
func (a *Agent) leaderAddr() string {
	addr, id := a.raft.LeaderWithID()
	if addr == "" || string(id) == a.nodeID {
		return ""
	}
	return string(addr)
}

// forward proxies the request to the leader over keep-alive connections to its server port.
func (a *Agent) forward(w http.ResponseWriter, r *http.Request, body []byte, target string) error {
	var proxyErr error
	rp := &httputil.ReverseProxy{
		Transport: a.proxy,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = target
			pr.Out.Host = target
			pr.Out.Header.Set(forwardedHeader, a.cfg.NodeName)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			proxyErr = errf(http.StatusInternalServerError, "rpc error making call: forwarding to leader %s: %v", target, err)
		},
	}
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	// Bounded as Consul's RPCs (rpc_client_timeout, 60 s, plus the wait of a blocking query): a
	// leader cut off by a partition never closes the connection, and TCP keep-alive would take
	// minutes to notice.
	limit := rpcClientTimeout
	if r.URL.Query().Has("index") {
		limit += maxWait
	}
	ctx, cancel := context.WithTimeout(r.Context(), limit)
	defer cancel()
	rp.ServeHTTP(w, r.WithContext(ctx))
	return proxyErr
}

// rpcClientTimeout bounds a request forwarded to the leader (Consul's rpc_client_timeout).
const rpcClientTimeout = 60 * time.Second

// readBody reads at most limit bytes; a longer body is a 413.
func readBody(r *http.Request, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		return nil, errf(http.StatusBadRequest, "read body: %v", err)
	}
	if len(b) > limit {
		return nil, errf(http.StatusRequestEntityTooLarge, "Request body too large: limit is %d bytes", limit)
	}
	return b, nil
}

// apply submits one command to Raft on the leader and returns the FSM's response.
func (a *Agent) apply(c command) (any, error) {
	f := a.raft.Apply(encodeCommand(c), a.cfg.HoldTimeout)
	if a.cfg.Unsafe[UnsafeAckBeforeCommit] && (c.Op == "set" || c.Op == "delete" || c.Op == "delete-tree") {
		return true, nil // seeded bug: acknowledged before Raft commits it
	}
	if err := a.await(f); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return nil, errNoLeader
		}
		return nil, errf(http.StatusInternalServerError, "%v", err)
	}
	if err, ok := f.Response().(error); ok {
		return nil, &applyError{err}
	}
	return f.Response(), nil
}

// applyError is an error the state machine answered for a command (Consul's RPC endpoints wrap
// it: "apply failed: …", "raft apply failed: …").
type applyError struct{ err error }

func (e *applyError) Error() string { return e.err.Error() }

// rpcError words an error the state machine gave as Consul's HTTP API shows it: after the RPC
// endpoint's prefix, and, when a follower forwarded the request, after "rpc error making call: "
// (Consul 1.20.1 answers so through a follower, and without it on the leader).
func rpcError(err error, applyPrefix string, forwarded bool) error {
	var ae *applyError
	if errors.As(err, &ae) {
		msg := applyPrefix + ae.err.Error()
		if forwarded {
			msg = "rpc error making call: " + msg
		}
		return errf(http.StatusInternalServerError, "%s", msg)
	}
	return err
}

// block runs fn until its index passes opts.index or the wait expires (blocking query).
func (a *Agent) block(r *http.Request, opts queryOptions, fn func() uint64) error {
	var timeout <-chan time.Time
	if opts.index > 0 {
		wait := opts.wait + time.Duration(rand.Int64N(int64(opts.wait/16)+1))
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		watch := a.fsm.WatchCh()
		if idx := fn(); opts.index == 0 || idx > opts.index {
			return nil
		}
		select {
		case <-watch:
			if opts.mode == modeConsistent && !a.cfg.Unsafe[UnsafeStaleConsistentReads] {
				if err := a.raft.VerifyLeader().Error(); err != nil {
					return errf(http.StatusInternalServerError, "leadership check failed: %v", err)
				}
			}
		case <-timeout:
			fn()
			return nil
		case <-r.Context().Done():
			return r.Context().Err()
		case <-a.shutdownCh:
			return errNoLeader
		}
	}
}

func (a *Agent) handleKV(w http.ResponseWriter, r *http.Request, key string) error {
	if err := allow(r, http.MethodGet, http.MethodPut, http.MethodDelete); err != nil {
		return err
	}
	q := r.URL.Query()
	opts, herr := parseQuery(q, a.cfg.Datacenter)
	if herr != nil {
		return herr
	}
	kr, herr := parseKV(r.Method, key, q)
	if herr != nil {
		return herr
	}
	switch r.Method {
	case http.MethodGet:
		return a.kvGet(w, r, opts, kr)
	case http.MethodPut:
		return a.kvPut(w, r, kr)
	default:
		return a.kvDelete(w, r, kr)
	}
}

func (a *Agent) kvGet(w http.ResponseWriter, r *http.Request, opts queryOptions, kr kvRequest) error {
	local, err := a.route(w, r, nil, opts.mode, false)
	if !local || err != nil {
		return err
	}
	var (
		entry   *KVEntry
		entries []*KVEntry
		keys    []string
		index   uint64
	)
	err = a.block(r, opts, func() uint64 {
		switch {
		case kr.keys:
			keys, index = a.fsm.Keys(kr.key, kr.separator)
		case kr.recurse:
			entries, index = a.fsm.List(kr.key)
		default:
			entry, index = a.fsm.Get(kr.key)
		}
		return index
	})
	if err != nil {
		return err
	}
	a.setMeta(w, index)
	switch {
	case kr.keys:
		if len(keys) == 0 && kr.key != "" {
			w.WriteHeader(http.StatusNotFound)
			return nil
		}
		return writeJSON(w, http.StatusOK, keys)
	case kr.recurse:
		if len(entries) == 0 {
			w.WriteHeader(http.StatusNotFound)
			return nil
		}
		return writeJSON(w, http.StatusOK, entries)
	case entry == nil:
		w.WriteHeader(http.StatusNotFound)
		return nil
	case kr.raw:
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "sandbox")
		_, err := w.Write(entry.Value)
		return err
	default:
		return writeJSON(w, http.StatusOK, []*KVEntry{entry})
	}
}

func (a *Agent) kvPut(w http.ResponseWriter, r *http.Request, kr kvRequest) error {
	if r.ContentLength > MaxValueSize {
		return errf(http.StatusRequestEntityTooLarge, "Request body(%d bytes) too large, max size: %d bytes. See https://www.consul.io/docs/agent/config/config-files#kv_max_value_size.", r.ContentLength, MaxValueSize)
	}
	body, err := readBody(r, MaxValueSize)
	if err != nil {
		return err
	}
	op := &TxnKVOp{Key: kr.key, Value: body, Flags: kr.flags}
	if len(body) == 0 {
		op.Value = nil // as Consul: an empty body stores a null value
	}
	verb := "set"
	switch {
	case kr.acquire != "":
		verb, op.Session = "lock", kr.acquire
	case kr.release != "":
		verb, op.Session = "unlock", kr.release
	case kr.cas != nil:
		verb, op.Index = "cas", *kr.cas
		if a.cfg.Unsafe[UnsafeLocalCAS] && r.Header.Get(forwardedHeader) == "" {
			if !a.localCASMatches(kr.key, *kr.cas) {
				return writeJSON(w, http.StatusOK, false)
			}
			verb = "set" // seeded bug: compared locally, written unconditionally
			q := r.URL.Query()
			q.Del("cas")
			r.URL.RawQuery = q.Encode()
		}
	}
	return a.kvWrite(w, r, body, command{Op: verb, KV: op})
}

// localCheckSession is the seeded bug local-check-session: the transaction's check-session ops are
// judged on this server's state and dropped, so what is left goes through Raft unconditionally.
func (a *Agent) localCheckSession(ops []TxnKVOp) ([]TxnKVOp, bool) {
	var rest []TxnKVOp
	for _, op := range ops {
		if op.Verb != "check-session" {
			rest = append(rest, op)
			continue
		}
		if e, _ := a.fsm.Get(op.Key); e == nil || e.Session != op.Session {
			return nil, false
		}
	}
	return rest, true
}

// txnOpsBody is a transaction's ops in the body shape of PUT /v1/txn.
func txnOpsBody(ops []TxnKVOp) []TxnOp {
	out := make([]TxnOp, len(ops))
	for i := range ops {
		out[i] = TxnOp{KV: &ops[i]}
	}
	return out
}

func (a *Agent) localCASMatches(key string, index uint64) bool {
	e, _ := a.fsm.Get(key)
	if index == 0 {
		return e == nil
	}
	return e != nil && e.ModifyIndex == index
}

func (a *Agent) kvDelete(w http.ResponseWriter, r *http.Request, kr kvRequest) error {
	op := &TxnKVOp{Key: kr.key}
	verb := "delete"
	switch {
	case kr.recurse:
		verb = "delete-tree"
	case kr.cas != nil:
		verb, op.Index = "delete-cas", *kr.cas
		if a.cfg.Unsafe[UnsafeLocalCAS] && r.Header.Get(forwardedHeader) == "" {
			if e, _ := a.fsm.Get(kr.key); e != nil && e.ModifyIndex != *kr.cas {
				return writeJSON(w, http.StatusOK, false)
			}
			verb = "delete"
			q := r.URL.Query()
			q.Del("cas")
			r.URL.RawQuery = q.Encode()
		}
	}
	return a.kvWrite(w, r, nil, command{Op: verb, KV: op})
}

func (a *Agent) kvWrite(w http.ResponseWriter, r *http.Request, body []byte, c command) error {
	local, err := a.route(w, r, body, modeDefault, true)
	if !local || err != nil {
		return err
	}
	if c.Op == "lock" && a.lockDelayed(c.KV.Key) {
		return writeJSON(w, http.StatusOK, false)
	}
	res, err := a.apply(c)
	if err != nil {
		return rpcError(err, "raft apply failed: ", r.Header.Get(forwardedHeader) != "")
	}
	ok, _ := res.(bool)
	return writeJSON(w, http.StatusOK, ok)
}

func (a *Agent) handleTxn(w http.ResponseWriter, r *http.Request) error {
	if err := allow(r, http.MethodPut); err != nil {
		return err
	}
	opts, herr := parseQuery(r.URL.Query(), a.cfg.Datacenter)
	if herr != nil {
		return herr
	}
	body, err := readBody(r, MaxTxnBodySize)
	if err != nil {
		return err
	}
	ops, herr := decodeTxn(body)
	if herr != nil {
		return herr
	}
	// As Consul 1.16.3: an unknown verb is a rolled-back transaction (409), not a malformed
	// request; Consul takes a transaction without a write verb for a read, so the server's read
	// path refuses it with its query metadata (Consul 1.20.1 answers "unknown KV operation: X"
	// with KnownLeader false before asking a server: docs/consul-differences.md).
	for i, op := range ops {
		if !validVerbs[op.Verb] {
			local, err := a.route(w, r, body, opts.mode, false)
			if !local || err != nil {
				return err
			}
			a.setLeaderMeta(w)
			resp := txnReadResponse{TxnResponse: TxnResponse{Errors: []TxnError{{OpIndex: i, What: fmt.Sprintf("unknown KV verb %q", op.Verb)}}}, Index: max(a.fsm.Index(), 1)}
			resp.KnownLeader, resp.LastContact = a.leaderMeta()
			return writeJSON(w, http.StatusConflict, resp)
		}
	}
	if a.cfg.Unsafe[UnsafeLocalCheckSession] && r.Header.Get(forwardedHeader) == "" && !isReadOnlyTxn(ops) {
		var ok bool
		if ops, ok = a.localCheckSession(ops); !ok {
			return writeJSON(w, http.StatusConflict, TxnResponse{Errors: []TxnError{{What: "failed session check (local)"}}})
		}
		if body, err = json.Marshal(txnOpsBody(ops)); err != nil {
			return err
		}
	}
	if isReadOnlyTxn(ops) {
		local, err := a.route(w, r, body, opts.mode, false)
		if !local || err != nil {
			return err
		}
		a.setLeaderMeta(w)
		// A read-only transaction answers with Consul's query metadata in the body too.
		read := txnReadResponse{TxnResponse: *a.fsm.ReadTxn(ops), Index: max(a.fsm.Index(), 1)}
		read.KnownLeader, read.LastContact = a.leaderMeta()
		if read.Results == nil && len(read.Errors) == 0 {
			read.Results = []TxnResult{}
		}
		code := http.StatusOK
		if len(read.Errors) > 0 {
			code = http.StatusConflict
		}
		return writeJSON(w, code, read)
	}
	local, err := a.route(w, r, body, modeDefault, true)
	if !local || err != nil {
		return err
	}
	var delayed []TxnError
	for i, op := range ops {
		if op.Verb == "lock" && a.lockDelayed(op.Key) {
			delayed = append(delayed, TxnError{OpIndex: i, What: fmt.Sprintf("failed to lock key %q due to lock delay", op.Key)})
		}
	}
	if len(delayed) > 0 {
		return writeJSON(w, http.StatusConflict, TxnResponse{Errors: delayed})
	}
	res, err := a.apply(command{Op: "txn", Txn: ops})
	if err != nil {
		return err
	}
	resp, _ := res.(*TxnResponse)
	if resp == nil {
		return errf(http.StatusInternalServerError, "transaction gave no result")
	}
	if len(resp.Errors) > 0 {
		return writeJSON(w, http.StatusConflict, resp)
	}
	if resp.Results == nil {
		resp.Results = []TxnResult{}
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (a *Agent) handleStatusLeader(w http.ResponseWriter, r *http.Request) error {
	if err := allow(r, http.MethodGet); err != nil {
		return err
	}
	addr, _ := a.raft.LeaderWithID()
	return writeJSON(w, http.StatusOK, string(addr))
}

func (a *Agent) handleStatusPeers(w http.ResponseWriter, r *http.Request) error {
	if err := allow(r, http.MethodGet); err != nil {
		return err
	}
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	peers := []string{}
	for _, s := range f.Configuration().Servers {
		peers = append(peers, string(s.Address))
	}
	return writeJSON(w, http.StatusOK, peers)
}

// RaftServer is one server of GET /v1/operator/raft/configuration.
type RaftServer struct {
	ID, Node, Address, ProtocolVersion string
	Leader, Voter                      bool
	LastIndex                          uint64
}

func (a *Agent) handleRaftConfiguration(w http.ResponseWriter, r *http.Request) error {
	if err := allow(r, http.MethodGet); err != nil {
		return err
	}
	opts, herr := parseQuery(r.URL.Query(), a.cfg.Datacenter)
	if herr != nil {
		return herr
	}
	if opts.mode != modeStale {
		local, err := a.route(w, r, nil, modeDefault, true)
		if !local || err != nil {
			return err
		}
	}
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	leader, _ := a.raft.LeaderWithID()
	names := map[string][2]string{}
	for _, m := range a.serf.Members() {
		if s, ok := parseServer(m); ok {
			names[s.Addr] = [2]string{m.Name, m.Tags["raft_vsn"]}
		}
	}
	out := struct {
		Servers []RaftServer
		Index   uint64
	}{Servers: []RaftServer{}, Index: f.Index()}
	for _, s := range f.Configuration().Servers {
		n, ok := names[string(s.Address)]
		if !ok {
			n = [2]string{"(unknown)", "unknown"}
		}
		out.Servers = append(out.Servers, RaftServer{
			ID: string(s.ID), Node: n[0], Address: string(s.Address), ProtocolVersion: n[1],
			Leader: s.Address == leader, Voter: s.Suffrage == raft.Voter,
		})
	}
	// As Consul: the configuration's index is in the body; no query-metadata headers.
	return writeJSON(w, http.StatusOK, out)
}

func (a *Agent) handleRaftRemovePeer(w http.ResponseWriter, r *http.Request) error {
	if err := allow(r, http.MethodDelete); err != nil {
		return err
	}
	q := r.URL.Query()
	if _, herr := parseQuery(q, a.cfg.Datacenter); herr != nil {
		return herr
	}
	id, addr := q.Get("id"), q.Get("address")
	if (id == "") == (addr == "") {
		return errf(http.StatusBadRequest, "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove")
	}
	local, err := a.route(w, r, nil, modeDefault, true)
	if !local || err != nil {
		return err
	}
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, s := range f.Configuration().Servers {
		if (id != "" && string(s.ID) == id) || (addr != "" && string(s.Address) == addr) {
			if err := a.raft.RemoveServer(s.ID, 0, 0).Error(); err != nil {
				return err
			}
			a.logger.Printf("[INFO] agent: removed Raft peer %s (%s) by operator request", s.ID, s.Address)
			w.WriteHeader(http.StatusOK)
			return nil
		}
	}
	if id != "" {
		return errf(http.StatusInternalServerError, "id %q was not found in the Raft configuration", id)
	}
	return errf(http.StatusInternalServerError, "address %q was not found in the Raft configuration", addr)
}

// handleRaftBootstrap is the manual-bootstrap step (PUT /v1/operator/raft/bootstrap): this
// server bootstraps a one-voter cluster of itself, exactly as if it had started with
// -bootstrap, and then adds the other servers as they are seen through Serf. It answers
// 409 if this server has any Raft state (already bootstrapped or part of a cluster).
// Not a Consul endpoint: Consul's manual procedure restarts one node with -bootstrap.
func (a *Agent) handleRaftBootstrap(w http.ResponseWriter, r *http.Request) error {
	if err := allow(r, http.MethodPut, http.MethodPost); err != nil {
		return err
	}
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(a.nodeID), Address: a.trans.LocalAddr()}}}
	if err := a.raft.BootstrapCluster(conf).Error(); err != nil {
		if errors.Is(err, raft.ErrCantBootstrap) {
			return errf(http.StatusConflict, "cannot bootstrap: this server already has Raft state (%v)", err)
		}
		return err
	}
	a.bootstrapExpect.Store(0)
	a.logger.Printf("[INFO] agent: manually bootstrapped a one-server cluster")
	return writeJSON(w, http.StatusOK, true)
}

func (a *Agent) handleTransferLeader(w http.ResponseWriter, r *http.Request) error {
	if err := allow(r, http.MethodPost, http.MethodPut); err != nil {
		return err
	}
	local, err := a.route(w, r, nil, modeDefault, true)
	if !local || err != nil {
		return err
	}
	f := a.raft.LeadershipTransfer()
	if id := r.URL.Query().Get("id"); id != "" { // as Consul: to that server
		cf := a.raft.GetConfiguration()
		if err := cf.Error(); err != nil {
			return err
		}
		var addr raft.ServerAddress
		for _, srv := range cf.Configuration().Servers {
			if string(srv.ID) == id {
				addr = srv.Address
			}
		}
		if addr == "" {
			return errf(http.StatusBadRequest, "cannot find server with id %q in the Raft configuration", id)
		}
		f = a.raft.LeadershipTransferToServer(raft.ServerID(id), addr)
	}
	if err := f.Error(); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]bool{"Success": true})
}

// Member is one element of GET /v1/agent/members.
type Member struct {
	Name        string
	Addr        string
	Port        uint16
	Tags        map[string]string
	Status      int
	ProtocolMin uint8
	ProtocolMax uint8
	ProtocolCur uint8
	DelegateMin uint8
	DelegateMax uint8
	DelegateCur uint8
}

func (a *Agent) members() []Member {
	out := []Member{}
	for _, m := range a.serf.Members() {
		tags := map[string]string{}
		for k, v := range m.Tags {
			tags[k] = v
		}
		out = append(out, Member{
			Name: m.Name, Addr: m.Addr.String(), Port: m.Port, Tags: tags, Status: int(m.Status),
			ProtocolMin: m.ProtocolMin, ProtocolMax: m.ProtocolMax, ProtocolCur: m.ProtocolCur,
			DelegateMin: m.DelegateMin, DelegateMax: m.DelegateMax, DelegateCur: m.DelegateCur,
		})
	}
	return out
}

func (a *Agent) handleAgentMembers(w http.ResponseWriter, r *http.Request) error {
	if err := allow(r, http.MethodGet); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.members())
}

func (a *Agent) handleAgentSelf(w http.ResponseWriter, r *http.Request) error {
	if err := allow(r, http.MethodGet); err != nil {
		return err
	}
	leader, _ := a.raft.LeaderWithID()
	lm := a.serf.LocalMember()
	var self Member
	for _, m := range a.members() {
		if m.Name == lm.Name {
			self = m
		}
	}
	raftStats := map[string]string{}
	for k, v := range a.raft.Stats() {
		raftStats[k] = v
	}
	out := map[string]any{
		"Config": map[string]any{
			"Datacenter": a.cfg.Datacenter, "PrimaryDatacenter": a.cfg.Datacenter,
			"NodeName": a.cfg.NodeName, "NodeID": a.nodeID, "Revision": "raftcheck",
			"Server": true, "Version": Version, "BuildDate": "",
		},
		"DebugConfig": map[string]any{
			"Bootstrap": a.cfg.Bootstrap, "BootstrapExpect": a.cfg.BootstrapExpect,
			"DataDir": a.cfg.DataDir, "RaftHeartbeatTimeout": a.cfg.RaftHeartbeatTimeout.String(),
			"RaftElectionTimeout": a.cfg.RaftElectionTimeout.String(), "RaftLeaderLeaseTimeout": a.cfg.RaftLeaderLeaseTimeout.String(),
			"LeaveOnTerm": a.cfg.LeaveOnTerminate, "SkipLeaveOnInt": a.cfg.SkipLeaveOnInterrupt,
			"Unsafe": a.cfg.UnsafeList(), "SessionTTLMin": a.cfg.SessionTTLMin.String(),
		},
		"Coord":  map[string]any{},
		"Member": self,
		"Stats": map[string]map[string]string{
			"agent": {"check_monitors": "0", "checks": "0", "services": "0"},
			"build": {"version": Version, "revision": "raftcheck", "prerelease": ""},
			"consul": {
				"server": "true", "leader": strconv.FormatBool(a.IsLeader()), "leader_addr": string(leader),
				"bootstrap": strconv.FormatBool(a.cfg.Bootstrap), "known_datacenters": "1",
			},
			"raft":     raftStats,
			"serf_lan": {"members": strconv.Itoa(a.serf.NumNodes())},
		},
		"Meta": map[string]string{},
		"xDS":  map[string]any{},
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *Agent) handleAgentJoin(w http.ResponseWriter, r *http.Request, addr string) error {
	if err := allow(r, http.MethodPut); err != nil {
		return err
	}
	if u, err := url.PathUnescape(addr); err == nil {
		addr = u
	}
	if addr == "" {
		return errf(http.StatusBadRequest, "Missing address to join")
	}
	if r.URL.Query().Get("wan") != "" && r.URL.Query().Get("wan") != "0" {
		return errf(http.StatusBadRequest, "WAN join is not supported by this agent")
	}
	if _, err := a.Join(addr); err != nil {
		return errf(http.StatusInternalServerError, "%v", err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// handleAgentLeave leaves gracefully, answers 200 and then shuts the agent down.
func (a *Agent) handleAgentLeave(w http.ResponseWriter, r *http.Request) error {
	if err := allow(r, http.MethodPut); err != nil {
		return err
	}
	if err := a.leaveCluster(); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		a.Shutdown()
	}()
	return nil
}

func (a *Agent) handleForceLeave(w http.ResponseWriter, r *http.Request, node string) error {
	if err := allow(r, http.MethodPut); err != nil {
		return err
	}
	var err error
	if _, prune := r.URL.Query()["prune"]; prune {
		err = a.serf.RemoveFailedNodePrune(node)
	} else {
		err = a.serf.RemoveFailedNode(node)
	}
	if err != nil {
		return errf(http.StatusInternalServerError, "%v", err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

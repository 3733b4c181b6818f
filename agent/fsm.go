package agent

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// KVEntry is one key as the HTTP API shows it (Consul's KVPair). CreateIndex and
// ModifyIndex are Raft log indexes, so they are the same on every server.
type KVEntry struct {
	Key         string
	CreateIndex uint64
	ModifyIndex uint64
	LockIndex   uint64
	Flags       uint64
	Value       []byte
	Session     string `json:",omitempty"`
}

// TxnKVOp is one KV operation of a transaction, in Consul's JSON shape.
type TxnKVOp struct {
	Verb    string
	Key     string
	Value   []byte
	Flags   uint64
	Index   uint64
	Session string
}

// TxnOp is one element of a PUT /v1/txn body. Only KV operations are supported.
type TxnOp struct {
	KV *TxnKVOp `json:",omitempty"`
}

// TxnResult is one element of a transaction's Results.
type TxnResult struct {
	KV *KVEntry `json:",omitempty"`
}

// TxnError names the failing operation of a rolled-back transaction.
type TxnError struct {
	OpIndex int
	What    string
	hard    bool // a single KV request answers 500 with What, not false
}

// TxnResponse is the body of PUT /v1/txn: Results on success, Errors on rollback.
type TxnResponse struct {
	Results []TxnResult
	Errors  []TxnError
}

// command is one Raft log entry. Every KV write, including a whole transaction, is exactly
// one entry, so it is applied all-or-nothing on every server.
type command struct {
	Op  string    // "set", "cas", "delete", "delete-cas", "delete-tree", "txn", "tombstone-reap"
	KV  *TxnKVOp  `json:",omitempty"`
	Txn []TxnKVOp `json:",omitempty"`
	// ReapIndex: "tombstone-reap" removes the tombstones of index ≤ ReapIndex.
	ReapIndex uint64 `json:",omitempty"`
	// Session: "session-create"; SessionID: "session-destroy".
	Session   *Session `json:",omitempty"`
	SessionID string   `json:",omitempty"`
	// Node: "node-register", "node-deregister" (the minimal catalog).
	Node *CatalogNode `json:",omitempty"`
}

// msgpackHandle encodes log entries with MessagePack, as Consul does. Not JSON: keys and values
// are arbitrary bytes, and JSON would turn invalid UTF-8 into U+FFFD (so keys %FE and %FF would
// collide, as the conformance test against Consul showed). Not gob either: a gob stream starts
// with its type descriptions, and decoding those for every entry cost 8% of the CPU of a write
// benchmark (profile in docs/performance.md).
var msgpackHandle = &codec.MsgpackHandle{}

func encodeCommand(c command) []byte {
	var b []byte
	if err := codec.NewEncoderBytes(&b, msgpackHandle).Encode(c); err != nil {
		panic(fmt.Sprintf("encode command: %v", err)) // only plain data: cannot happen
	}
	return b
}

func decodeCommand(data []byte, c *command) error {
	return codec.NewDecoderBytes(data, msgpackHandle).Decode(c)
}

// store is the replicated state machine: a KV map with tombstones so that the index of a
// prefix does not go backwards after a delete. The leader reaps tombstones once they are
// TombstoneTTL old (tombstone.go); as in Consul, a prefix's index may then go backwards.
type store struct {
	mu      sync.RWMutex
	kv      map[string]*KVEntry
	tomb    map[string]uint64
	index   uint64 // KV table index: highest Raft index that changed the KV table
	applied uint64 // highest Raft index applied
	watch   chan struct{}

	// Sessions and the minimal catalog (session.go).
	sessions  map[string]*Session
	nodes     map[string]*CatalogNode
	sessIndex uint64 // sessions table index
	nodeIndex uint64 // nodes table index
	// lockDelay is when each key released by an invalidated session may be locked again. As in
	// Consul it is wall time, local to each server and not replicated: only the leader's is used.
	lockDelay map[string]time.Time
}

func newStore() *store {
	return &store{kv: map[string]*KVEntry{}, tomb: map[string]uint64{}, watch: make(chan struct{}),
		sessions: map[string]*Session{}, nodes: map[string]*CatalogNode{}, lockDelay: map[string]time.Time{}}
}

// Apply implements raft.FSM. It returns bool for single-key writes and *TxnResponse for txns.
func (s *store) Apply(l *raft.Log) any {
	var c command
	if err := decodeCommand(l.Data, &c); err != nil {
		return fmt.Errorf("decode log entry %d: %w", l.Index, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify(l.Index)
	switch c.Op {
	case "txn":
		return s.txnLocked(c.Txn, l.Index)
	case "session-create":
		return s.sessionCreateLocked(c.Session, l.Index)
	case "session-destroy":
		s.sessionDestroyLocked(c.SessionID, l.Index)
		return nil
	case "node-register":
		s.nodeRegisterLocked(c.Node, l.Index)
		return nil
	case "node-deregister":
		s.nodeDeregisterLocked(c.Node.Node, l.Index)
		return nil
	case "tombstone-reap":
		for k, t := range s.tomb {
			if t <= c.ReapIndex {
				delete(s.tomb, k)
			}
		}
		return nil
	default:
		if c.KV == nil {
			return fmt.Errorf("log entry %d: op %q without KV", l.Index, c.Op)
		}
		op := *c.KV
		op.Verb = c.Op
		r := s.txnLocked([]TxnKVOp{op}, l.Index)
		if len(r.Errors) > 0 && r.Errors[0].hard {
			return errf(http.StatusInternalServerError, "%s", r.Errors[0].What)
		}
		return len(r.Errors) == 0
	}
}

// notify records an applied index and wakes blocking queries. Caller holds mu.
func (s *store) notify(idx uint64) {
	if idx > s.applied {
		s.applied = idx
	}
	close(s.watch)
	s.watch = make(chan struct{})
}

// WatchCh returns a channel closed at the next applied change.
func (s *store) WatchCh() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.watch
}

// Get returns a copy of one entry (nil if missing) and the index to report for it.
func (s *store) Get(key string) (*KVEntry, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e, ok := s.kv[key]; ok {
		c := *e
		return &c, e.ModifyIndex
	}
	return nil, s.index
}

// List returns copies of all entries under prefix, sorted by key, and the prefix index:
// the highest modify index of an entry or tombstone under it, else the table index.
func (s *store) List(prefix string) ([]*KVEntry, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*KVEntry
	var idx uint64
	for k, e := range s.kv {
		if strings.HasPrefix(k, prefix) {
			c := *e
			out = append(out, &c)
			idx = max(idx, e.ModifyIndex)
		}
	}
	for k, t := range s.tomb {
		if strings.HasPrefix(k, prefix) {
			idx = max(idx, t)
		}
	}
	if idx == 0 {
		idx = s.index
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, idx
}

// Keys lists keys under prefix, folded at the first separator after the prefix.
func (s *store) Keys(prefix, sep string) ([]string, uint64) {
	entries, idx := s.List(prefix)
	seen := map[string]bool{}
	out := []string{}
	for _, e := range entries {
		k := e.Key
		if sep != "" {
			if i := strings.Index(k[len(prefix):], sep); i >= 0 {
				k = k[:len(prefix)+i+len(sep)]
			}
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, idx
}

// ReadTxn evaluates a read-only transaction against local state.
func (s *store) ReadTxn(ops []TxnKVOp) *TxnResponse {
	if !isReadOnlyTxn(ops) {
		return &TxnResponse{Errors: []TxnError{{What: "not a read-only transaction"}}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.txnLocked(ops, 0)
}

// Tombstones returns how many tombstones there are and the highest index among them.
func (s *store) Tombstones() (n int, maxIndex uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.tomb {
		maxIndex = max(maxIndex, t)
	}
	return len(s.tomb), maxIndex
}

// Index returns the KV table index.
func (s *store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

type undo struct {
	key     string
	prev    *KVEntry
	hadTomb bool
	tomb    uint64
}

// txnLocked runs ops in order at Raft index idx, collecting every error; if any op fails
// all changes are undone. Caller holds mu.
func (s *store) txnLocked(ops []TxnKVOp, idx uint64) *TxnResponse {
	var undos []undo
	resp := &TxnResponse{}
	save := func(key string) {
		u := undo{key: key, prev: s.kv[key]}
		u.tomb, u.hadTomb = s.tomb[key]
		undos = append(undos, u)
	}
	put := func(op TxnKVOp) *KVEntry {
		save(op.Key)
		e := &KVEntry{Key: op.Key, CreateIndex: idx, ModifyIndex: idx, Flags: op.Flags, Value: op.Value}
		if old, ok := s.kv[op.Key]; ok {
			e.CreateIndex, e.LockIndex, e.Session = old.CreateIndex, old.LockIndex, old.Session
		}
		s.kv[op.Key] = e
		delete(s.tomb, op.Key)
		s.index = max(s.index, idx)
		return e
	}
	del := func(key string) {
		if _, ok := s.kv[key]; !ok {
			return
		}
		save(key)
		delete(s.kv, key)
		s.tomb[key] = idx
		s.index = max(s.index, idx)
	}
	meta := func(e *KVEntry) *KVEntry { c := *e; c.Value = nil; return &c }
	full := func(e *KVEntry) *KVEntry { c := *e; return &c }
	fail := func(i int, format string, a ...any) {
		resp.Errors = append(resp.Errors, TxnError{OpIndex: i, What: fmt.Sprintf(format, a...)})
	}
	// hardFail is an error that a single KV request answers with 500, not false (an invalid
	// session, as Consul).
	hardFail := func(i int, format string, a ...any) {
		resp.Errors = append(resp.Errors, TxnError{OpIndex: i, What: fmt.Sprintf(format, a...), hard: true})
	}
	for i, op := range ops {
		cur, exists := s.kv[op.Key]
		switch op.Verb {
		case "set":
			resp.Results = append(resp.Results, TxnResult{KV: meta(put(op))})
		case "cas":
			if (op.Index == 0 && exists) || (op.Index != 0 && (!exists || cur.ModifyIndex != op.Index)) {
				fail(i, "failed to set key %q, index is stale", op.Key)
				continue
			}
			resp.Results = append(resp.Results, TxnResult{KV: meta(put(op))})
		case "get":
			if !exists {
				fail(i, "key %q doesn't exist", op.Key)
				continue
			}
			resp.Results = append(resp.Results, TxnResult{KV: full(cur)})
		case "get-or-empty":
			if exists {
				resp.Results = append(resp.Results, TxnResult{KV: full(cur)})
			} else { // as Consul: an empty entry (Value null, indexes 0) for a missing key
				resp.Results = append(resp.Results, TxnResult{KV: &KVEntry{Key: op.Key}})
			}
		case "get-tree":
			var keys []string
			for k := range s.kv {
				if strings.HasPrefix(k, op.Key) {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				resp.Results = append(resp.Results, TxnResult{KV: full(s.kv[k])})
			}
		case "check-index":
			if !exists {
				fail(i, "failed to check index, key %q doesn't exist", op.Key)
			} else if cur.ModifyIndex != op.Index {
				fail(i, "failed index check for key %q, current modify index %d != %d", op.Key, cur.ModifyIndex, op.Index)
			} else {
				resp.Results = append(resp.Results, TxnResult{KV: meta(cur)})
			}
		case "check-session":
			if !exists {
				fail(i, "failed to check session, key %q doesn't exist", op.Key)
			} else if cur.Session != op.Session {
				fail(i, "failed session check for key %q, current session %q != %q", op.Key, cur.Session, op.Session)
			} else {
				resp.Results = append(resp.Results, TxnResult{KV: meta(cur)})
			}
		case "check-not-exists":
			if exists {
				fail(i, "key %q exists", op.Key)
			}
		case "delete":
			del(op.Key)
		case "delete-tree":
			var keys []string
			for k := range s.kv {
				if strings.HasPrefix(k, op.Key) {
					keys = append(keys, k)
				}
			}
			for _, k := range keys {
				del(k)
			}
		case "delete-cas":
			// As Consul: deleting a missing key succeeds; cas=0 never deletes an existing one.
			if exists && cur.ModifyIndex != op.Index {
				fail(i, "failed to delete key %q, index is stale", op.Key)
				continue
			}
			del(op.Key)
		case "lock":
			if op.Session == "" {
				hardFail(i, "missing session")
				continue
			}
			if s.sessions[op.Session] == nil {
				hardFail(i, "invalid session %q", op.Session)
				continue
			}
			if exists && cur.Session != "" && cur.Session != op.Session {
				fail(i, "failed to lock key %q, lock is already held", op.Key)
				continue
			}
			e := put(op)
			e.Session = op.Session
			switch {
			case !exists:
				e.LockIndex = 1
			case cur.Session != op.Session:
				e.LockIndex = cur.LockIndex + 1
			}
			resp.Results = append(resp.Results, TxnResult{KV: meta(e)})
		case "unlock":
			if op.Session == "" {
				hardFail(i, "missing session")
				continue
			}
			if !exists || cur.Session != op.Session {
				fail(i, "failed to unlock key %q, lock isn't held, or is held by another session", op.Key)
				continue
			}
			e := put(op)
			e.Session = ""
			resp.Results = append(resp.Results, TxnResult{KV: meta(e)})
		default:
			fail(i, "unknown KV verb %q", op.Verb)
		}
	}
	if len(resp.Errors) > 0 {
		for i := len(undos) - 1; i >= 0; i-- {
			u := undos[i]
			if u.prev != nil {
				s.kv[u.key] = u.prev
			} else {
				delete(s.kv, u.key)
			}
			if u.hadTomb {
				s.tomb[u.key] = u.tomb
			} else {
				delete(s.tomb, u.key)
			}
		}
		resp.Results = nil
	}
	// s.index may have advanced on a rolled-back txn; that only makes blocking queries
	// return early, which Consul allows, and keeps the index monotonic.
	return resp
}

var readVerbs = map[string]bool{"get": true, "get-or-empty": true, "get-tree": true, "check-index": true, "check-session": true, "check-not-exists": true}

func isReadOnlyTxn(ops []TxnKVOp) bool {
	for _, op := range ops {
		if !readVerbs[op.Verb] {
			return false
		}
	}
	return true
}

type snapshotData struct {
	KV        map[string]*KVEntry
	Tomb      map[string]uint64
	Index     uint64
	Sessions  map[string]*Session
	Nodes     map[string]*CatalogNode
	SessIndex uint64
	NodeIndex uint64
}

// Snapshot implements raft.FSM.
func (s *store) Snapshot() (raft.FSMSnapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(snapshotData{KV: s.kv, Tomb: s.tomb, Index: s.index,
		Sessions: s.sessions, Nodes: s.nodes, SessIndex: s.sessIndex, NodeIndex: s.nodeIndex}); err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return fsmSnapshot(buf.Bytes()), nil
}

// Restore implements raft.FSM.
func (s *store) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var d snapshotData
	if err := gob.NewDecoder(rc).Decode(&d); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.KV == nil {
		d.KV = map[string]*KVEntry{}
	}
	if d.Tomb == nil {
		d.Tomb = map[string]uint64{}
	}
	if d.Sessions == nil {
		d.Sessions = map[string]*Session{}
	}
	if d.Nodes == nil {
		d.Nodes = map[string]*CatalogNode{}
	}
	s.kv, s.tomb, s.index = d.KV, d.Tomb, d.Index
	s.sessions, s.nodes, s.sessIndex, s.nodeIndex = d.Sessions, d.Nodes, d.SessIndex, d.NodeIndex
	s.notify(0)
	return nil
}

type fsmSnapshot []byte

func (f fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(f); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (f fsmSnapshot) Release() {}

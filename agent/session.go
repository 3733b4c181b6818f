package agent

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"
)

// Session is Consul's session (structs.Session as the HTTP API shows it).
type Session struct {
	ID            string
	Name          string
	Node          string
	LockDelay     time.Duration
	Behavior      string
	TTL           string
	NodeChecks    []string
	ServiceChecks []ServiceCheck
	CreateIndex   uint64
	ModifyIndex   uint64
}

// ServiceCheck is a session's service check; the agent has no services, so none can be named.
type ServiceCheck struct {
	ID        string
	Namespace string
}

// CatalogNode is one node of the minimal catalog: every Serf member, with its serfHealth check.
type CatalogNode struct {
	ID          string
	Node        string
	Address     string
	Status      string // of its serfHealth check: passing or critical
	CreateIndex uint64
	ModifyIndex uint64
	// CheckCreateIndex and CheckModifyIndex are the serfHealth check's own indexes.
	CheckCreateIndex uint64
	CheckModifyIndex uint64
}

// Consul's constants for sessions and the Serf health check.
const (
	serfCheckID          = "serfHealth"
	serfCheckName        = "Serf Health Status"
	serfCheckAliveOutput = "Agent alive and reachable"
	serfCheckFailOutput  = "Agent not live or unreachable"
	checkPassing         = "passing"
	checkCritical        = "critical"

	behaviorRelease = "release"
	behaviorDelete  = "delete"

	// DefaultSessionTTLMin and SessionTTLMax bound a session's TTL (Consul's session_ttl_min
	// default, configurable, and structs.SessionTTLMax); a session expires once
	// SessionTTLMultiplier × TTL passes without a renew; MaxLockDelay caps the lock-delay.
	DefaultSessionTTLMin = 10 * time.Second
	SessionTTLMax        = 24 * time.Hour
	SessionTTLMultiplier = 2
	MaxLockDelay         = 60 * time.Second
)

func (s *Session) clone() *Session {
	c := *s
	c.NodeChecks = slices.Clone(s.NodeChecks)
	c.ServiceChecks = slices.Clone(s.ServiceChecks)
	return &c
}

// sessionCreateLocked is Consul's sessionCreateTxn: the node must be registered and every node
// check must exist and not be critical. It returns the session's ID, or an error value.
func (s *store) sessionCreateLocked(sess *Session, idx uint64) any {
	if sess == nil || sess.ID == "" {
		return errf(http.StatusInternalServerError, "Missing session ID")
	}
	switch sess.Behavior {
	case "":
		sess.Behavior = behaviorRelease
	case behaviorRelease, behaviorDelete:
	default:
		return errf(http.StatusInternalServerError, "Invalid session behavior: %s", sess.Behavior)
	}
	n := s.nodes[sess.Node]
	if n == nil {
		return errf(http.StatusInternalServerError, "Missing node registration")
	}
	for _, c := range sess.NodeChecks {
		if c != serfCheckID {
			return errf(http.StatusInternalServerError, "Missing check '%s' registration", c)
		}
		if n.Status == checkCritical {
			return errf(http.StatusInternalServerError, "Check '%s' is in %s state", c, n.Status)
		}
	}
	if len(sess.ServiceChecks) > 0 {
		return errf(http.StatusInternalServerError, "Missing check '%s' registration", sess.ServiceChecks[0].ID)
	}
	c := sess.clone()
	c.CreateIndex, c.ModifyIndex = idx, idx
	s.sessions[c.ID] = c
	s.sessIndex = max(s.sessIndex, idx)
	return c.ID
}

// sessionDestroyLocked is Consul's deleteSessionTxn: the session goes, and the keys it holds are
// released (Session cleared, ModifyIndex bumped, LockIndex kept) or deleted, per its behavior;
// each of them gets the session's lock-delay (capped at MaxLockDelay) from this server's clock.
func (s *store) sessionDestroyLocked(id string, idx uint64) {
	sess := s.sessions[id]
	if sess == nil {
		return
	}
	delete(s.sessions, id)
	s.sessIndex = max(s.sessIndex, idx)
	delay := min(sess.LockDelay, MaxLockDelay)
	now := time.Now()
	var held []string
	for k, e := range s.kv {
		if e.Session == id {
			held = append(held, k)
		}
	}
	for _, k := range held {
		if sess.Behavior == behaviorDelete {
			delete(s.kv, k)
			s.tomb[k] = idx
		} else {
			e := *s.kv[k]
			e.Session, e.ModifyIndex = "", idx
			s.kv[k] = &e
		}
		s.index = max(s.index, idx)
		if delay > 0 {
			s.lockDelay[k] = now.Add(delay)
		}
	}
	if len(s.lockDelay) > 1024 { // bounded: expired delays go
		for k, until := range s.lockDelay {
			if !until.After(now) {
				delete(s.lockDelay, k)
			}
		}
	}
}

// nodeRegisterLocked registers or updates a node and its serfHealth check. A check turning
// critical invalidates the sessions that name it.
func (s *store) nodeRegisterLocked(n *CatalogNode, idx uint64) {
	if n == nil || n.Node == "" {
		return
	}
	cur := s.nodes[n.Node]
	c := *n
	if cur == nil {
		c.CreateIndex, c.ModifyIndex, c.CheckCreateIndex, c.CheckModifyIndex = idx, idx, idx, idx
	} else {
		c.CreateIndex, c.ModifyIndex = cur.CreateIndex, cur.ModifyIndex
		c.CheckCreateIndex, c.CheckModifyIndex = cur.CheckCreateIndex, cur.CheckModifyIndex
		if cur.ID != c.ID || cur.Address != c.Address {
			c.ModifyIndex = idx
		}
		if cur.Status != c.Status {
			c.CheckModifyIndex = idx
		}
	}
	s.nodes[c.Node] = &c
	s.nodeIndex = max(s.nodeIndex, idx)
	if c.Status == checkCritical {
		for _, id := range s.sessionIDsLocked(func(x *Session) bool {
			return x.Node == c.Node && slices.Contains(x.NodeChecks, serfCheckID)
		}) {
			s.sessionDestroyLocked(id, idx)
		}
	}
}

// nodeDeregisterLocked removes a node; every session of the node is invalidated.
func (s *store) nodeDeregisterLocked(node string, idx uint64) {
	if s.nodes[node] == nil {
		return
	}
	delete(s.nodes, node)
	s.nodeIndex = max(s.nodeIndex, idx)
	for _, id := range s.sessionIDsLocked(func(x *Session) bool { return x.Node == node }) {
		s.sessionDestroyLocked(id, idx)
	}
}

func (s *store) sessionIDsLocked(match func(*Session) bool) []string {
	var ids []string
	for id, x := range s.sessions {
		if match(x) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Sessions returns copies of the sessions that match (all when match is nil), ordered by ID, and
// the sessions table index.
func (s *store) Sessions(match func(*Session) bool) ([]*Session, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*Session{}
	for _, id := range s.sessionIDsLocked(func(x *Session) bool { return match == nil || match(x) }) {
		out = append(out, s.sessions[id].clone())
	}
	return out, s.sessIndex
}

// Session returns a copy of one session, or nil.
func (s *store) Session(id string) *Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if x := s.sessions[id]; x != nil {
		return x.clone()
	}
	return nil
}

// Nodes returns copies of the catalog's nodes ordered by name, and the nodes table index.
func (s *store) Nodes() ([]*CatalogNode, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*CatalogNode{}
	for _, n := range s.nodes {
		c := *n
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, s.nodeIndex
}

// Node returns a copy of one catalog node, or nil.
func (s *store) Node(name string) *CatalogNode {
	n, _ := s.NodeAt(name)
	return n
}

// NodeAt returns a copy of one catalog node (nil if missing) and the nodes table index.
func (s *store) NodeAt(name string) (*CatalogNode, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n := s.nodes[name]; n != nil {
		c := *n
		return &c, s.nodeIndex
	}
	return nil, s.nodeIndex
}

// LockDelay returns until when key may not be locked (the zero time if it may).
func (s *store) LockDelay(key string) time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lockDelay[key]
}

// String names a session for logs.
func (s *Session) String() string {
	return fmt.Sprintf("session %s (node %s, ttl %q)", s.ID, s.Node, s.TTL)
}

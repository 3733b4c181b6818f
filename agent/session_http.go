package agent

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// sessionRequest is the body of PUT /v1/session/create as Consul decodes it: LockDelay is a
// duration string or a number (nanoseconds, or seconds below 1000), and Checks is the deprecated
// name of NodeChecks.
type sessionRequest struct {
	Name          string
	Node          string
	LockDelay     any
	Behavior      string
	TTL           string
	NodeChecks    []string
	ServiceChecks []ServiceCheck
	Checks        []string
	// Namespace and Partition are Consul Enterprise's; CE accepts and ignores empty ones.
	Namespace string
	Partition string
}

// lockDelayMinThreshold: a LockDelay below it is taken as seconds (Consul's rule).
const lockDelayMinThreshold = 1000

// parseSessionCreate applies Consul's defaults and fix-ups (SessionCreate, fixupEmptySessionChecks)
// to a create request received from a client.
func (a *Agent) parseSessionCreate(body []byte) (*Session, error) {
	req := sessionRequest{Node: a.cfg.NodeName, NodeChecks: []string{serfCheckID}, Checks: []string{serfCheckID}}
	sess := &Session{LockDelay: 15 * time.Second, Behavior: behaviorRelease}
	if len(body) > 0 {
		// As Consul 1.20 (measured): unknown fields are ignored.
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&req); err != nil {
			return nil, errf(http.StatusBadRequest, "Request decode failed: %v", err)
		}
		if req.Namespace != "" || req.Partition != "" {
			return nil, errf(http.StatusBadRequest, "Request decode failed: namespaces and partitions are Consul Enterprise features")
		}
		if req.LockDelay != nil {
			var d time.Duration
			switch v := req.LockDelay.(type) {
			case string:
				var err error
				if d, err = time.ParseDuration(v); err != nil {
					return nil, errf(http.StatusBadRequest, "Request decode failed: %v", err)
				}
			case float64:
				d = time.Duration(v)
			default:
				return nil, errf(http.StatusBadRequest, "Request decode failed: LockDelay must be a duration or a number, got %T", v)
			}
			if d < lockDelayMinThreshold {
				d *= time.Second
			}
			sess.LockDelay = d
		}
	}
	switch {
	case len(req.Checks) == 0:
		req.NodeChecks = []string{}
	case len(req.Checks) == 1 && req.Checks[0] == serfCheckID:
		req.Checks = nil
	case len(req.NodeChecks) == 0:
		req.Checks = nil
	}
	sess.Name, sess.Node, sess.TTL, sess.ServiceChecks = req.Name, req.Node, req.TTL, req.ServiceChecks
	if req.Behavior != "" {
		sess.Behavior = req.Behavior
	}
	sess.NodeChecks = req.NodeChecks
	for _, c := range req.Checks { // the deprecated field joins NodeChecks
		if !slices.Contains(sess.NodeChecks, c) {
			sess.NodeChecks = append(sess.NodeChecks, c)
		}
	}
	// Session.Apply's checks, in its order and words.
	if sess.Node == "" {
		return nil, a.rpcErrf("Must provide Node")
	}
	switch sess.Behavior {
	case behaviorRelease, behaviorDelete:
	default:
		return nil, a.rpcErrf("Invalid Behavior setting '%s'", sess.Behavior)
	}
	if sess.TTL != "" {
		ttl, err := time.ParseDuration(sess.TTL)
		if err != nil {
			return nil, a.rpcErrf("Session TTL '%s' invalid: %v", sess.TTL, err)
		}
		if ttl != 0 && (ttl < a.cfg.SessionTTLMin || ttl > SessionTTLMax) {
			return nil, a.rpcErrf("Invalid Session TTL '%d', must be between [%v=%v]", ttl, a.cfg.SessionTTLMin, SessionTTLMax)
		}
	}
	return sess, nil
}

// rpcErrf is an error of Session.Apply, which Consul runs on the leader: a follower's answer says
// so ("rpc error making call: …"), the leader's does not. parseSessionCreate runs on the server the
// client asked, so it words the error by that server's role.
func (a *Agent) rpcErrf(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if !a.IsLeader() {
		msg = "rpc error making call: " + msg
	}
	return errf(http.StatusInternalServerError, "%s", msg)
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (a *Agent) handleSession(w http.ResponseWriter, r *http.Request, rest string) error {
	verb, arg, _ := strings.Cut(rest, "/")
	method := http.MethodGet
	switch verb {
	case "create", "destroy", "renew":
		method = http.MethodPut
	case "info", "list", "node":
	default:
		return errf(http.StatusNotFound, "Invalid URL path: not a recognized HTTP API endpoint")
	}
	if err := allow(r, method); err != nil {
		return err
	}
	opts, herr := parseQuery(r.URL.Query(), a.cfg.Datacenter)
	if herr != nil {
		return herr
	}
	needArg := map[string]string{"destroy": "Missing session", "renew": "Missing session", "info": "Missing session", "node": "Missing node name"}
	if msg, ok := needArg[verb]; ok && arg == "" {
		return errf(http.StatusBadRequest, "%s", msg)
	}
	switch verb {
	case "create":
		return a.sessionCreate(w, r)
	case "destroy":
		return a.sessionDestroy(w, r, arg)
	case "renew":
		return a.sessionRenew(w, r, arg)
	case "info":
		return a.sessionRead(w, r, opts, func(s *Session) bool { return s.ID == arg })
	case "node":
		return a.sessionRead(w, r, opts, func(s *Session) bool { return s.Node == arg })
	default:
		return a.sessionRead(w, r, opts, nil)
	}
}

func (a *Agent) sessionCreate(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r, MaxTxnBodySize)
	if err != nil {
		return err
	}
	var sess *Session
	if r.Header.Get(forwardedHeader) != "" {
		// Normalised by the server the client asked (its node name is the default Node).
		sess = &Session{}
		if err := json.Unmarshal(body, sess); err != nil {
			return errf(http.StatusBadRequest, "Request decode failed: %v", err)
		}
	} else if sess, err = a.parseSessionCreate(body); err != nil {
		return err
	}
	normal, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	local, err := a.route(w, r, normal, modeDefault, true)
	if !local || err != nil {
		return err
	}
	for {
		sess.ID = newUUID()
		if a.fsm.Session(sess.ID) == nil {
			break
		}
	}
	res, err := a.apply(command{Op: "session-create", Session: sess})
	if err != nil {
		return rpcError(err, "apply failed: ", r.Header.Get(forwardedHeader) != "")
	}
	id, _ := res.(string)
	if sess.TTL != "" {
		a.timers.reset(a, sess)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"ID": id})
}

func (a *Agent) sessionDestroy(w http.ResponseWriter, r *http.Request, id string) error {
	local, err := a.route(w, r, []byte{}, modeDefault, true)
	if !local || err != nil {
		return err
	}
	if a.fsm.Session(id) == nil {
		return writeJSON(w, http.StatusOK, true) // as Consul: nothing to destroy is fine
	}
	if _, err := a.apply(command{Op: "session-destroy", SessionID: id}); err != nil {
		return err
	}
	a.timers.stop(id)
	return writeJSON(w, http.StatusOK, true)
}

// sessionRenew runs on the leader, which owns the TTL timers (Consul's Session.Renew).
func (a *Agent) sessionRenew(w http.ResponseWriter, r *http.Request, id string) error {
	local, err := a.route(w, r, []byte{}, modeDefault, true)
	if !local || err != nil {
		return err
	}
	if err := a.leaderReady(); err != nil {
		return errNoLeader
	}
	sess := a.fsm.Session(id)
	if sess == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "Session id '%s' not found", id)
		return nil
	}
	a.timers.reset(a, sess)
	return writeJSON(w, http.StatusOK, []*Session{sess}) // as Consul: no query metadata
}

func (a *Agent) sessionRead(w http.ResponseWriter, r *http.Request, opts queryOptions, match func(*Session) bool) error {
	local, err := a.route(w, r, nil, opts.mode, false)
	if !local || err != nil {
		return err
	}
	var out []*Session
	var index uint64
	if err := a.block(r, opts, func() uint64 { out, index = a.fsm.Sessions(match); return index }); err != nil {
		return err
	}
	a.setMeta(w, index)
	return writeJSON(w, http.StatusOK, out)
}

// sessionTimers are the leader's TTL timers (Consul's session_ttl.go): a session expires once
// SessionTTLMultiplier × TTL passes without a renew. A new leader arms a full period for every
// session with a TTL; a server that loses leadership drops its timers.
type sessionTimers struct {
	mu  sync.Mutex
	m   map[string]armedTimer
	gen uint64
}

type armedTimer struct {
	t   *time.Timer
	gen uint64
}

func (t *sessionTimers) reset(a *Agent, s *Session) {
	ttl, err := time.ParseDuration(s.TTL)
	if err != nil || ttl <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]armedTimer{}
	}
	if old, ok := t.m[s.ID]; ok {
		old.t.Stop()
	}
	t.gen++
	id, gen := s.ID, t.gen
	expiry := ttl * SessionTTLMultiplier
	if a.cfg.Unsafe[UnsafeSessionTTL1x] {
		expiry = ttl // seeded bug: Consul waits 2×TTL
	}
	t.m[id] = armedTimer{t: time.AfterFunc(expiry, func() { a.invalidateSession(id, gen) }), gen: gen}
}

func (t *sessionTimers) stop(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.m[id]; ok {
		old.t.Stop()
		delete(t.m, id)
	}
}

func (t *sessionTimers) stopAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, old := range t.m {
		old.t.Stop()
		delete(t.m, id)
	}
}

// current reports whether the timer armed as gen is still the one for id (not reset or stopped).
func (t *sessionTimers) current(id string, gen uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.m[id]
	return ok && old.gen == gen
}

// invalidateSession destroys an expired session through Raft, retrying as Consul does (6
// attempts, from 10 ms), while this server leads and the timer was not re-armed meanwhile.
func (a *Agent) invalidateSession(id string, gen uint64) {
	for attempt := 0; attempt < 6; attempt++ {
		if !a.IsLeader() || !a.timers.current(id, gen) {
			return
		}
		_, err := a.apply(command{Op: "session-destroy", SessionID: id})
		if err == nil {
			a.timers.stop(id)
			a.logger.Printf("[DEBUG] agent: session %s expired (TTL)", id)
			return
		}
		a.logger.Printf("[ERR] agent: invalidate session %s: %v", id, err)
		select {
		case <-a.shutdownCh:
			return
		case <-time.After((10 * time.Millisecond) << attempt):
		}
	}
	a.logger.Printf("[ERR] agent: maximum revoke attempts reached for session %s", id)
}

// armSessionTimers gives every session with a TTL a full period, on gaining leadership.
func (a *Agent) armSessionTimers() {
	if a.cfg.Unsafe[UnsafeSessionTimersNotRearmed] {
		return // seeded bug: only a renew (or a new session) arms a timer on this leader
	}
	all, _ := a.fsm.Sessions(func(s *Session) bool { return s.TTL != "" })
	for _, s := range all {
		a.timers.reset(a, s)
	}
}

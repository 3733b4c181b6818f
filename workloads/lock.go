package workloads

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/raftcheck/harness/history"
)

// Lock is the lock workload: workers contend for a few locks through consul/api's Lock, the way
// leader election and `consul lock` use Consul. Each attempt creates a session of its own (TTL
// LockSessionTTL, lock-delay LockDelay; with the node's serfHealth check as api.Lock does by
// default, or TTL-only as Patroni creates them: Config.Lock.Sessions), acquires
// <prefix>lock/<name> with api.Lock (retrying its monitor query as `consul lock` does), and while
// it holds the lock performs fenced writes to the lock's resource <prefix>lock-resource/<name>:
// one transaction [check-session on the lock key, set the resource, get the lock key], which
// Consul commits only while the session holds the lock.
//
// How long a holding lasts and how it ends is the shape (Config.Lock): a share of holdings stall
// (held 1.2–6 TTLs without a renew, as a hung client, so that the session expires); of the others
// one in eight holds up to lockLongHoldMax, renewing, and the rest 0.3–2 s. A holder stops when
// the hold time is over, when a fenced write is rolled back, or when api.Lock's channel reports the
// lock lost; then it releases (Unlock) and destroys its session — or, for a share of holders
// (abandon), destroys the session without releasing, as a client shutting down does, so that
// Consul releases the lock itself and keeps the lock-delay.
//
// Every step is recorded with the lock's name as key (docs/design.md, "The lock workload"):
// session, acquire, fenced-write, confirm (who held the key after a rolled-back fenced write),
// renew, lost, release, destroy, and the final read.
//
// The number of locks is Concurrency/3 (at least 1, at most Keys), so about three workers contend
// for each. Config.Rate is not used: a holder writes every lockWriteEvery.
type Lock struct {
	procs  processes
	values [maxLocks]atomic.Int64 // next fenced-write value per lock
	tokens atomic.Int64
}

// Timing of the lock workload. Consul's smallest session TTL is 10 s (SessionTTLMin), and a
// session expires once 2×TTL passes without a renew.
const (
	// LockSessionTTL is every session's TTL.
	LockSessionTTL = 10 * time.Second
	// LockDelay is every session's lock-delay: after an invalidation of a session that held a
	// lock, Consul refuses to let anyone acquire that lock for this long (Consul's default is 15 s;
	// shorter here so that runs of 30 s see several hand-overs).
	LockDelay = 3 * time.Second

	maxLocks        = 16
	lockAcquireWait = 3 * time.Second        // a worker gives up acquiring after this (api.Lock's stopCh)
	lockWaitTime    = 1 * time.Second        // api.LockOptions.LockWaitTime: blocking-query wait while acquiring
	lockQueryWait   = 2 * time.Second        // api.Config.WaitTime: the wait of api.Lock's monitor query
	lockHTTPTimeout = 5 * time.Second        // bounds every call api.Lock makes (it takes no context)
	lockHoldMin     = 300 * time.Millisecond // a holder keeps the lock between these …
	lockHoldMax     = 2 * time.Second        // … two durations, then releases; but one in lockLongEvery …
	lockLongEvery   = 8                      // … (of those that do not stall) …
	lockLongHoldMax = 30 * time.Second       // … holds up to this long, as a leader would, long enough to outlast a fault
	lockStallMin    = LockSessionTTL * 6 / 5 // a stalled holder holds this long at least: past 1×TTL …
	lockStallMax    = 6 * LockSessionTTL     // … and at most this long: past 2×TTL, so that its session expires (then its fenced write is rolled back and it stops), and long enough to outlive a leader change by 2×TTL
	lockMonitorTry  = 3                      // api.LockOptions.MonitorRetries, as `consul lock` (-monitor-retry=3) …
	lockMonitorWait = 1 * time.Second        // … and its MonitorRetryTime
	lockWriteEvery  = 100 * time.Millisecond // pause between a holder's fenced writes
	lockPauseMax    = 300 * time.Millisecond // pause between a worker's attempts
)

// Session kinds recorded in a session op's value ("checks").
const (
	LockChecksNode = "node" // the node's serfHealth check (api.Lock's default) and the TTL
	LockChecksNone = "none" // TTL only (NodeChecks: [], as python-consul's checks=[])
)

// Session kinds of LockShape.Sessions.
const (
	LockSessionsMixed = "mixed" // even workers node, odd workers TTL-only
	LockSessionsNode  = "node"  // every session with the node's serfHealth check
	LockSessionsTTL   = "ttl"   // every session TTL-only
)

// LockSessionKinds lists the valid LockShape.Sessions values.
var LockSessionKinds = []string{LockSessionsMixed, LockSessionsNode, LockSessionsTTL}

// LockShape is how the lock workload's holdings last and end. The zero value has no stalled
// holders, no abandons and mixed sessions; DefaultLockShape is the harness's default.
type LockShape struct {
	// Stall is the share of holdings (0–1) that never renew and hold 1.2–6 TTLs: their sessions
	// expire (at 2×TTL in Consul) while they hold.
	Stall float64
	// Abandon is the share of holders (0–1) that end by destroying their session without
	// releasing: Consul then releases the lock and applies the session's lock-delay.
	Abandon float64
	// Sessions is mixed (""), node or ttl: which sessions carry the node's serfHealth check.
	Sessions string
}

// DefaultLockShape is the shape `harness run --workload lock` uses unless told otherwise.
func DefaultLockShape() LockShape {
	return LockShape{Stall: 0.2, Abandon: 0.2, Sessions: LockSessionsMixed}
}

// Validate names the first bad field.
func (s LockShape) Validate() error {
	switch {
	case !(s.Stall >= 0 && s.Stall <= 1):
		return fmt.Errorf("lock stall share must be between 0 and 1, got %g", s.Stall)
	case !(s.Abandon >= 0 && s.Abandon <= 1):
		return fmt.Errorf("lock abandon share must be between 0 and 1, got %g", s.Abandon)
	case s.Sessions != "" && !slices.Contains(LockSessionKinds, s.Sessions):
		return fmt.Errorf("lock sessions must be one of %s, got %q", strings.Join(LockSessionKinds, ", "), s.Sessions)
	}
	return nil
}

// checks is the session kind of worker w.
func (s LockShape) checks(w int) string {
	switch {
	case s.Sessions == LockSessionsNode:
		return LockChecksNode
	case s.Sessions == LockSessionsTTL, w%2 == 1:
		return LockChecksNone
	}
	return LockChecksNode
}

// LockValue is the value of every lock workload op; fields a step does not know are left out.
type LockValue struct {
	Session     string `json:"session,omitempty"`
	Checks      string `json:"checks,omitempty"`        // session: node or none
	TTLMillis   int64  `json:"ttl_ms,omitempty"`        // session: TTL
	DelayMillis int64  `json:"lock_delay_ms,omitempty"` // session: lock-delay
	Value       *int64 `json:"value,omitempty"`         // fenced-write: the value written; read: the resource's value
	Index       uint64 `json:"index,omitempty"`         // acquire, read: the lock key's ModifyIndex; fenced-write: the resource's ModifyIndex (the commit's Raft index)
	LockIndex   uint64 `json:"lock_index,omitempty"`    // acquire, fenced-write, read: the lock key's LockIndex
	Holder      string `json:"holder,omitempty"`        // fenced-write, read, lost: the session the lock key named (get in the same transaction)
	Ended       bool   `json:"ended,omitempty"`         // lost: a consistent read showed the lock key no longer held by the session
}

// Name returns "lock".
func (*Lock) Name() string { return "lock" }

func lockName(i int) string { return "l" + strconv.Itoa(i) }

func lockCount(cfg Config) int { return max(1, min(cfg.Concurrency/3, cfg.Keys, maxLocks)) }

func (cfg Config) lockKey(name string) string     { return cfg.KeyPrefix + "lock/" + name }
func (cfg Config) resourceKey(name string) string { return cfg.KeyPrefix + "lock-resource/" + name }

// lockClient is a worker's consul/api client. Unlike the KV workloads' client it has a client
// timeout: api.Lock's calls take no context, and a request to a partitioned node would otherwise
// hang for ever.
type lockClient struct {
	ep Endpoint
	c  *api.Client
	tr *http.Transport
}

func newLockClient(ep Endpoint) (*lockClient, error) {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	c, err := api.NewClient(&api.Config{
		Address:    ep.Addr,
		Scheme:     "http",
		Transport:  tr,
		WaitTime:   lockQueryWait,
		HttpClient: &http.Client{Transport: tr, Timeout: lockHTTPTimeout},
	})
	if err != nil {
		return nil, fmt.Errorf("consul client for %s (%s): %w", ep.Name, ep.Addr, err)
	}
	return &lockClient{ep: ep, c: c, tr: tr}, nil
}

// lockWorker is one worker's state: its process (renewed after an info) and its client.
type lockWorker struct {
	l   *Lock
	cfg Config
	c   *lockClient
	p   history.Process
	rng *rand.Rand
}

// Run contends for the locks until ctx is done; a holder at that moment releases first.
func (l *Lock) Run(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	clients := make([]*lockClient, cfg.Concurrency)
	for w := range clients {
		if clients[w], err = newLockClient(cfg.Endpoints[w%len(cfg.Endpoints)]); err != nil {
			return err
		}
	}
	base := l.procs.block(cfg.Concurrency)
	done := make(chan struct{}, cfg.Concurrency)
	for w, c := range clients {
		go func() {
			defer func() { done <- struct{}{} }()
			defer c.tr.CloseIdleConnections()
			lw := &lockWorker{l: l, cfg: cfg, c: c, p: base + history.Process(w), rng: rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(w)))}
			checks := cfg.Lock.checks(w)
			for ctx.Err() == nil {
				lw.attempt(ctx, lockName(lw.rng.IntN(lockCount(cfg))), checks)
				sleepCtx(ctx, time.Duration(lw.rng.Int64N(int64(lockPauseMax))))
			}
		}()
	}
	for range clients {
		<-done
	}
	return nil
}

// complete records the completion of inv and retires the process after an info.
func (w *lockWorker) complete(inv history.Op, t history.Type, v LockValue, errText string) history.Type {
	w.cfg.Recorder.Complete(inv, t, history.MustValue(v), w.c.ep.Name, errText)
	if t == history.Info {
		w.p = w.l.procs.fresh()
	}
	return t
}

func (w *lockWorker) invoke(f, lock string, v LockValue) history.Op {
	return w.cfg.Recorder.Invoke(w.p, f, lock, history.MustValue(v))
}

// attempt is one session's life: create, acquire, hold with fenced writes, release, destroy.
func (w *lockWorker) attempt(ctx context.Context, lock, checks string) {
	sid, created := w.createSession(ctx, lock, checks)
	if !created {
		return
	}
	lk, err := w.c.c.LockOpts(&api.LockOptions{
		Key:              w.cfg.lockKey(lock),
		Value:            []byte(fmt.Sprintf("%d %s", w.l.tokens.Add(1), w.c.ep.Name)),
		Session:          sid,
		LockWaitTime:     lockWaitTime,
		MonitorRetries:   lockMonitorTry,
		MonitorRetryTime: lockMonitorWait,
	})
	if err != nil { // only for a bad key or TTL: a programming error
		panic(fmt.Sprintf("lock workload: api.LockOpts: %v", err))
	}
	lostCh, ok := w.acquire(ctx, lk, lock, sid)
	if !ok {
		w.destroy(ctx, lock, sid)
		return
	}
	renewed := time.Now()
	hold, stalled := w.holdTime()
	abandon := w.rng.Float64() < w.cfg.Lock.Abandon
	until := time.Now().Add(hold)
	lost := false
hold:
	for time.Now().Before(until) && ctx.Err() == nil {
		select {
		case <-lostCh:
			lost = true
			break hold
		default:
		}
		if !stalled && time.Since(renewed) > LockSessionTTL/2 {
			if w.renew(ctx, lock, sid) == history.OK {
				renewed = time.Now()
			}
		}
		if _, rolledBack := w.fencedWrite(ctx, lock, sid); rolledBack {
			w.confirm(ctx, lock, sid)
			break // the session no longer holds the lock
		}
		select {
		case <-lostCh:
			lost = true
			break hold
		case <-time.After(lockWriteEvery):
		}
	}
	if !lost {
		select {
		case <-lostCh:
			lost = true
		default:
		}
	}
	if lost {
		w.lost(ctx, lock, sid)
	}
	if !abandon || lost {
		w.release(lk, lock, sid)
	}
	// An abandoning holder destroys its session while it may still hold the lock: Consul
	// releases the lock then, with the session's lock-delay. api.Lock's monitor sees the key
	// released and ends; its lost channel is not read any more.
	w.destroy(ctx, lock, sid)
}

// holdTime draws how long a holding lasts and whether its holder stalls (never renews).
func (w *lockWorker) holdTime() (time.Duration, bool) {
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(w.rng.Int64N(int64(hi-lo))) }
	switch {
	case w.rng.Float64() < w.cfg.Lock.Stall:
		return between(lockStallMin, lockStallMax), true
	case w.rng.IntN(lockLongEvery) == 0:
		return between(lockHoldMin, lockLongHoldMax), false
	}
	return between(lockHoldMin, lockHoldMax), false
}

// lost records that api.Lock reported the lock lost, with a consistent read of the lock key: Ended
// says the key no longer named the session then, so the release that follows cannot be what
// ended the holding. The read's failure is recorded in the error; the notice itself stays ok.
func (w *lockWorker) lost(ctx context.Context, lock, sid string) {
	inv := w.invoke("lost", lock, LockValue{Session: sid})
	v := LockValue{Session: sid}
	pair, err := w.readLockKey(ctx, lock)
	if err != nil {
		w.complete(inv, history.OK, v, "read: "+errText(err))
		return
	}
	if pair == nil || pair.Session != sid {
		v.Ended = true
		v.observe(pair)
	}
	w.complete(inv, history.OK, v, "")
}

// readLockKey reads the lock key (consistent); nil when it does not exist.
func (w *lockWorker) readLockKey(ctx context.Context, lock string) (*api.KVPair, error) {
	octx, cancel := opContext(ctx, w.cfg.OpTimeout)
	defer cancel()
	pair, _, err := w.c.c.KV().Get(w.cfg.lockKey(lock), queryOptions(octx, ReadConsistent))
	return pair, err
}

// observe copies the lock key's holder, ModifyIndex and LockIndex into v (nothing for nil).
func (v *LockValue) observe(pair *api.KVPair) {
	if pair != nil {
		v.Holder, v.Index, v.LockIndex = pair.Session, pair.ModifyIndex, pair.LockIndex
	}
}

// confirm reads the lock key (consistent) after a rolled-back fenced write and records who held it:
// Consul judges check-session in Raft order, so a key that still names the session with the
// acquisition's LockIndex after the rollback means check-session refused a holder.
func (w *lockWorker) confirm(ctx context.Context, lock, sid string) {
	inv := w.invoke("confirm", lock, LockValue{Session: sid})
	v := LockValue{Session: sid}
	pair, err := w.readLockKey(ctx, lock)
	if err != nil {
		w.complete(inv, history.Fail, v, errText(err))
		return
	}
	v.observe(pair)
	w.complete(inv, history.OK, v, "")
}

// createSession creates the attempt's session; ok only when its ID is known.
func (w *lockWorker) createSession(ctx context.Context, lock, checks string) (string, bool) {
	v := LockValue{Checks: checks, TTLMillis: LockSessionTTL.Milliseconds(), DelayMillis: LockDelay.Milliseconds()}
	inv := w.invoke("session", lock, v)
	octx, cancel := opContext(ctx, w.cfg.OpTimeout)
	defer cancel()
	se := &api.SessionEntry{Name: "raftcheck " + lock, TTL: LockSessionTTL.String(), LockDelay: LockDelay, Behavior: api.SessionBehaviorRelease}
	wo := (&api.WriteOptions{}).WithContext(octx)
	var id string
	var err error
	if checks == LockChecksNone {
		id, _, err = w.c.c.Session().CreateNoChecks(se, wo)
	} else {
		id, _, err = w.c.c.Session().Create(se, wo)
	}
	if err == nil && id == "" {
		err = errors.New("session create answered no ID")
	}
	if err != nil {
		w.complete(inv, writeOutcome(err), v, errText(err))
		sleepCtx(ctx, 200*time.Millisecond) // a cluster that refuses sessions is not hammered
		return "", false
	}
	v.Session = id
	w.complete(inv, history.OK, v, "")
	return id, true
}

// acquire runs api.Lock's Lock, giving up after lockAcquireWait, then reads the lock key once
// (consistent) for its ModifyIndex and LockIndex. ok is true when the lock is held.
func (w *lockWorker) acquire(ctx context.Context, lk *api.Lock, lock, sid string) (<-chan struct{}, bool) {
	inv := w.invoke("acquire", lock, LockValue{Session: sid})
	stop := make(chan struct{})
	t := time.AfterFunc(lockAcquireWait, func() { close(stop) })
	lostCh, err := lk.Lock(stop)
	t.Stop()
	switch {
	case err != nil:
		// api.Lock wraps the cause with %v; only a failed acquire PUT may have taken the lock.
		typ := history.Fail
		if strings.HasPrefix(err.Error(), "failed to acquire lock") {
			typ = history.Info
		}
		w.complete(inv, typ, LockValue{Session: sid}, truncate(err.Error(), 120))
		return nil, false
	case lostCh == nil:
		w.complete(inv, history.Fail, LockValue{Session: sid}, "not acquired within "+lockAcquireWait.String())
		return nil, false
	}
	v := LockValue{Session: sid}
	if pair, err := w.readLockKey(ctx, lock); err == nil && pair != nil && pair.Session == sid {
		v.Index, v.LockIndex = pair.ModifyIndex, pair.LockIndex
	}
	w.complete(inv, history.OK, v, "")
	return lostCh, true
}

// fencedWrite writes a fresh value to the lock's resource in one transaction with
// check-session on the lock key, and reads the lock key in the same transaction. rolledBack
// says Consul refused it because the session does not hold the lock.
func (w *lockWorker) fencedWrite(ctx context.Context, lock, sid string) (t history.Type, rolledBack bool) {
	n := w.l.values[lockIndexOf(lock)].Add(1)
	v := LockValue{Session: sid, Value: &n}
	inv := w.invoke("fenced-write", lock, v)
	octx, cancel := opContext(ctx, w.cfg.OpTimeout)
	defer cancel()
	lockKey, resKey := w.cfg.lockKey(lock), w.cfg.resourceKey(lock)
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: lockKey, Session: sid}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: resKey, Value: []byte(strconv.FormatInt(n, 10))}},
		{KV: &api.KVTxnOp{Verb: api.KVGet, Key: lockKey}},
	}
	ok, resp, _, err := w.c.c.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(octx))
	switch {
	case err != nil:
		return w.complete(inv, writeOutcome(err), v, errText(err)), false
	case !ok:
		why := lockRolledBack
		if resp != nil && len(resp.Errors) > 0 {
			why += ": " + resp.Errors[0].What
		}
		return w.complete(inv, history.Fail, v, truncate(why, 120)), true
	}
	for _, r := range resp.Results {
		if r == nil || r.KV == nil {
			continue
		}
		switch r.KV.Key {
		case resKey:
			v.Index = r.KV.ModifyIndex
		case lockKey:
			v.Holder, v.LockIndex = r.KV.Session, r.KV.LockIndex
		}
	}
	return w.complete(inv, history.OK, v, ""), false
}

// lockRolledBack begins the error of a fenced write that Consul rolled back (the checker counts
// those apart from other failures).
const lockRolledBack = "rolled back"

// renew renews the session; fail when Consul no longer knows it (404).
func (w *lockWorker) renew(ctx context.Context, lock, sid string) history.Type {
	v := LockValue{Session: sid}
	inv := w.invoke("renew", lock, v)
	octx, cancel := opContext(ctx, w.cfg.OpTimeout)
	defer cancel()
	e, _, err := w.c.c.Session().Renew(sid, (&api.WriteOptions{}).WithContext(octx))
	switch {
	case err != nil:
		return w.complete(inv, writeOutcome(err), v, errText(err))
	case e == nil:
		return w.complete(inv, history.Fail, v, "session not found")
	}
	return w.complete(inv, history.OK, v, "")
}

// release unlocks through api.Lock (which ignores whether Consul released anything: ok means
// the release request was applied, not that the session still held the lock).
func (w *lockWorker) release(lk *api.Lock, lock, sid string) {
	v := LockValue{Session: sid}
	inv := w.invoke("release", lock, v)
	err := lk.Unlock()
	switch {
	case err == nil:
		w.complete(inv, history.OK, v, "")
	case errors.Is(err, api.ErrLockNotHeld):
		w.complete(inv, history.Fail, v, "lock not held")
	default:
		w.complete(inv, history.Info, v, truncate(err.Error(), 120))
	}
}

// destroy destroys the session, which releases anything it still holds (with lock-delay).
func (w *lockWorker) destroy(ctx context.Context, lock, sid string) {
	v := LockValue{Session: sid}
	inv := w.invoke("destroy", lock, v)
	octx, cancel := opContext(ctx, w.cfg.OpTimeout)
	defer cancel()
	if _, err := w.c.c.Session().Destroy(sid, (&api.WriteOptions{}).WithContext(octx)); err != nil {
		w.complete(inv, writeOutcome(err), v, errText(err))
		return
	}
	w.complete(inv, history.OK, v, "")
}

// Final reads every lock key and its resource through every endpoint (consistent): the holder,
// ModifyIndex and LockIndex of the lock key and the resource's value.
func (l *Lock) Final(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	return forEachEndpoint(cfg, func(c *client) {
		p := l.procs.fresh()
		for i := 0; i < lockCount(cfg) && ctx.Err() == nil; i++ {
			name := lockName(i)
			inv := cfg.Recorder.Invoke(p, "read", name, history.MustValue(nil))
			v, err := finalLockRead(ctx, cfg, c, name)
			if err != nil {
				cfg.Recorder.Complete(inv, history.Fail, inv.Value, c.ep.Name, errText(err))
				continue
			}
			cfg.Recorder.Complete(inv, history.OK, history.MustValue(v), c.ep.Name, "")
		}
	})
}

func finalLockRead(ctx context.Context, cfg Config, c *client, name string) (LockValue, error) {
	octx, cancel := opContext(ctx, cfg.OpTimeout)
	defer cancel()
	var v LockValue
	pair, _, err := c.kv.Get(cfg.lockKey(name), queryOptions(octx, ReadConsistent))
	if err != nil {
		return v, err
	}
	if pair != nil {
		v.Holder, v.Index, v.LockIndex = pair.Session, pair.ModifyIndex, pair.LockIndex
	}
	res, _, err := c.kv.Get(cfg.resourceKey(name), queryOptions(octx, ReadConsistent))
	if err != nil {
		return v, err
	}
	if res != nil {
		n, err := decodeInt(res.Value)
		if err != nil {
			return v, fmt.Errorf("resource %s: %w", name, err)
		}
		v.Value = &n
	}
	return v, nil
}

func lockIndexOf(name string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(name, "l"))
	return i % maxLocks
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

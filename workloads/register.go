package workloads

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"

	"github.com/hashicorp/consul/api"
	"github.com/raftcheck/harness/history"
)

// Register is the linearizable-register workload: independent keys r0…r{Keys-1}, each a
// register of integers read, written and compare-and-set by every worker. Written values are
// unique per key (a per-key counter), which keeps the linearizability check cheap.
//
// CAS follows Jepsen's Consul client: a consistent read, a comparison with the expected value,
// then a PUT ?cas=<ModifyIndex of that read>. A value mismatch or a false answer is fail.
type Register struct {
	procs processes
	mu    sync.Mutex
	keys  map[string]*registerKey
}

type registerKey struct {
	next  int64 // last value handed out for a write or cas
	last  int64 // a value recently read or written, the expected value of the next cas
	known bool
}

// Name returns "register".
func (*Register) Name() string { return "register" }

func registerKeyName(i int) string { return "r" + strconv.Itoa(i) }

// nextValue returns a value never written before to key.
func (r *Register) nextValue(key string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state(key)
	s.next++
	return s.next
}

// lastValue returns a value recently seen for key, if any.
func (r *Register) lastValue(key string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state(key)
	return s.last, s.known
}

func (r *Register) saw(key string, v int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state(key)
	s.last, s.known = v, true
}

func (r *Register) state(key string) *registerKey {
	if r.keys == nil {
		r.keys = map[string]*registerKey{}
	}
	s := r.keys[key]
	if s == nil {
		s = &registerKey{}
		r.keys[key] = s
	}
	return s
}

// Run drives read, write and cas operations on random keys until ctx is done. After an info
// completion a worker continues under a new process and reads first, which settles the
// unknown write sooner and keeps the check cheap (as etcd's robustness traffic does).
func (r *Register) Run(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	lim := newLimiter(cfg.Rate)
	return runWorkers(ctx, cfg, &r.procs, func(ctx context.Context, w int, p history.Process, c *client) {
		rng := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(w)))
		readNext := false
		for lim.wait(ctx) == nil {
			key := registerKeyName(rng.IntN(cfg.Keys))
			f := [...]string{"read", "write", "cas"}[rng.IntN(3)]
			if readNext {
				f = "read"
			}
			var t history.Type
			switch f {
			case "read":
				t = r.read(ctx, cfg, c, p, key, cfg.ReadMode)
			case "write":
				t = r.write(ctx, cfg, c, p, key)
			case "cas":
				t = r.cas(ctx, cfg, c, p, key)
			}
			readNext = t == history.Info
			if t == history.Info {
				p = r.procs.fresh()
			}
		}
	})
}

// Final reads every key through every endpoint in consistent mode, one process per endpoint.
func (r *Register) Final(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	return forEachEndpoint(cfg, func(c *client) {
		p := r.procs.fresh()
		for i := 0; i < cfg.Keys && ctx.Err() == nil; i++ {
			r.read(ctx, cfg, c, p, registerKeyName(i), ReadConsistent)
		}
	})
}

// read records a read of key: ok with the value or null (or, when the stored value is not an
// integer, with the raw value as a string), fail on any error (a read has no effect, so an
// unknown outcome is as good as none).
func (r *Register) read(ctx context.Context, cfg Config, c *client, p history.Process, key, mode string) history.Type {
	rec := cfg.Recorder
	inv := rec.Invoke(p, "read", key, history.MustValue(nil))
	octx, cancel := opContext(ctx, cfg.OpTimeout)
	defer cancel()
	pair, _, err := c.kv.Get(cfg.KeyPrefix+key, queryOptions(octx, mode))
	if err != nil {
		rec.Complete(inv, history.Fail, inv.Value, c.ep.Name, errText(err))
		return history.Fail
	}
	if pair == nil {
		rec.Complete(inv, history.OK, history.MustValue(nil), c.ep.Name, "")
		return history.OK
	}
	v, err := decodeInt(pair.Value)
	if err != nil {
		// The read happened and returned something no write wrote: record what it returned (as a
		// JSON string), so that the checker names the corruption instead of it passing as a fail.
		rec.Complete(inv, history.OK, history.MustValue(string(pair.Value)), c.ep.Name, "corrupt register: "+err.Error())
		return history.OK
	}
	r.saw(key, v)
	rec.Complete(inv, history.OK, history.MustValue(v), c.ep.Name, "")
	return history.OK
}

// write records a PUT of a fresh value.
func (r *Register) write(ctx context.Context, cfg Config, c *client, p history.Process, key string) history.Type {
	rec := cfg.Recorder
	v := r.nextValue(key)
	inv := rec.Invoke(p, "write", key, history.MustValue(v))
	octx, cancel := opContext(ctx, cfg.OpTimeout)
	defer cancel()
	_, err := c.kv.Put(&api.KVPair{Key: cfg.KeyPrefix + key, Value: []byte(strconv.FormatInt(v, 10))}, (&api.WriteOptions{}).WithContext(octx))
	if err != nil {
		t := writeOutcome(err)
		rec.Complete(inv, t, inv.Value, c.ep.Name, errText(err))
		return t
	}
	r.saw(key, v)
	rec.Complete(inv, history.OK, inv.Value, c.ep.Name, "")
	return history.OK
}

// cas records a compare-and-set from a recently seen value to a fresh one. With no value seen
// yet for key it writes instead, so that later cas operations have something to expect.
func (r *Register) cas(ctx context.Context, cfg Config, c *client, p history.Process, key string) history.Type {
	expected, ok := r.lastValue(key)
	if !ok {
		return r.write(ctx, cfg, c, p, key)
	}
	rec := cfg.Recorder
	v := r.nextValue(key)
	inv := rec.Invoke(p, "cas", key, history.MustValue([2]int64{expected, v}))
	octx, cancel := opContext(ctx, cfg.OpTimeout)
	defer cancel()
	ckey := cfg.KeyPrefix + key
	pair, _, err := c.kv.Get(ckey, queryOptions(octx, ReadConsistent))
	if err != nil {
		// Nothing was written yet: the cas certainly did not happen.
		rec.Complete(inv, history.Fail, inv.Value, c.ep.Name, "cas read: "+errText(err))
		return history.Fail
	}
	if pair == nil {
		rec.Complete(inv, history.Fail, inv.Value, c.ep.Name, "cas: key missing")
		return history.Fail
	}
	cur, err := decodeInt(pair.Value)
	if err != nil {
		rec.Complete(inv, history.Fail, inv.Value, c.ep.Name, "cas: corrupt register: "+err.Error())
		return history.Fail
	}
	if cur != expected {
		r.saw(key, cur)
		rec.Complete(inv, history.Fail, inv.Value, c.ep.Name, fmt.Sprintf("cas: value is %d", cur))
		return history.Fail
	}
	swapped, _, err := c.kv.CAS(&api.KVPair{Key: ckey, Value: []byte(strconv.FormatInt(v, 10)), ModifyIndex: pair.ModifyIndex},
		(&api.WriteOptions{}).WithContext(octx))
	switch {
	case err != nil:
		t := writeOutcome(err)
		rec.Complete(inv, t, inv.Value, c.ep.Name, errText(err))
		return t
	case !swapped:
		rec.Complete(inv, history.Fail, inv.Value, c.ep.Name, "cas: modify index changed")
		return history.Fail
	}
	r.saw(key, v)
	rec.Complete(inv, history.OK, inv.Value, c.ep.Name, "")
	return history.OK
}

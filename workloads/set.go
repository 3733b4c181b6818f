package workloads

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/consul/api"
	"github.com/raftcheck/harness/history"
)

// Set is the set workload: every worker adds unique integers n, each stored as its own key
// <prefix>set/<n> with value n; Final lists the prefix through every endpoint. The set checker
// then finds lost (acknowledged but missing) and unexpected elements.
type Set struct {
	procs processes
	next  atomic.Int64
}

// Name returns "set".
func (*Set) Name() string { return "set" }

// Run adds fresh integers until ctx is done.
func (s *Set) Run(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	lim := newLimiter(cfg.Rate)
	return runWorkers(ctx, cfg, &s.procs, func(ctx context.Context, w int, p history.Process, c *client) {
		for lim.wait(ctx) == nil {
			if s.add(ctx, cfg, c, p) == history.Info {
				p = s.procs.fresh()
			}
		}
	})
}

func (s *Set) add(ctx context.Context, cfg Config, c *client, p history.Process) history.Type {
	rec := cfg.Recorder
	n := s.next.Add(1)
	inv := rec.Invoke(p, "add", "", history.MustValue(n))
	octx, cancel := opContext(ctx, cfg.OpTimeout)
	defer cancel()
	v := strconv.FormatInt(n, 10)
	_, err := c.kv.Put(&api.KVPair{Key: cfg.KeyPrefix + "set/" + v, Value: []byte(v)}, (&api.WriteOptions{}).WithContext(octx))
	if err != nil {
		t := writeOutcome(err)
		rec.Complete(inv, t, inv.Value, c.ep.Name, errText(err))
		return t
	}
	rec.Complete(inv, history.OK, inv.Value, c.ep.Name, "")
	return history.OK
}

// Final lists the set through every endpoint in consistent mode; each read is ok with the
// sorted elements, or fail.
func (s *Set) Final(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	return forEachEndpoint(cfg, func(c *client) {
		rec := cfg.Recorder
		inv := rec.Invoke(s.procs.fresh(), "read", "", history.MustValue(nil))
		octx, cancel := opContext(ctx, cfg.OpTimeout)
		defer cancel()
		pairs, _, err := c.kv.List(cfg.KeyPrefix+"set/", queryOptions(octx, ReadConsistent))
		if err != nil {
			rec.Complete(inv, history.Fail, inv.Value, c.ep.Name, errText(err))
			return
		}
		elems := make([]int64, 0, len(pairs))
		for _, kv := range pairs {
			v, err := decodeInt(kv.Value)
			if err != nil {
				// Fall back to the key, which names the element too.
				v, err = decodeInt([]byte(strings.TrimPrefix(kv.Key, cfg.KeyPrefix+"set/")))
			}
			if err != nil {
				rec.Complete(inv, history.Fail, inv.Value, c.ep.Name, "corrupt element "+kv.Key+": "+err.Error())
				return
			}
			elems = append(elems, v)
		}
		slices.Sort(elems)
		rec.Complete(inv, history.OK, history.MustValue(elems), c.ep.Name, "")
	})
}

// forEachEndpoint runs fn once per endpoint in parallel, each with a fresh client.
func forEachEndpoint(cfg Config, fn func(c *client)) error {
	clients := make([]*client, len(cfg.Endpoints))
	for i, ep := range cfg.Endpoints {
		c, err := newClient(ep)
		if err != nil {
			return err
		}
		clients[i] = c
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.close()
			fn(c)
		}()
	}
	wg.Wait()
	return nil
}

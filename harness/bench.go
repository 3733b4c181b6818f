package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
)

// BenchOptions configure a throughput comparison of targets.
type BenchOptions struct {
	Targets  []string      // target specs, e.g. agent and consul
	Nodes    int           // servers per cluster
	Clients  int           // concurrent consul/api clients, spread over the nodes
	Duration time.Duration // per measurement
	Rounds   int           // measurements per target and operation, alternating targets
	Store    string        // where the kept-cluster records go (removed after)
}

// BenchResult is one measurement.
type BenchResult struct {
	Target string
	Op     string // "write" (PUT, through Raft) or "read" (?consistent GET)
	Round  int
	OpsPer float64 // successful operations per second
	P50    time.Duration
	P99    time.Duration
	Errors int
}

// Bench starts a cluster of each target once, then measures consistent writes and consistent
// reads through consul/api for Duration, Rounds times, alternating the targets so that both see
// the same machine load; the clusters are removed at the end.
func Bench(ctx context.Context, bo BenchOptions, log io.Writer) ([]BenchResult, error) {
	type cluster struct {
		target string
		addrs  []string
		id     string
		store  string
	}
	var clusters []cluster
	defer func() {
		for _, c := range clusters {
			_, _ = ClusterDown(context.WithoutCancel(ctx), c.store, c.id)
		}
	}()
	for _, t := range bo.Targets {
		o := Defaults()
		o.Target, o.Nodes, o.Name, o.Store = t, bo.Nodes, "bench", bo.Store
		rec, err := ClusterUp(ctx, o, log)
		if err != nil {
			return nil, fmt.Errorf("cluster of %s: %w", t, err)
		}
		c := cluster{target: rec.Options.Target, id: rec.ID, store: bo.Store}
		for _, n := range rec.Nodes {
			c.addrs = append(c.addrs, n.HTTPAddr)
		}
		clusters = append(clusters, c)
		fmt.Fprintf(log, "harness: bench: %s cluster %s up\n", c.target, c.id)
	}
	var out []BenchResult
	for round := 1; round <= bo.Rounds; round++ {
		for _, op := range []string{"write", "read"} {
			for _, c := range clusters {
				r, err := benchOnce(ctx, c.addrs, bo.Clients, bo.Duration, op)
				if err != nil {
					return out, err
				}
				r.Target, r.Round = c.target, round
				fmt.Fprintf(log, "harness: bench: round %d %-5s %-14s %8.0f ops/s  p50 %v  p99 %v  errors %d\n",
					round, op, c.target, r.OpsPer, r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Errors)
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func benchOnce(ctx context.Context, addrs []string, clients int, d time.Duration, op string) (BenchResult, error) {
	cls := make([]*api.Client, clients)
	for i := range cls {
		cfg := api.DefaultNonPooledConfig()
		cfg.Address = addrs[i%len(addrs)]
		cfg.HttpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
		c, err := api.NewClient(cfg)
		if err != nil {
			return BenchResult{}, err
		}
		cls[i] = c
	}
	// The read keys exist before reads are timed.
	for i := range clients {
		if _, err := cls[i].KV().Put(&api.KVPair{Key: "bench/" + strconv.Itoa(i), Value: []byte("0")}, nil); err != nil {
			return BenchResult{}, fmt.Errorf("bench set-up write: %w", err)
		}
	}
	var ok, errs atomic.Int64
	lat := make([][]time.Duration, clients)
	bctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			kv := cls[i].KV()
			key := "bench/" + strconv.Itoa(i)
			for n := 0; bctx.Err() == nil; n++ {
				t0 := time.Now()
				var err error
				if op == "write" {
					_, err = kv.Put(&api.KVPair{Key: key, Value: []byte(strconv.Itoa(n))}, (&api.WriteOptions{}).WithContext(bctx))
				} else {
					_, _, err = kv.Get(key, (&api.QueryOptions{RequireConsistent: true}).WithContext(bctx))
				}
				if bctx.Err() != nil {
					return
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				ok.Add(1)
				lat[i] = append(lat[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := BenchResult{Op: op, OpsPer: float64(ok.Load()) / el.Seconds(), Errors: int(errs.Load())}
	if len(all) > 0 {
		r.P50, r.P99 = all[len(all)/2], all[len(all)*99/100]
	}
	return r, nil
}

// BenchSummary is the median throughput of each target and operation, and each target's ratio to
// the first target.
func BenchSummary(rs []BenchResult) string {
	med := func(t, op string) float64 {
		var xs []float64
		for _, r := range rs {
			if r.Target == t && r.Op == op {
				xs = append(xs, r.OpsPer)
			}
		}
		if len(xs) == 0 {
			return 0
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	seen := []string{}
	for _, r := range rs {
		if !slices.Contains(seen, r.Target) {
			seen = append(seen, r.Target)
		}
	}
	s := fmt.Sprintf("%-16s %14s %14s\n", "target", "writes/s", "reads/s")
	for _, t := range seen {
		s += fmt.Sprintf("%-16s %14.0f %14.0f\n", t, med(t, "write"), med(t, "read"))
	}
	if len(seen) >= 2 {
		a, b := seen[0], seen[1]
		if med(b, "write") > 0 && med(b, "read") > 0 {
			s += fmt.Sprintf("%s / %s: writes %.2f×, reads %.2f× (medians of %d rounds, same run)\n", a, b,
				med(a, "write")/med(b, "write"), med(a, "read")/med(b, "read"), len(rs)/(2*len(seen)))
		}
	}
	return s
}

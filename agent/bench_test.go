package agent

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// benchClients runs b.N operations over 16 concurrent consul/api clients spread over the
// three servers (so two thirds are forwarded to the leader) and reports ops/s, p50, p99.
func benchClients(b *testing.B, op func(kv *api.KV, i int) error) { benchClientsWith(b, nil, op) }

func benchClientsWith(b *testing.B, mutate func(*Config), op func(kv *api.KV, i int) error) {
	c, _ := startExpect3(b, mutate)
	const clients = 16
	as := c.running()
	kvs := make([]*api.KV, clients)
	for i := range kvs {
		cl, err := api.NewClient(&api.Config{Address: as[i%len(as)].HTTPAddr(), Transport: &http.Transport{MaxIdleConnsPerHost: 4}})
		if err != nil {
			b.Fatal(err)
		}
		kvs[i] = cl.KV()
	}
	if _, err := kvs[0].Put(&api.KVPair{Key: "bench/r", Value: []byte("x")}, nil); err != nil {
		b.Fatal(err)
	}
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	var failed sync.Map
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < b.N; i += clients {
				t0 := time.Now()
				if err := op(kvs[w], i); err != nil {
					failed.Store(w, err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	failed.Range(func(k, v any) bool { b.Fatalf("client %v: %v", k, v); return false })
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 { return float64(all[int(float64(len(all)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkConsistentWrites: PUTs (always linearizable: through Raft on the leader).
//
//	go test ./agent -run '^$' -bench 'Consistent' -benchtime 20000x -count 3
func BenchmarkConsistentWrites(b *testing.B) {
	benchClients(b, func(kv *api.KV, i int) error {
		_, err := kv.Put(&api.KVPair{Key: fmt.Sprintf("bench/%d", i%1000), Value: []byte("value")}, nil)
		return err
	})
}

// BenchmarkConsistentWritesBoltDB: the same with the BoltDB log store instead of raft-wal.
//
//	go test ./agent -run '^$' -bench 'ConsistentWrites' -benchtime 10000x -count 5
func BenchmarkConsistentWritesBoltDB(b *testing.B) {
	benchClientsWith(b, func(c *Config) { c.RaftLogStore = LogStoreBoltDB }, func(kv *api.KV, i int) error {
		_, err := kv.Put(&api.KVPair{Key: fmt.Sprintf("bench/%d", i%1000), Value: []byte("value")}, nil)
		return err
	})
}

// BenchmarkConsistentReads: ?consistent GETs (leader verifies with a quorum each time).
func BenchmarkConsistentReads(b *testing.B) {
	benchClients(b, func(kv *api.KV, i int) error {
		_, _, err := kv.Get("bench/r", &api.QueryOptions{RequireConsistent: true})
		return err
	})
}

// BenchmarkDefaultReads: default-mode GETs (leader lease, no quorum round trip).
func BenchmarkDefaultReads(b *testing.B) {
	benchClients(b, func(kv *api.KV, i int) error {
		_, _, err := kv.Get("bench/r", nil)
		return err
	})
}

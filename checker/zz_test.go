package checker

import (
	"context"
	"testing"
	"time"
)

func TestZZShapes(t *testing.T) {
	for _, c := range []struct{ ops, keys, workers int; info float64 }{{100000, 5, 20, 0.01}, {100000, 1, 20, 0.01}, {100000, 1, 50, 0.01}, {100000, 10, 20, 0.05}} {
		h := GenerateRegisterHistory(3, c.ops, c.keys, c.workers, c.info)
		for _, np := range []bool{false, true} {
			st := time.Now()
			res := Register{NoPrune: np, Timeout: 20 * time.Second}.Check(context.Background(), h)
			d := res.Details.(*RegisterDetails)
			t.Logf("%+v noprune=%v: %v in %v; segments %d pruned %d pinned %d unknown %d", c, np, res.Valid, time.Since(st), d.Segments, d.Pruned, d.Pinned, d.Unknown)
		}
	}
}

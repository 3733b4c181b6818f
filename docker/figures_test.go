package docker

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// TestFigures measures the operations a run repeats and logs the median of several runs. It is
// a measurement, not an assertion, and runs only when asked:
//
//	HARNESS_DOCKER_FIGURES=1 go test -count=1 -run TestFigures -v ./docker
func TestFigures(t *testing.T) {
	if os.Getenv("HARNESS_DOCKER_FIGURES") == "" {
		t.Skip("set HARNESS_DOCKER_FIGURES=1 to measure")
	}
	c := needEngine(t)
	ctx := context.Background()
	const runs = 7
	measure := func(what string, f func(i int) time.Duration) {
		t.Helper()
		var ds []time.Duration
		for i := range runs {
			ds = append(ds, f(i))
		}
		slices.Sort(ds)
		t.Logf("%-44s median %8.1f ms  (min %.1f, max %.1f, n=%d)", what, ms(ds[len(ds)/2]), ms(ds[0]), ms(ds[len(ds)-1]), len(ds))
	}
	timed := func(f func() error) time.Duration {
		t.Helper()
		start := time.Now()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}

	measure("EnsureImage cached (same client)", func(int) time.Duration {
		return timed(func() error { _, err := c.EnsureImage(ctx, ImageSpec{Binary: agentBin}); return err })
	})
	measure("EnsureImage cached (new client: hash+inspect)", func(int) time.Duration {
		fresh, err := Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		return timed(func() error { _, err := fresh.EnsureImage(ctx, ImageSpec{Binary: agentBin}); return err })
	})
	measure("Connect (client + ping)", func(int) time.Duration {
		var cl *Client
		d := timed(func() (err error) { cl, err = Connect(ctx); return err })
		cl.Close()
		return d
	})

	var createNet, createNodes, startNodes, dialable, teardown []time.Duration
	measure("cluster: network + 3 nodes create+start", func(i int) time.Duration {
		runID := fmt.Sprintf("%sfig%d", runPrefix, i)
		t.Cleanup(func() { _ = c.RemoveRun(context.Background(), runID) })
		start := time.Now()
		net, err := c.CreateNetwork(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		var specs []NodeSpec
		for k := 1; k <= 3; k++ {
			specs = append(specs, NodeSpec{Name: fmt.Sprintf("n%d", k), IP: net.NodeIP(k), Image: agentImage, RunID: runID})
		}
		nodes, err := c.CreateNodes(ctx, net, specs)
		if err != nil {
			t.Fatal(err)
		}
		t2 := time.Now()
		if err := StartNodes(ctx, nodes); err != nil {
			t.Fatal(err)
		}
		t3 := time.Now()
		for _, n := range nodes {
			waitDial(t, n)
		}
		t4 := time.Now()
		createNet = append(createNet, t1.Sub(start))
		createNodes = append(createNodes, t2.Sub(t1))
		startNodes = append(startNodes, t3.Sub(t2))
		dialable = append(dialable, t4.Sub(t2))
		teardown = append(teardown, timed(func() error { return c.RemoveRun(ctx, runID) }))
		return t3.Sub(start)
	})
	for _, f := range []struct {
		what string
		ds   []time.Duration
	}{
		{"  of which CreateNetwork", createNet},
		{"  of which 3x CreateNode (parallel)", createNodes},
		{"  of which 3x Start (parallel)", startNodes},
		{"3 nodes create → all answering on :8500", dialable},
		{"RemoveRun (3 running nodes + network)", teardown},
	} {
		slices.Sort(f.ds)
		t.Logf("%-44s median %8.1f ms  (min %.1f, max %.1f, n=%d)", f.what, ms(f.ds[len(f.ds)/2]), ms(f.ds[0]), ms(f.ds[len(f.ds)-1]), len(f.ds))
	}

	_, nodes := cluster(t, 3)
	n := nodes[0]
	measure("Exec /agent echo", func(int) time.Duration {
		return timed(func() error { _, _, _, err := n.Exec(ctx, []string{"/agent", "echo"}); return err })
	})
	measure("NetFault set (helper container)", func(int) time.Duration {
		return timed(func() error { return n.NetFault(ctx, []string{"set", "--drop-in", nodes[1].IP().String()}) })
	})
	measure("NetFault heal (helper container)", func(int) time.Duration {
		return timed(func() error { return n.NetFault(ctx, []string{"heal"}) })
	})
	if err := n.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	measure("NetFault set on a paused node (helper)", func(int) time.Duration {
		return timed(func() error { return n.NetFault(ctx, []string{"set", "--drop-in", nodes[1].IP().String()}) })
	})
	measure("Unpause + Pause", func(int) time.Duration {
		return timed(func() error {
			if err := n.Unpause(ctx); err != nil {
				return err
			}
			return n.Pause(ctx)
		})
	})
	if err := n.Unpause(ctx); err != nil {
		t.Fatal(err)
	}
	m := nodes[1]
	measure("Restart SIGTERM (stop+start)", func(int) time.Duration {
		return timed(func() error { return m.Restart(ctx, "SIGTERM", 5*time.Second) })
	})
	measure("Kill SIGKILL (+ wait) then Start", func(int) time.Duration {
		d := timed(func() error { return m.Kill(ctx) })
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return d
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

package nemesis

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func names(n int) []string {
	var s []string
	for i := 1; i <= n; i++ {
		s = append(s, fmt.Sprintf("n%d", i))
	}
	return s
}

// connected reports whether a and b can talk both ways (what TCP needs).
func connected(g Grudge, a, b string) bool { return g.Reaches(a, b) && g.Reaches(b, a) }

// hears is the set of nodes whose packets reach node, itself included.
func hears(g Grudge, nodes []string, node string) []string {
	var v []string
	for _, src := range nodes {
		if g.Reaches(src, node) {
			v = append(v, src)
		}
	}
	return v
}

// checkSides asserts that the nodes form exactly the given sides: all links inside a side, none
// across (in either direction).
func checkSides(t *testing.T, g Grudge, sides ...[]string) {
	t.Helper()
	side := map[string]int{}
	for i, s := range sides {
		for _, n := range s {
			side[n] = i
		}
	}
	for a, sa := range side {
		for b, sb := range side {
			if g.Reaches(a, b) != (sa == sb) {
				t.Fatalf("%s → %s reaches=%v, sides %v; grudge %v", a, b, g.Reaches(a, b), sides, g)
			}
		}
	}
}

func TestShapes(t *testing.T) {
	for _, n := range []int{3, 5, 7} {
		nodes := names(n)
		majority := n/2 + 1
		for seed := uint64(0); seed < 20; seed++ {
			r := rand.New(rand.NewPCG(seed, 1))
			t.Run(fmt.Sprintf("%d nodes seed %d", n, seed), func(t *testing.T) {
				// random-halves: two sides, no cross links.
				g := RandomHalves(nodes, r)
				a := hears(g, nodes, "n1")
				b := slices.DeleteFunc(slices.Clone(nodes), func(s string) bool { return slices.Contains(a, s) })
				if min(len(a), len(b)) != n/2 {
					t.Fatalf("halves %v | %v", a, b)
				}
				checkSides(t, g, a, b)

				// isolate-leader (and random-node): the node alone.
				g, targets, err := shapeGrudge(ShapeIsolateLeader, nodes, "n2", r)
				if err != nil || !slices.Equal(targets, []string{"n2"}) {
					t.Fatalf("isolate-leader targets %v, %v", targets, err)
				}
				checkSides(t, g, []string{"n2"}, without(nodes, "n2"))

				// majorities-ring: everyone hears a majority, no two the same one.
				g = MajoritiesRing(nodes, r)
				seen := map[string]string{}
				for _, node := range nodes {
					v := hears(g, nodes, node)
					if len(v) < majority || len(v) == n {
						t.Fatalf("%s hears %v: not a proper majority of %d", node, v, n)
					}
					key := fmt.Sprint(v)
					if other, dup := seen[key]; dup {
						t.Fatalf("%s and %s hear the same majority %v", node, other, v)
					}
					seen[key] = node
					if n >= 5 {
						for _, src := range nodes {
							if g.Reaches(src, node) != g.Reaches(node, src) {
								t.Fatalf("ring link %s-%s is one-way at %d nodes", src, node, n)
							}
						}
					}
				}

				// bridge: one node connected to all, the others in two cut-off halves.
				g = Bridge(nodes, r)
				var bridges []string
				for _, node := range nodes {
					all := true
					for _, o := range nodes {
						all = all && connected(g, node, o)
					}
					if all {
						bridges = append(bridges, node)
					}
				}
				if len(bridges) != 1 {
					t.Fatalf("bridge nodes %v in %v", bridges, g)
				}
				rest := without(nodes, bridges[0])
				sideA := slices.DeleteFunc(hears(g, nodes, rest[0]), func(s string) bool { return s == bridges[0] })
				sideB := slices.DeleteFunc(slices.Clone(rest), func(s string) bool { return slices.Contains(sideA, s) })
				if len(sideA) != (n-1)/2 || len(sideB) != (n-1)/2 {
					t.Fatalf("bridge sides %v | %v", sideA, sideB)
				}
				checkSides(t, g, sideA, sideB) // the bridge is in neither side
			})
		}
	}
}

package nemesis

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Grudge describes a partition as Jepsen does: for each destination node, the source nodes
// whose packets it drops. The nemesis applies it as drop-in rules on the destination and the
// mirrored drop-out rules on each source. Note that cutting one direction still breaks TCP both
// ways (handshakes and ACKs need both); true one-way cuts show only for UDP (gossip).
type Grudge map[string][]string

// Partition shapes.
const (
	ShapeRandomHalves   = "random-halves"   // two random halves, no links between them
	ShapeIsolateLeader  = "isolate-leader"  // the leader alone, cut from everyone
	ShapeMajoritiesRing = "majorities-ring" // every node sees a majority, no two the same one
	ShapeBridge         = "bridge"          // two halves and one node that reaches both
	ShapeRandomNode     = "random-node"     // one random node alone
)

// Shapes lists every partition shape.
var Shapes = []string{ShapeRandomHalves, ShapeIsolateLeader, ShapeMajoritiesRing, ShapeBridge, ShapeRandomNode}

// minNodes is the smallest cluster each shape can cut at all.
var minNodes = map[string]int{
	ShapeRandomHalves: 2, ShapeIsolateLeader: 2, ShapeMajoritiesRing: 3, ShapeBridge: 3, ShapeRandomNode: 2,
}

// Reaches reports whether packets from src arrive at dst under g.
func (g Grudge) Reaches(src, dst string) bool { return src == dst || !slices.Contains(g[dst], src) }

// Complete returns the grudge that cuts every link between different components.
func Complete(components ...[]string) Grudge {
	g := Grudge{}
	for i, comp := range components {
		var others []string
		for j, c := range components {
			if j != i {
				others = append(others, c...)
			}
		}
		slices.Sort(others)
		for _, n := range comp {
			if len(others) > 0 {
				g[n] = slices.Clone(others)
			}
		}
	}
	return g
}

// RandomHalves cuts the nodes into two random halves (the smaller first for odd counts).
func RandomHalves(nodes []string, r *rand.Rand) Grudge {
	ring := shuffled(nodes, r)
	return Complete(ring[:len(ring)/2], ring[len(ring)/2:])
}

// IsolateNode cuts node from every other node.
func IsolateNode(nodes []string, node string) Grudge {
	rest := slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == node })
	return Complete([]string{node}, rest)
}

// Bridge cuts the nodes into two halves that cannot reach each other and one bridge node that
// reaches both, as Jepsen's bridge.
func Bridge(nodes []string, r *rand.Rand) Grudge {
	ring := shuffled(nodes, r)
	if len(ring) < 3 {
		return Grudge{}
	}
	half := len(ring) / 2
	a, b := ring[:half], ring[half+1:] // ring[half] is the bridge
	g := Grudge{}
	for _, n := range a {
		g[n] = sorted(b)
	}
	for _, n := range b {
		g[n] = sorted(a)
	}
	return g
}

// MajoritiesRing places the nodes on a random ring; each node hears only the nodes near it,
// which are a majority of the cluster, and no two nodes hear the same majority. Where a
// symmetric window exists (4 nodes and more) every cut is two-way: node i hears i-r…i+r for the
// smallest r giving a majority. With 3 nodes none does, so, as Jepsen's majorities-ring-perfect,
// node i hears {i, i+1}: every pair then loses one direction, which for TCP cuts every link.
func MajoritiesRing(nodes []string, r *rand.Rand) Grudge {
	ring := shuffled(nodes, r)
	n := len(ring)
	m := n/2 + 1 // majority
	radius := m / 2
	view := func(i int) map[string]bool {
		v := map[string]bool{}
		if 2*radius+1 < n {
			for d := -radius; d <= radius; d++ {
				v[ring[((i+d)%n+n)%n]] = true
			}
		} else {
			for d := 0; d < m; d++ {
				v[ring[(i+d)%n]] = true
			}
		}
		return v
	}
	g := Grudge{}
	for i, node := range ring {
		v := view(i)
		var drop []string
		for _, other := range ring {
			if !v[other] {
				drop = append(drop, other)
			}
		}
		if len(drop) > 0 {
			slices.Sort(drop)
			g[node] = drop
		}
	}
	return g
}

// shapeGrudge computes shape over nodes; leader is used by isolate-leader ("" = none, then a
// random node is isolated instead). It returns the grudge and the nodes the shape singles out.
func shapeGrudge(shape string, nodes []string, leader string, r *rand.Rand) (Grudge, []string, error) {
	if len(nodes) < minNodes[shape] {
		return nil, nil, fmt.Errorf("partition %s needs at least %d nodes, the cluster has %d", shape, minNodes[shape], len(nodes))
	}
	switch shape {
	case ShapeRandomHalves:
		g := RandomHalves(nodes, r)
		return g, g.targets(), nil
	case ShapeMajoritiesRing:
		g := MajoritiesRing(nodes, r)
		return g, g.targets(), nil
	case ShapeBridge:
		g := Bridge(nodes, r)
		return g, g.targets(), nil
	case ShapeIsolateLeader, ShapeRandomNode:
		node := leader
		if shape == ShapeRandomNode || node == "" {
			node = nodes[r.IntN(len(nodes))]
		}
		return IsolateNode(nodes, node), []string{node}, nil
	}
	return nil, nil, fmt.Errorf("unknown partition shape %q", shape)
}

// targets lists the nodes that drop something, sorted.
func (g Grudge) targets() []string {
	var t []string
	for n, srcs := range g {
		if len(srcs) > 0 {
			t = append(t, n)
		}
	}
	slices.Sort(t)
	return t
}

func shuffled(nodes []string, r *rand.Rand) []string {
	s := sorted(nodes)
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

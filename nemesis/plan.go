package nemesis

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
)

// Step is one drawn fault of a schedule: the kind, the target spec (a partition shape, or
// one/leader/minority/follower/all) and the seed of every further choice (which nodes, the
// loss rate). Steps depend only on Options and the cluster size, so a schedule can be logged
// before the run and replayed from the seed.
type Step struct {
	Fault  string `json:"fault"`
	Target string `json:"target"`
	Seed   uint64 `json:"seed"`
}

// String gives the step as fault:target#seed, for logs.
func (s Step) String() string { return fmt.Sprintf("%s:%s#%d", s.Fault, s.Target, s.Seed) }

// planner draws the steps of a schedule. Every step takes exactly three draws, so a step's
// choices never shift the ones after it. Step seeds have 53 bits, so they survive JSON readers
// that decode numbers as float64.
type planner struct {
	r      *rand.Rand
	faults []string
	shapes []string
}

func newPlanner(o Options) *planner {
	return &planner{r: rand.New(rand.NewPCG(uint64(o.Seed), 0x6e656d65736973)), faults: o.Faults, shapes: o.Shapes}
}

// lanes are the schedules Run follows at the same time: one drawing from every kind, or with
// Together one per kind, each seeded from the seed and its kind.
func (o Options) lanes() []*planner {
	if !o.Together {
		return []*planner{newPlanner(o)}
	}
	out := make([]*planner, len(o.Faults))
	for i, f := range o.Faults {
		h := fnv.New64a()
		h.Write([]byte(f))
		out[i] = &planner{r: rand.New(rand.NewPCG(uint64(o.Seed), h.Sum64())), faults: []string{f}, shapes: o.Shapes}
	}
	return out
}

func (p *planner) next() Step {
	f := p.faults[p.r.IntN(len(p.faults))]
	ts := targets[f]
	if f == FaultPartition {
		ts = p.shapes
	}
	return Step{Fault: f, Target: ts[p.r.IntN(len(ts))], Seed: p.r.Uint64() >> 11}
}

// Plan returns the first count steps Run will take, for logging; with Together, the first count
// steps of every kind's schedule, kind after kind.
func (n *Nemesis) Plan(count int) []Step {
	if len(n.opts.Faults) == 0 {
		return nil
	}
	var steps []Step
	for _, p := range n.opts.lanes() {
		for range count {
			steps = append(steps, p.next())
		}
	}
	return steps
}

package workloads

import "github.com/raftcheck/harness/checker"

// This file is the workloads package's only dependency on the checker package.

// Checkers for the register workload: linearizability per key, op statistics, liveness of the
// final reads.
func (*Register) Checkers(o CheckOptions) []checker.Checker {
	return []checker.Checker{
		&checker.Register{Timeout: o.Timeout, VisualizeDir: o.VisualizeDir},
		&checker.Stats{},
		&checker.Liveness{},
	}
}

// Checkers for the set workload: lost and unexpected elements, op statistics, liveness.
func (*Set) Checkers(CheckOptions) []checker.Checker {
	return []checker.Checker{&checker.Set{}, &checker.Stats{}, &checker.Liveness{}}
}

// Checkers for the lock workload: the lock checker (mutual exclusion, fencing, LockIndex,
// lock-delay, the overlap figure), op statistics, liveness.
func (*Lock) Checkers(CheckOptions) []checker.Checker {
	return []checker.Checker{&checker.Lock{}, &checker.Stats{}, &checker.Liveness{}}
}

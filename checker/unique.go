package checker

import (
	"fmt"
	"math"
	"sort"
)

// This file decides one key of a register history without searching interleavings, when every
// value is written by at most one operation (the register workload's values are unique).
//
// A read of v then names the one write of v, and a cas(a, v) that took effect names the version
// a it replaced, so versions (the values the register held, and the initial null, written ⊥)
// relate as follows in any linearization:
//
//   - Each version occupies a contiguous stretch of the linearization: its writer first, then the
//     reads of it, up to the next writer. The cluster of v is its writer and its ok reads.
//   - A successful cas(a, b) puts b immediately after a; following these links from a plain write
//     (or ⊥) gives a chain of versions that stays contiguous. ⊥ is always first.
//   - If an op of cluster x returns before an op of cluster y is invoked, x precedes y. With
//     minRet(X) the earliest return and maxCall(X) the latest invocation of the ops in the clusters
//     of chain X, chain X must precede chain Y exactly when minRet(X) < maxCall(Y).
//
// The key is decided by placing chains one at a time: a chain may come next when no other
// unplaced chain must precede it. If every chain is placed, the order is a linearization: each
// op's point can be chosen as max(its invocation, the latest invocation placed so far), which
// lies within its interval because every earlier chain's ops were invoked before every later
// chain's ops returned. If no chain can be placed, the two unplaced chains with the smallest
// minRet must each precede the other: a cycle, which no linearization can have. Both outcomes
// are proofs, so the method is exact (Gibbons and Korach's zones, extended with cas chains).
//
// Info (indeterminate) ops: a write or cas whose outcome is unknown took effect for certain when
// its value is observed by an op that took effect (an ok read, an ok cas, or a cas that took
// effect for certain); its return is then ∞. Every other info op is left out: an op that may not
// have happened can always be omitted from a linearization, and no op that certainly happened
// depends on it (see pruneKey).
//
// When values repeat, the method does not apply and the key goes to porcupine.

// uniqueVersion is one value the register held during the history.
type uniqueVersion struct {
	v       int64
	bottom  bool // the initial null
	writer  *rop // nil for ⊥
	reads   []*rop
	certain bool
	next    *uniqueVersion // the version a cas put immediately after this one
	seen    bool           // reached while building chains
	// Cluster bounds: the earliest return and the latest invocation of the writer and the reads,
	// and the ops that give them.
	minRet, maxCall int64
	retOp, callOp   *rop
}

func (u *uniqueVersion) String() string {
	if u.bottom {
		return "null"
	}
	return fmt.Sprint(u.v)
}

// uniqueChain is a run of versions linked by cas, which a linearization keeps together.
type uniqueChain struct {
	versions        []*uniqueVersion
	minRet, maxCall int64
	retOp, callOp   *rop
}

// uniqueVerdict is the outcome of checkUnique.
type uniqueVerdict struct {
	applies bool   // false: values repeat, the method cannot decide
	why     string // when it does not apply
	valid   bool
	kind    string // the anomaly's kind, e.g. "stale read"
	problem string // what is wrong, in words
	culprit *rop   // the op where the anomaly shows (its completion is the anomaly's line)
	ops     []*rop // the ops that together show the anomaly
	// Counted for the details.
	versions, chains int
}

// checkUnique decides one key's ops (fail ops and unknown reads already dropped) when every
// value is written at most once.
func checkUnique(ops []*rop) uniqueVerdict {
	bottom := &uniqueVersion{bottom: true, certain: true, minRet: math.MaxInt64, maxCall: math.MinInt64}
	byValue := make(map[int64]*uniqueVersion, len(ops)/2+1)
	for _, o := range ops {
		if o.kind == fRead {
			continue
		}
		v := o.a
		if o.kind == fCAS {
			v = o.b
		}
		if u := byValue[v]; u != nil {
			return uniqueVerdict{why: fmt.Sprintf("value %d is written twice (index %d and index %d)", v, u.writer.index, o.index)}
		}
		byValue[v] = &uniqueVersion{v: v, writer: o, certain: !o.unknown, minRet: math.MaxInt64, maxCall: math.MinInt64}
	}
	bad := func(kind, problem string, culprit *rop, involved ...*rop) uniqueVerdict {
		return uniqueVerdict{applies: true, kind: kind, problem: problem, culprit: culprit, ops: involved}
	}
	// Reads name their version; a read of a value nobody wrote is an anomaly on its own.
	for _, o := range ops {
		if o.kind != fRead {
			continue
		}
		if !o.present {
			bottom.reads = append(bottom.reads, o)
			continue
		}
		u := byValue[o.a]
		if u == nil {
			return bad("read of a value never written", fmt.Sprintf("%s by process %d read %d, which no operation wrote", o, o.proc, o.a), o, o)
		}
		u.certain = true
		u.reads = append(u.reads, o)
	}
	// A cas that took effect makes the version it replaced certain; an info cas took effect when
	// its own value is certain. Propagate along cas links until nothing changes.
	var work []*uniqueVersion
	for _, u := range byValue {
		if u.certain {
			work = append(work, u)
		}
	}
	for len(work) > 0 {
		u := work[len(work)-1]
		work = work[:len(work)-1]
		w := u.writer
		if w == nil || w.kind != fCAS {
			continue
		}
		prev := byValue[w.a]
		if prev == nil {
			return bad("cas from a value never written", fmt.Sprintf("%s by process %d took effect (its value %d was observed), but no operation wrote %d", w, w.proc, w.b, w.a), w, append([]*rop{w}, u.reads...)...)
		}
		if !prev.certain {
			prev.certain = true
			work = append(work, prev)
		}
	}
	// Cluster bounds, cas links, and reads that return before their write was invoked.
	versions := []*uniqueVersion{bottom}
	for _, u := range byValue {
		if u.certain {
			versions = append(versions, u)
		}
	}
	sort.Slice(versions[1:], func(i, j int) bool { return versions[1+i].writer.index < versions[1+j].writer.index })
	for _, u := range versions {
		if u.writer != nil {
			u.include(u.writer)
		}
		for _, r := range u.reads {
			u.include(r)
			if u.writer != nil && r.ret < u.writer.call {
				return bad("read from the future", fmt.Sprintf("%s by process %d returned before %s by process %d, the only write of %d, was invoked", r, r.proc, u.writer, u.writer.proc, u.v), r, u.writer, r)
			}
		}
		if w := u.writer; w != nil && w.kind == fCAS {
			prev := byValue[w.a]
			if prev.next != nil {
				other := prev.next.writer
				return bad("two cas from one value", fmt.Sprintf("%s by process %d and %s by process %d both replaced %d", other, other.proc, w, w.proc, w.a), latest(other, w), prev.writer, other, w)
			}
			prev.next = u
		}
	}
	// Chains start at ⊥ and at plain writes.
	var chains []*uniqueChain
	for _, u := range versions {
		if u.writer != nil && u.writer.kind == fCAS {
			continue
		}
		c := &uniqueChain{minRet: math.MaxInt64, maxCall: math.MinInt64}
		for x := u; x != nil; x = x.next {
			x.seen = true
			c.versions = append(c.versions, x)
		}
		if v, ok := c.checkOrder(); !ok {
			return v
		}
		chains = append(chains, c)
	}
	for _, u := range versions {
		if !u.seen {
			w := u.writer
			return bad("cas cycle", fmt.Sprintf("%s by process %d is part of a cycle of cas operations that no plain write starts", w, w.proc), w, w)
		}
	}
	v := placeChains(chains)
	v.versions, v.chains = len(versions), len(chains)
	return v
}

// include widens the cluster bounds of u by o.
func (u *uniqueVersion) include(o *rop) {
	if u.retOp == nil || o.ret < u.minRet {
		u.minRet, u.retOp = o.ret, o
	}
	if u.callOp == nil || o.call > u.maxCall {
		u.maxCall, u.callOp = o.call, o
	}
}

// checkOrder checks that no op of a later version of the chain returns before an op of an
// earlier one is invoked, and computes the chain's bounds.
func (c *uniqueChain) checkOrder() (uniqueVerdict, bool) {
	for _, u := range c.versions {
		if c.callOp != nil && u.minRet < c.maxCall {
			early, late := u.retOp, c.callOp
			return uniqueVerdict{applies: true, kind: orderKind(late),
				problem: fmt.Sprintf("%s by process %d returned before %s by process %d was invoked, yet a chain of cas operations puts %s after %s",
					early, early.proc, late, late.proc, u, describeVersionOf(late)),
				culprit: late, ops: []*rop{early, late}}, false
		}
		if u.retOp != nil && (c.retOp == nil || u.minRet < c.minRet) {
			c.minRet, c.retOp = u.minRet, u.retOp
		}
		if u.callOp != nil && (c.callOp == nil || u.maxCall > c.maxCall) {
			c.maxCall, c.callOp = u.maxCall, u.callOp
		}
	}
	return uniqueVerdict{}, true
}

// placeChains orders the chains (the first is ⊥'s) or finds two that must each precede the other.
func placeChains(chains []*uniqueChain) uniqueVerdict {
	n := len(chains)
	ok := uniqueVerdict{applies: true, valid: true}
	if n <= 1 {
		return ok
	}
	// ⊥ is first: no other chain may have to precede it.
	first := chains[0]
	rest := chains[1:]
	minOther := rest[0]
	for _, c := range rest {
		if c.minRet < minOther.minRet {
			minOther = c
		}
	}
	if first.callOp != nil && minOther.minRet < first.maxCall {
		x1, y1 := minOther.retOp, first.callOp
		return uniqueVerdict{applies: true, kind: orderKind(y1),
			problem: fmt.Sprintf("%s by process %d returned before %s by process %d was invoked, so the register held %s before that read of null",
				x1, x1.proc, y1, y1.proc, describeVersionOf(x1)),
			culprit: y1, ops: []*rop{x1, y1}}
	}
	// Two lists of the unplaced chains, by minRet and by maxCall, with O(1) removal.
	byRet := newChainList(rest, func(c *uniqueChain) int64 { return c.minRet })
	byCall := newChainList(rest, func(c *uniqueChain) int64 { return c.maxCall })
	for byRet.head >= 0 {
		a := byRet.at(byRet.head)
		var b *uniqueChain // second smallest minRet
		if nb := byRet.next[byRet.head]; nb >= 0 {
			b = byRet.at(nb)
		}
		aFree := b == nil || a.maxCall <= b.minRet
		c := byCall.at(byCall.head)
		var pick *uniqueChain
		switch {
		case c != a && c.maxCall <= a.minRet:
			pick = c
		case aFree:
			pick = a
		case c == a:
			if nc := byCall.next[byCall.head]; nc >= 0 && byCall.at(nc).maxCall <= a.minRet {
				pick = byCall.at(nc)
			}
		}
		if pick == nil {
			return cycleVerdict(a, b)
		}
		byRet.remove(pick)
		byCall.remove(pick)
	}
	return ok
}

// cycleVerdict explains why chains x and y must each precede the other: an op of x returned
// before an op of y was invoked, and an op of y returned before an op of x was invoked.
func cycleVerdict(x, y *uniqueChain) uniqueVerdict {
	x1, y1 := x.retOp, y.callOp // x1 returned before y1 was invoked
	y2, x2 := y.retOp, x.callOp // y2 returned before x2 was invoked
	late := y1
	if x2.ret > late.ret {
		late = x2
	}
	kind := "version order cycle"
	if y1.kind == fRead || x2.kind == fRead {
		kind = "stale read"
	}
	return uniqueVerdict{applies: true, kind: kind,
		problem: fmt.Sprintf("%s by process %d returned before %s by process %d was invoked, so %s came before %s; but %s by process %d returned before %s by process %d was invoked, so %s came before %s",
			x1, x1.proc, y1, y1.proc, describeVersionOf(x1), describeVersionOf(y1),
			y2, y2.proc, x2, x2.proc, describeVersionOf(y2), describeVersionOf(x2)),
		culprit: late, ops: []*rop{x1, y1, y2, x2}}
}

// describeVersionOf names the version an op belongs to: the value it read or wrote.
func describeVersionOf(o *rop) string {
	switch {
	case o.kind == fRead && !o.present:
		return "null"
	case o.kind == fRead, o.kind == fWrite:
		return fmt.Sprint(o.a)
	}
	return fmt.Sprint(o.b)
}

// orderKind names an anomaly shown by op o being invoked after an op of a later version returned.
func orderKind(o *rop) string {
	if o.kind == fRead {
		return "stale read"
	}
	return "version order cycle"
}

func latest(a, b *rop) *rop {
	if b.ret > a.ret || a.ret == b.ret && b.index > a.index {
		return b
	}
	return a
}

// chainList is a sorted doubly linked list of chains with O(1) removal.
type chainList struct {
	items      []*uniqueChain
	pos        map[*uniqueChain]int
	prev, next []int
	head       int
}

func newChainList(cs []*uniqueChain, key func(*uniqueChain) int64) *chainList {
	l := &chainList{items: append([]*uniqueChain(nil), cs...), pos: make(map[*uniqueChain]int, len(cs))}
	sort.SliceStable(l.items, func(i, j int) bool { return key(l.items[i]) < key(l.items[j]) })
	l.prev, l.next = make([]int, len(cs)), make([]int, len(cs))
	for i, c := range l.items {
		l.pos[c] = i
		l.prev[i], l.next[i] = i-1, i+1
	}
	l.next[len(cs)-1] = -1
	return l
}

func (l *chainList) at(i int) *uniqueChain { return l.items[i] }

func (l *chainList) remove(c *uniqueChain) {
	i := l.pos[c]
	p, n := l.prev[i], l.next[i]
	if p >= 0 {
		l.next[p] = n
	} else {
		l.head = n
	}
	if n >= 0 {
		l.prev[n] = p
	}
}

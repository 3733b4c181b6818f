package checker

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/raftcheck/harness/history"
)

// Register checks that every key of the register workload behaves as a linearizable
// compare-and-set register (name "linearizable"). Keys are independent (P-compositionality),
// so each is checked on its own, several at once: a key whose values are all written at most
// once is decided exactly by version order (unique.go), any other key by porcupine's search,
// bounded in time (Timeout) and memory (MemoryLimit). A key with a read of a value that is not an
// integer is invalid without any search.
//
// Semantics (DESIGN.md): ok happened, fail certainly did not (dropped), info may or may not
// have happened at any time after its invoke (return time ∞, any output accepted); info and
// fail reads are dropped; an invoke without a completion counts as info. A missing key reads
// as null, a state distinct from every integer. Nemesis lines are ignored.
type Register struct {
	// Timeout bounds the whole check; when it expires before a violation is found the result is
	// Unknown, never Valid. Zero means no limit.
	Timeout time.Duration
	// VisualizeDir, when set, receives porcupine's HTML visualisation of each invalid key as
	// linear-<key>.html, the key made file-safe by sanitize (at most MaxVisualize keys); the
	// files are listed in Details, and each file's name is recorded in its key's anomaly
	// (Anomaly.Visualization), which is where readers of results.json find it.
	VisualizeDir string
	// Parallelism is how many keys are checked at once; zero means GOMAXPROCS.
	Parallelism int
	// NoPrune turns off the register-specific pruning of unknown writes (see pruneKey); the
	// verdict is the same either way, pruning only makes the search smaller.
	NoPrune bool
	// MemoryLimit bounds the Go heap (bytes) while porcupine searches: past it, the keys not yet
	// decided are Unknown, with the reason, instead of the process being killed for lack of
	// memory. Zero means DefaultMemoryLimit; negative means no limit. The unique-value method
	// needs memory linear in the history and is not bounded by it.
	MemoryLimit int64
	// PorcupineOnly sends every key to porcupine, also keys whose values are unique (which are
	// otherwise decided by ordering versions, see unique.go); for comparisons.
	PorcupineOnly bool
}

// How a key was decided (KeyResult.Method).
const (
	MethodUnique    = "unique-values" // version order from unique values, see unique.go
	MethodPorcupine = "porcupine"     // search of interleavings
	MethodCorrupt   = "corrupt-value" // a read of a value that is not an integer: invalid, no search
)

// LimitMemory sets MemoryLimit (bytes; negative: no limit).
func (r *Register) LimitMemory(bytes int64) { r.MemoryLimit = bytes }

// MaxVisualize bounds how many invalid keys are re-checked verbosely and visualised.
const MaxVisualize = 5

// Name is "linearizable".
func (Register) Name() string { return NameLinearizable }

// RegisterDetails is Result.Details of the Register checker.
type RegisterDetails struct {
	Keys        int                  `json:"keys"`
	Ops         int                  `json:"ops"`         // operations checked (after dropping fail and info reads)
	Unknown     int                  `json:"unknown_ops"` // info writes/cas in the history
	Pruned      int                  `json:"pruned_ops"`  // unknown ops dropped because nothing observed them
	Pinned      int                  `json:"pinned_ops"`  // unknown ops given a finite return by a read of their value
	Segments    int                  `json:"segments"`    // independently checked stretches of key histories
	UniqueKeys  int                  `json:"unique_keys"` // keys decided by version order (unique values)
	InvalidKeys []string             `json:"invalid_keys,omitempty"`
	UnknownKeys []string             `json:"unknown_keys,omitempty"` // not finished before the timeout
	PerKey      map[string]KeyResult `json:"per_key"`
	Files       []string             `json:"files,omitempty"` // visualisations written
	Seconds     float64              `json:"seconds"`
}

// KeyResult is the outcome for one key.
type KeyResult struct {
	Ops    int      `json:"ops"`
	Valid  Validity `json:"valid"`
	Method string   `json:"method,omitempty"` // MethodUnique or MethodPorcupine
	// Fallback says why porcupine was needed; Why, why the key is unknown.
	Fallback string    `json:"fallback,omitempty"`
	Why      string    `json:"why,omitempty"`
	Excerpt  []OpBrief `json:"excerpt,omitempty"` // invalid keys: the ops around the failure
	// Counterexample is, for an invalid key decided by unique values, a small set of its ops
	// that is still not linearizable (shrunk by delta debugging within ShrinkBudget).
	Counterexample []OpBrief `json:"counterexample,omitempty"`
	Anomaly        *Anomaly  `json:"first_anomaly,omitempty"`
}

// OpBrief is one operation in an excerpt, invoke and completion folded together.
type OpBrief struct {
	Index   int64           `json:"index"` // index of the invoke line
	Process history.Process `json:"process"`
	Op      string          `json:"op"` // e.g. "read → 3", "cas(1, 4)", "write(7) ?"
	Call    int64           `json:"call"`
	Return  int64           `json:"return"` // -1 when unknown (info)
	Note    string          `json:"note,omitempty"`
}

const (
	fRead uint8 = iota
	fWrite
	fCAS
)

// fDropped marks a failed op while the history is split: it certainly did not happen, so it is
// dropped before checking. It is outside the iota range so no real kind can collide with it.
const fDropped uint8 = 255

// rop is one register operation of one key, compact and allocation-free to step.
type rop struct {
	kind    uint8
	unknown bool  // info (or never completed): may have happened, output not known
	present bool  // read: a value was read (not null)
	a, b    int64 // read: value read; write: value; cas: expected, new
	call    int64
	ret     int64 // math.MaxInt64 when unknown
	index   int64 // index of the invoke line
	done    int64 // index of the completion line, -1 if none
	proc    history.Process
	next    *regState // state after a write or a successful cas
}

// regState is a register value; absent is the missing key. States are compared by value.
type regState struct {
	absent bool
	v      int64
}

var absentState = &regState{absent: true}

func (o *rop) String() string {
	var s string
	switch o.kind {
	case fRead:
		if o.unknown {
			s = "read → ?"
		} else if o.present {
			s = fmt.Sprintf("read → %d", o.a)
		} else {
			s = "read → null"
		}
		return s
	case fWrite:
		s = fmt.Sprintf("write(%d)", o.a)
	default:
		s = fmt.Sprintf("cas(%d, %d)", o.a, o.b)
	}
	if o.unknown {
		s += " ?"
	}
	return s
}

func describeState(s *regState) string {
	if s.absent {
		return "null"
	}
	return fmt.Sprint(s.v)
}

// registerModel is porcupine's model of one key. Inputs are *rop (outputs are carried by the
// same *rop), states are *regState.
var registerModel = porcupine.Model{
	Init: func() any { return absentState },
	Step: func(state, input, _ any) (bool, any) {
		s, o := state.(*regState), input.(*rop)
		switch o.kind {
		case fRead:
			if o.unknown {
				return true, s
			}
			if !o.present {
				return s.absent, s
			}
			return !s.absent && s.v == o.a, s
		case fWrite:
			return true, o.next
		default:
			if s.absent || s.v != o.a {
				return o.unknown, s // an unknown cas that did not match changed nothing
			}
			return true, o.next
		}
	},
	Equal: func(a, b any) bool {
		x, y := a.(*regState), b.(*regState)
		return x == y || x.absent == y.absent && x.v == y.v
	},
	Hash: func(s any) uint64 {
		x := s.(*regState)
		if x.absent {
			return 0x9e3779b97f4a7c15
		}
		return mix64(uint64(x.v))
	},
	DescribeOperation: func(input, _ any) string { return input.(*rop).String() },
	DescribeState:     func(s any) string { return describeState(s.(*regState)) },
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// registerKey is the history of one key.
type registerKey struct {
	name    string
	ops     []*rop
	corrupt []corruptRead // reads of values that are not integers (not in ops)
}

// splitRegister turns a history into per-key register operations, in invoke order.
func splitRegister(ops []history.Op) (s *registerSplitter) {
	s = newRegisterSplitter(len(ops))
	for i := range ops {
		s.add(&ops[i])
	}
	return s
}

// registerSplitter folds a history, one line at a time, into per-key register operations; it
// keeps nothing of the lines themselves.
type registerSplitter struct {
	byName  map[string]*registerKey
	keys    []*registerKey
	pending map[history.Process]openOp
	slab    []rop
	states  []regState
	err     error // the first malformed line
	// The nemesis lines (copied) and the time of the last line: the fault windows shown in the
	// visualisations.
	nemesis  []history.Op
	lastTime int64
}

// windows are the fault windows of the history split so far.
func (s *registerSplitter) windows() []Window {
	return FaultWindows(append(s.nemesis, history.Op{Time: s.lastTime}))
}

type openOp struct {
	k *registerKey
	o *rop
}

func newRegisterSplitter(lines int) *registerSplitter {
	return &registerSplitter{byName: map[string]*registerKey{}, pending: map[history.Process]openOp{},
		slab: make([]rop, 0, min(lines/2+1, 1<<16)), states: make([]regState, 0, min(lines/4+1, 1<<16))}
}

func (s *registerSplitter) newState(v int64) *regState {
	if len(s.states) == cap(s.states) {
		s.states = make([]regState, 0, 1<<12)
	}
	s.states = append(s.states, regState{v: v})
	return &s.states[len(s.states)-1]
}

// add takes one history line; op is not kept.
func (s *registerSplitter) add(op *history.Op) {
	s.lastTime = max(s.lastTime, op.Time)
	if op.IsNemesis() {
		c := *op
		c.Value = append([]byte(nil), op.Value...)
		s.nemesis = append(s.nemesis, c)
		return
	}
	if s.err != nil {
		return
	}
	var kind uint8
	switch op.F {
	case "read":
		kind = fRead
	case "write":
		kind = fWrite
	case "cas":
		kind = fCAS
	default:
		return // not a register op
	}
	if op.Type == history.Invoke {
		k := s.byName[op.Key]
		if k == nil {
			k = &registerKey{name: op.Key}
			s.byName[op.Key] = k
			s.keys = append(s.keys, k)
		}
		if len(s.slab) == cap(s.slab) {
			s.slab = make([]rop, 0, 1<<12)
		}
		s.slab = append(s.slab, rop{kind: kind, call: op.Time, ret: math.MaxInt64, unknown: true,
			index: op.Index, done: -1, proc: op.Process})
		o := &s.slab[len(s.slab)-1]
		switch kind {
		case fWrite:
			v, ok, perr := parseInt(op.Value)
			if perr != nil || !ok {
				s.err = fmt.Errorf("index %d: write value %s is not an integer", op.Index, history.Truncate(string(op.Value), 60))
				return
			}
			o.a, o.next = v, s.newState(v)
		case fCAS:
			a, b, perr := parsePair(op.Value)
			if perr != nil {
				s.err = fmt.Errorf("index %d: cas value %s is not [expected, new]", op.Index, history.Truncate(string(op.Value), 60))
				return
			}
			o.a, o.b, o.next = a, b, s.newState(b)
		}
		if prev, ok := s.pending[op.Process]; ok && prev.o != nil {
			s.err = fmt.Errorf("index %d: process %d invoked again before completing index %d", op.Index, op.Process, prev.o.index)
			return
		}
		s.pending[op.Process] = openOp{k, o}
		k.ops = append(k.ops, o)
		return
	}
	p, ok := s.pending[op.Process]
	if !ok || p.o == nil || p.o.kind != kind {
		s.err = fmt.Errorf("index %d: %s completion of %s by process %d without a matching invoke", op.Index, op.Type, op.F, op.Process)
		return
	}
	delete(s.pending, op.Process)
	o := p.o
	o.done = op.Index
	switch op.Type {
	case history.OK:
		o.unknown, o.ret = false, op.Time
		if kind == fRead {
			v, present, perr := parseInt(op.Value)
			if perr != nil {
				// A register holds integers: a read of anything else is corrupt, and shown as
				// such (CorruptRead) rather than failing the whole check.
				p.k.corrupt = append(p.k.corrupt, corruptRead{o, history.Truncate(string(op.Value), 80)})
				o.kind = fDropped
				return
			}
			o.a, o.present = v, present
		}
	case history.Fail:
		o.kind = fDropped // certainly did not happen: dropped below
	case history.Info:
		// stays unknown with return ∞
	}
}

// finish drops failed ops and unknown reads and returns the keys in order of first appearance.
func (s *registerSplitter) finish() (keys []*registerKey, unknown int, err error) {
	if s.err != nil {
		return nil, 0, s.err
	}
	for _, k := range s.keys {
		kept := k.ops[:0]
		for _, o := range k.ops {
			if o.kind == fDropped || o.kind == fRead && o.unknown {
				continue
			}
			if o.unknown {
				unknown++
			}
			kept = append(kept, o)
		}
		k.ops = kept
	}
	return s.keys, unknown, nil
}

// corruptRead is an ok read whose value is neither an integer nor null.
type corruptRead struct {
	o   *rop
	raw string
}

// pruneKey shrinks the search without changing the verdict:
//
//   - An unknown write or cas whose new value v is never observed (no ok read returns v, no
//     kept cas expects v) is dropped: in any linearization that uses it, the ops linearized while
//     the register holds v neither read v nor match it, so deleting it (and moving unknown
//     cas ops that did nothing there to the end) leaves a linearization of the rest.
//   - An unknown op that is the only writer of v, and whose v is observed by an ok op, must take
//     effect before the earliest return of such an observer: its return is pinned there.
func pruneKey(k *registerKey) (pruned, pinned int) {
	type seen struct {
		writers  int
		observed bool
		firstRet int64 // earliest return of an ok op observing the value
	}
	vals := make(map[int64]*seen, len(k.ops))
	get := func(v int64) *seen {
		s := vals[v]
		if s == nil {
			s = &seen{firstRet: math.MaxInt64}
			vals[v] = s
		}
		return s
	}
	observe := func(v int64, o *rop) {
		s := get(v)
		s.observed = true
		if !o.unknown && o.ret < s.firstRet {
			s.firstRet = o.ret
		}
	}
	for _, o := range k.ops {
		switch o.kind {
		case fRead:
			if o.present {
				observe(o.a, o)
			}
		case fWrite:
			get(o.a).writers++
		case fCAS:
			get(o.b).writers++
			observe(o.a, o)
		}
	}
	kept := k.ops[:0]
	for _, o := range k.ops {
		if o.unknown && o.kind != fRead {
			v := o.a
			if o.kind == fCAS {
				v = o.b
			}
			s := vals[v]
			if !s.observed {
				pruned++
				continue
			}
			if s.writers == 1 && s.firstRet != math.MaxInt64 && s.firstRet >= o.call {
				o.ret = s.firstRet
				pinned++
			}
		}
		kept = append(kept, o)
	}
	k.ops = kept
	return pruned, pinned
}

// segment is a stretch of one key's history that can be checked on its own: it starts from a
// known state and, unless it is the last, ends with an op after which the state is known.
type segment struct {
	key     *registerKey
	start   *regState
	ops     []*rop
	verdict Validity
}

// SegmentTarget is the size a key's history grows to before it is cut at the next op that
// isolates it (see segments); small segments keep porcupine's bitsets and caches small.
const SegmentTarget = 256

// segments cuts a key's history at isolated ops: an ok op that overlaps no other op, every
// earlier op having returned before it is invoked and every later op invoked after it
// returned. Any linearization passes through such an op alone, and the state after it is known
// (the value read, written or swapped in), so the ops before it (it included) and the ops after
// it (starting from that state) are linearizable exactly when the whole is. Unknown ops that
// remain open until the end (return ∞) prevent every later cut.
func (k *registerKey) segments(target int) []*segment {
	ops := k.ops
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].call < ops[j].call })
	var out []*segment
	from, state := 0, absentState
	maxRet := int64(math.MinInt64)
	for i, o := range ops {
		isolated := !o.unknown && maxRet < o.call && (i+1 == len(ops) || o.ret < ops[i+1].call)
		if o.ret > maxRet {
			maxRet = o.ret
		}
		if !isolated || i+1-from < target || i+1 == len(ops) {
			continue
		}
		out = append(out, &segment{key: k, start: state, ops: ops[from : i+1]})
		switch {
		case o.kind != fRead:
			state = o.next
		case o.present:
			state = &regState{v: o.a}
		default:
			state = absentState
		}
		from = i + 1
	}
	if from < len(ops) || len(out) == 0 {
		out = append(out, &segment{key: k, start: state, ops: ops[from:]})
	}
	return out
}

// model is the register model starting from the segment's state.
func (s *segment) model(g *memGuard) porcupine.Model {
	m := registerModel
	start := s.start
	m.Init = func() any { return start }
	return g.guard(m)
}

// operations turns a segment's ops into porcupine operations with dense client ids.
func (s *segment) operations() []porcupine.Operation {
	clients := map[history.Process]int{}
	out := make([]porcupine.Operation, len(s.ops))
	for i, o := range s.ops {
		c, ok := clients[o.proc]
		if !ok {
			c = len(clients)
			clients[o.proc] = c
		}
		out[i] = porcupine.Operation{ClientId: c, Input: o, Call: o.call, Return: o.ret}
	}
	return out
}

// Check implements Checker.
func (r Register) Check(ctx context.Context, ops []history.Op) Result {
	start := time.Now()
	return r.check(ctx, start, splitRegister(ops))
}

// Accumulate returns an accumulator that takes the history line by line (see Accumulator).
func (r Register) Accumulate() Accumulator {
	return &registerAcc{r: r, start: time.Now(), s: newRegisterSplitter(0)}
}

type registerAcc struct {
	r     Register
	start time.Time
	s     *registerSplitter
}

func (a *registerAcc) Add(op *history.Op) { a.s.add(op) }

func (a *registerAcc) Result(ctx context.Context) Result { return a.r.check(ctx, a.start, a.s) }

// check judges the split history.
func (r Register) check(ctx context.Context, start time.Time, split *registerSplitter) Result {
	keys, unknownOps, err := split.finish()
	if err != nil {
		return Result{Valid: Unknown, Error: "malformed register history: " + err.Error()}
	}
	d := &RegisterDetails{Keys: len(keys), Unknown: unknownOps, PerKey: make(map[string]KeyResult, len(keys))}
	decided := r.checkUniqueKeys(keys, d)
	var segs []*segment
	for _, k := range keys {
		if _, ok := decided[k]; ok {
			continue
		}
		if !r.NoPrune {
			p, q := pruneKey(k)
			d.Pruned += p
			d.Pinned += q
		}
		target := SegmentTarget
		if r.NoPrune {
			target = math.MaxInt // NoPrune checks each key whole, as porcupine alone would
		}
		segs = append(segs, k.segments(target)...)
	}
	d.Segments = len(segs)
	deadline, hasDeadline := ctx.Deadline()
	if r.Timeout > 0 && (!hasDeadline || start.Add(r.Timeout).Before(deadline)) {
		deadline, hasDeadline = start.Add(r.Timeout), true
	}
	remaining := func() (time.Duration, bool) {
		if !hasDeadline {
			return 0, true
		}
		left := time.Until(deadline)
		return left, left > 0
	}

	// Largest segments first, so the pool ends evenly.
	order := append([]*segment(nil), segs...)
	sort.SliceStable(order, func(i, j int) bool { return len(order[i].ops) > len(order[j].ops) })
	var next atomic.Int64
	workers := r.Parallelism
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	limit := uint64(DefaultMemoryLimit)
	switch {
	case r.MemoryLimit > 0:
		limit = uint64(r.MemoryLimit)
	case r.MemoryLimit < 0:
		limit = 0
	}
	guard := startMemGuard(limit)
	defer guard.stop()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(order) {
					return
				}
				s := order[i]
				s.verdict = Unknown
				if left, ok := remaining(); ok && ctx.Err() == nil && !guard.tripped() {
					v := fromPorcupine(porcupine.CheckOperationsTimeout(s.model(guard), s.operations(), left))
					if !guard.tripped() { // a tripped guard forced steps to fail: no verdict
						s.verdict = v
					}
				}
			}
		}()
	}
	wg.Wait()

	res := Result{Valid: Valid}
	var bad []*segment
	verdict := make(map[*registerKey]Validity, len(keys))
	for k, u := range decided {
		verdict[k] = Valid
		if !u.valid {
			verdict[k] = Invalid
		}
	}
	for _, s := range segs { // in key order, each key's segments in time order
		v, seen := verdict[s.key]
		switch {
		case !seen || v == Valid:
			v = s.verdict
		case v == Unknown && s.verdict == Invalid:
			v = Invalid
		}
		verdict[s.key] = v
		if s.verdict == Invalid && (len(bad) == 0 || bad[len(bad)-1].key != s.key) {
			bad = append(bad, s) // the first invalid segment of each key
		}
	}
	var uniqueBad []*registerKey
	for _, k := range keys {
		v := verdict[k]
		d.Ops += len(k.ops)
		kr := d.PerKey[k.name]
		kr.Ops, kr.Valid = len(k.ops), v
		if kr.Method == "" {
			kr.Method = MethodPorcupine
		}
		if v == Unknown {
			kr.Why = "porcupine did not finish within the timeout"
			if guard.tripped() {
				kr.Why = guard.reason()
			}
		}
		d.PerKey[k.name] = kr
		if u, ok := decided[k]; ok && !u.valid {
			uniqueBad = append(uniqueBad, k)
		}
		switch v {
		case Invalid:
			d.InvalidKeys = append(d.InvalidKeys, k.name)
		case Unknown:
			d.UnknownKeys = append(d.UnknownKeys, k.name)
		}
	}
	switch {
	case len(bad) > 0 || len(uniqueBad) > 0:
		res.Valid = Invalid
		windows := split.windows()
		r.explainUnique(uniqueBad, decided, d, &res, remaining, windows)
		r.explain(bad, d, &res, remaining, guard, windows)
	case len(d.UnknownKeys) > 0:
		res.Valid = Unknown
		res.Error = fmt.Sprintf("linearizability check of %d of %d keys did not finish within the timeout", len(d.UnknownKeys), len(keys))
		if guard.tripped() {
			res.Error = fmt.Sprintf("linearizability check of %d of %d keys stopped: %s", len(d.UnknownKeys), len(keys), guard.reason())
		}
	}
	d.Seconds = time.Since(start).Seconds()
	res.Details = d
	return res
}

func fromPorcupine(r porcupine.CheckResult) Validity {
	switch r {
	case porcupine.Ok:
		return Valid
	case porcupine.Illegal:
		return Invalid
	}
	return Unknown
}

// explain re-checks invalid keys verbosely to find the op that cannot be linearized, builds
// excerpts and the first anomaly, and writes visualisations.
func (r Register) explain(bad []*segment, d *RegisterDetails, res *Result, remaining func() (time.Duration, bool), guard *memGuard, windows []Window) {
	if r.VisualizeDir != "" {
		if err := os.MkdirAll(r.VisualizeDir, 0o755); err != nil {
			res.Error = fmt.Sprintf("cannot create visualisation folder: %v", err)
		}
	}
	for i, seg := range bad {
		k := seg.key
		kr := d.PerKey[k.name]
		left, ok := remaining()
		if i >= MaxVisualize || !ok {
			if res.Error == "" {
				res.Error = fmt.Sprintf("key %q is not linearizable", k.name)
			}
			continue
		}
		result, info := porcupine.CheckOperationsVerbose(seg.model(guard), seg.operations(), left)
		if result != porcupine.Illegal || guard.tripped() {
			continue // timed out while explaining; the verdict stands
		}
		kr.Excerpt, kr.Anomaly = excerpt(seg, info)
		vis := seg // what the visualisation shows: the counterexample when it is one
		if small := shrinkSegment(seg, guard, ShrinkBudget); len(small) < len(seg.ops) {
			shrunk := &segment{key: seg.key, start: seg.start, ops: small}
			if result, sinfo := porcupine.CheckOperationsVerbose(shrunk.model(guard), shrunk.operations(), time.Second); result == porcupine.Illegal && !guard.tripped() {
				kr.Counterexample, vis, info = briefs(small, ""), shrunk, sinfo
				if !seg.start.absent { // a later segment: it starts from the state its cut left
					kr.Counterexample[0].Note = "the register holds " + describeState(seg.start) + " before these ops"
				}
			}
		}
		d.PerKey[k.name] = kr
		if kr.Anomaly != nil && (res.FirstAnomaly == nil || kr.Anomaly.Time < res.FirstAnomaly.Time) {
			res.FirstAnomaly = kr.Anomaly
			res.Error = kr.Anomaly.Description
		}
		if r.VisualizeDir != "" {
			path := filepath.Join(r.VisualizeDir, "linear-"+sanitize(k.name)+".html")
			annotate(&info, windows, vis.ops)
			if err := porcupine.VisualizePath(vis.model(nil), info, path); err == nil {
				d.Files = append(d.Files, path)
				if kr.Anomaly != nil {
					kr.Anomaly.Visualization = filepath.Base(path) // also res.FirstAnomaly when it is this key's
				}
			}
		}
	}
	if res.Error == "" {
		res.Error = fmt.Sprintf("key %q is not linearizable", d.InvalidKeys[0])
	}
}

// excerpt finds the longest partial linearization, the op whose return it could not get past,
// and the ops around it.
func excerpt(seg *segment, info porcupine.LinearizationInfo) ([]OpBrief, *Anomaly) {
	k := registerKey{name: seg.key.name, ops: seg.ops}
	parts := info.PartialLinearizations()
	if len(parts) == 0 {
		return nil, nil
	}
	var longest []int
	for _, l := range parts[0] {
		if len(l) > len(longest) {
			longest = l
		}
	}
	in := make([]bool, len(k.ops))
	state := seg.start
	for _, id := range longest {
		in[id] = true
		_, s := registerModel.Step(state, k.ops[id], nil)
		state = s.(*regState)
	}
	stuck := -1
	for i, o := range k.ops {
		if !in[i] && o.ret != math.MaxInt64 && (stuck < 0 || o.ret < k.ops[stuck].ret) {
			stuck = i
		}
	}
	if stuck < 0 {
		return nil, nil
	}
	s := k.ops[stuck]
	brief := func(o *rop, note string) OpBrief {
		ret := o.ret
		if o.unknown {
			ret = -1
		}
		return OpBrief{Index: o.index, Process: o.proc, Op: o.String(), Call: o.call, Return: ret, Note: note}
	}
	var out []OpBrief
	from := max(0, len(longest)-5)
	for j, id := range longest[from:] {
		note := "linearized"
		if from+j == len(longest)-1 {
			note = "last linearized, state now " + describeState(state)
		}
		out = append(out, brief(k.ops[id], note))
	}
	out = append(out, brief(s, "cannot be linearized"))
	for i, o := range k.ops {
		if len(out) >= 20 {
			break
		}
		if i != stuck && !in[i] && o.call <= s.ret && o.ret >= s.call {
			out = append(out, brief(o, "concurrent, not linearized"))
		}
	}
	idx, t := s.index, s.call
	if s.done >= 0 {
		idx, t = s.done, s.ret
	}
	a := &Anomaly{
		Index: idx, Time: t, Key: k.name, Process: s.proc,
		Description: fmt.Sprintf("key %q: %s by process %d (index %d) cannot be linearized; after the longest linearizable prefix (%d ops from index %d, starting at %s) the register holds %s",
			k.name, s.String(), s.proc, s.index, len(longest), k.ops[0].index, describeState(seg.start), describeState(state)),
	}
	return out, a
}

// sanitize makes a key safe as part of a file name.
func sanitize(key string) string {
	var b strings.Builder
	for _, c := range key {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 || b.Len() > 100 || b.String() != key {
		// Keep distinct keys apart: "a/b" and "a_b" must not share a file.
		short := b.String()
		if len(short) > 60 {
			short = short[:60]
		}
		return fmt.Sprintf("%s-%08x", short, uint32(hashString(key)))
	}
	return key
}

func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

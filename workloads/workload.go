// Package workloads generates client operations against the cluster through the official
// consul/api client and records each one in the history: an invoke before the call, then exactly
// one completion (ok, fail or info). Each workload names the checkers that judge its history.
package workloads

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/history"
)

// Endpoint is one node's HTTP API.
type Endpoint struct {
	Name string // node name, recorded as Op.Node on completions
	Addr string // "ip:8500"
}

// Read modes accepted in Config.ReadMode; they map to Consul's ?consistent, default and ?stale.
const (
	ReadConsistent = "consistent"
	ReadDefault    = "default"
	ReadStale      = "stale"
)

// Config is what a workload needs to run. Zero values take the defaults named on each field.
type Config struct {
	// Endpoints are the nodes to talk to; worker w uses Endpoints[w % len(Endpoints)]. Required.
	Endpoints []Endpoint
	// Concurrency is the number of client workers. Default: 2 × len(Endpoints).
	Concurrency int
	// Rate is the target total ops/s over all workers; 0 means as fast as the cluster answers.
	Rate float64
	// Keys is the number of independent register keys (register only). Default 10. More keys
	// keep each key's history short, which keeps the linearizability check fast.
	Keys int
	// OpTimeout bounds every client call; an expired write becomes info, an expired read fail.
	// Default 2s. Keep it below Consul's 7s RPC hold time so a leaderless cluster shows up as
	// timeouts rather than as a stalled run.
	OpTimeout time.Duration
	// ReadMode is consistent (default), default or stale; stale is the negative control.
	ReadMode string
	// Seed makes every worker's choice of keys and operations repeatable.
	Seed int64
	// Recorder receives every operation. Required.
	Recorder *history.Recorder
	// Lock is the lock workload's shape (lock only); its zero value has no stalls and no abandons.
	Lock LockShape
	// KeyPrefix is prepended to every Consul key, e.g. "jepsen/". Default "jepsen/".
	KeyPrefix string
}

// CheckOptions tune the checkers a workload asks for.
type CheckOptions struct {
	Timeout      time.Duration // linearizability check budget; expiry gives "unknown"
	VisualizeDir string        // where porcupine's HTML goes ("" = none)
}

// Workload is a client load: Run generates operations while faults happen, Final reads
// everything back at the end, and Checkers say how to judge the resulting history.
type Workload interface {
	// Name is the workload's name as given to New.
	Name() string
	// Run generates operations until ctx is done and returns once every in-flight operation has
	// completed and been recorded. It returns an error only for an unusable Config.
	Run(ctx context.Context, cfg Config) error
	// Final reads every key through every endpoint in consistent mode, recorded as ordinary
	// operations. Call it on the same Workload after Run, so process numbers stay unique. Failed
	// reads are recorded (fail) for the liveness checker; the error is only for an unusable Config.
	Final(ctx context.Context, cfg Config) error
	// Checkers are the checkers for this workload's histories.
	Checkers(o CheckOptions) []checker.Checker
}

var constructors = map[string]func() Workload{
	"register": func() Workload { return &Register{} },
	"set":      func() Workload { return &Set{} },
	"lock":     func() Workload { return &Lock{} },
}

// Names lists the valid workload names, sorted.
func Names() []string {
	names := make([]string, 0, len(constructors))
	for n := range constructors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New returns a fresh workload by name.
func New(name string) (Workload, error) {
	mk, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("unknown workload %q (valid: %s)", name, strings.Join(Names(), ", "))
	}
	return mk(), nil
}

// Infer says which workload produced a history: "lock" if it has acquire operations, "set" if it
// has add operations, "register" if it has write or cas operations (or only reads of single keys).
func Infer(ops []history.Op) (string, error) {
	var add, reg, read bool
	for _, op := range ops {
		if op.IsNemesis() {
			continue
		}
		switch op.F {
		case "acquire":
			return "lock", nil
		case "add":
			add = true
		case "write", "cas":
			reg = true
		case "read":
			read = true
		}
	}
	switch {
	case add && reg:
		return "", errors.New("history mixes set adds with register writes: cannot tell the workload")
	case add:
		return "set", nil
	case reg || read:
		return "register", nil
	}
	return "", errors.New("history has no client operations: cannot tell the workload")
}

// withDefaults validates cfg and fills in the documented defaults.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Endpoints) == 0 {
		return cfg, errors.New("workload config: Endpoints is empty")
	}
	for i, e := range cfg.Endpoints {
		if e.Addr == "" {
			return cfg, fmt.Errorf("workload config: Endpoints[%d] (%q) has no Addr", i, e.Name)
		}
	}
	if cfg.Recorder == nil {
		return cfg, errors.New("workload config: Recorder is nil")
	}
	if cfg.Concurrency < 0 || cfg.Keys < 0 || cfg.Rate < 0 || cfg.OpTimeout < 0 {
		return cfg, errors.New("workload config: Concurrency, Keys, Rate and OpTimeout must not be negative")
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 2 * len(cfg.Endpoints)
	}
	if cfg.Keys == 0 {
		cfg.Keys = 10
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = 2 * time.Second
	}
	switch cfg.ReadMode {
	case "":
		cfg.ReadMode = ReadConsistent
	case ReadConsistent, ReadDefault, ReadStale:
	default:
		return cfg, fmt.Errorf("workload config: ReadMode %q is not one of consistent, default, stale", cfg.ReadMode)
	}
	if err := cfg.Lock.Validate(); err != nil {
		return cfg, fmt.Errorf("workload config: %w", err)
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "jepsen/"
	}
	return cfg, nil
}

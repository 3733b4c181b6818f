package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/raftcheck/harness/harness"
	"github.com/raftcheck/harness/results"
)

// TestReproductionFlagsExist ties the names results.ReproduceCommand relies on to `harness run`:
// the flags it drops exist, and every option in test.json maps (results.OptionFlag) to a flag.
func TestReproductionFlagsExist(t *testing.T) {
	flags := newRunCmd().Flags()
	has := func(flag string) bool { return flags.Lookup(strings.TrimPrefix(flag, "--")) != nil }
	for _, f := range append([]string{results.FlagSeed, results.FlagAgentArg}, results.RunOnlyFlags...) {
		if !has(f) {
			t.Errorf("harness run has no flag %s", f)
		}
	}
	o := harness.Defaults()
	o.AgentBinary, o.AgentImage, o.Unsafe, o.AgentArgs, o.PartitionShapes, o.RestartRolling = "b", "i", []string{"u"}, []string{"a"}, []string{"s"}, true
	o.Checkers = []string{"stats"}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var opts map[string]json.RawMessage
	if err := json.Unmarshal(b, &opts); err != nil {
		t.Fatal(err)
	}
	for k := range opts {
		if !has(results.OptionFlag(k)) {
			t.Errorf("option %s: harness run has no flag %s", k, results.OptionFlag(k))
		}
	}
}

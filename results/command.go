package results

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TestInfo is what the report reads from test.json. The harness writes more fields; the
// options are kept as raw JSON so the report shows every one of them.
type TestInfo struct {
	Options     map[string]json.RawMessage `json:"options"`
	Seed        int64                      `json:"seed"`
	RunID       string                     `json:"run_id"`
	Start       time.Time                  `json:"start"`
	GitRevision string                     `json:"git_revision"`
	CommandLine []string                   `json:"command_line"`
	AgentImage  string                     `json:"agent_image"`
	// TargetVersion is what the target's binary says it is ("Consul v1.20.1"), when it says.
	TargetVersion string `json:"target_version,omitempty"`
	// NodeCommands is every node's command line, by node name.
	NodeCommands map[string][]string `json:"node_commands,omitempty"`
	// Releases are the releases an upgrade run switches between ("consul@1.15.7" → its image and
	// what its binary says it is).
	Releases map[string]Release `json:"releases,omitempty"`
}

// Release is one release an upgrade run prepared.
type Release struct {
	Image   string `json:"image"`
	Version string `json:"version,omitempty"`
}

// TargetName is what the run tested, from the target option ("agent", "consul@1.20.1",
// "custom"); runs recorded before targets existed, or without test.json options, ran the agent.
func (t TestInfo) TargetName() string {
	var name string
	if raw, ok := t.Options["target"]; ok && json.Unmarshal(raw, &name) == nil && name != "" {
		return name
	}
	return "agent"
}

// TargetLabel is TargetName with what the binary said it is, e.g. "consul@1.20.1 (Consul v1.20.1)".
func (t TestInfo) TargetLabel() string {
	if t.TargetVersion != "" {
		return t.TargetName() + " (" + t.TargetVersion + ")"
	}
	return t.TargetName()
}

// NodeCommandLines are the recorded node command lines in node order, shell-quoted.
func (t TestInfo) NodeCommandLines() [][2]string {
	names := make([]string, 0, len(t.NodeCommands))
	for n := range t.NodeCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([][2]string, 0, len(names))
	for _, n := range names {
		q := make([]string, len(t.NodeCommands[n]))
		for i, a := range t.NodeCommands[n] {
			q[i] = shellQuote(a)
		}
		out = append(out, [2]string{n, strings.Join(q, " ")})
	}
	return out
}

// The names a reproduction relies on, each defined once here. The options are test.json's keys
// (the JSON names of harness.Options); the flags are `harness run`'s. Tests in package harness
// and in cmd/harness check these lists against Options and the run command, so a renamed option
// or flag fails a test instead of silently dropping out of the reproduction.
const (
	// OptionSeed is the seed option; ReproduceCommand gives it as FlagSeed.
	OptionSeed = "seed"
	// OptionAgentArgs is the one list option whose flag is repeated, once per element, and
	// named in the singular: FlagAgentArg.
	OptionAgentArgs = "agent_args"
	// FlagSeed is `harness run --seed`.
	FlagSeed = "--seed"
	// FlagAgentArg is `harness run --agent-arg`, repeatable.
	FlagAgentArg = "--agent-arg"
)

// RunOnlyFlags are the flags of `harness run` that do not change the test (which seed, how many
// runs, where JUnit goes); a reproduction drops them and adds FlagSeed N.
var RunOnlyFlags = []string{FlagSeed, "--test-count", "--junit"}

// DurationOptions are the options stored as nanoseconds: the time.Duration fields of
// harness.Options, by their JSON names.
var DurationOptions = []string{"time_limit", "op_timeout", "nemesis_interval", "recovery_time", "check_timeout", "ready_timeout", "power_writeback"}

// OptionFlag is the `harness run` flag that sets the option named key: option foo_bar is
// --foo-bar, and OptionAgentArgs is FlagAgentArg.
func OptionFlag(key string) string {
	if key == OptionAgentArgs {
		return FlagAgentArg
	}
	return "--" + strings.ReplaceAll(key, "_", "-")
}

// ReproduceCommand returns the shell command that runs the same test again with the same seed:
// the recorded `harness run` command line without the RunOnlyFlags, plus --seed N. When the run
// was not started by `harness run` (soak, selftest), it is rebuilt from the options instead.
func ReproduceCommand(t TestInfo) string {
	args := []string{"harness", "run"}
	if len(t.CommandLine) >= 2 && t.CommandLine[1] == "run" {
		rest := t.CommandLine[2:]
		for i := 0; i < len(rest); i++ {
			a := rest[i]
			name, _, hasValue := strings.Cut(a, "=")
			if slices.Contains(RunOnlyFlags, name) {
				if !hasValue {
					i++ // the value is the next argument
				}
				continue
			}
			args = append(args, a)
		}
	} else {
		args = append(args, optionFlags(t.Options)...)
	}
	args = append(args, FlagSeed, strconv.FormatInt(t.Seed, 10))
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}

// optionFlags turns stored options back into `harness run` flags (named by OptionFlag).
func optionFlags(opts map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		if k == OptionSeed || k == "nemesis_together" {
			continue
		}
		flag := OptionFlag(k)
		var list []string
		if json.Unmarshal(opts[k], &list) == nil {
			if k == "nemesis" && string(opts["nemesis_together"]) == "true" {
				out = append(out, flag+"="+strings.Join(list, "+")) // faults at the same time
			} else if k == OptionAgentArgs {
				for _, a := range list {
					out = append(out, flag+"="+a)
				}
			} else if len(list) > 0 {
				out = append(out, flag+"="+strings.Join(list, ","))
			}
			continue
		}
		v := optionText(k, opts[k])
		if v == "" || v == "null" {
			continue
		}
		out = append(out, flag+"="+v)
	}
	return out
}

// optionText renders an option's value for people: durations as durations, strings unquoted.
func optionText(key string, raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n int64
	if slices.Contains(DurationOptions, key) && json.Unmarshal(raw, &n) == nil {
		return time.Duration(n).String()
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, ",")
	}
	return string(raw)
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain characters.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	plain := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-./=:,@%+", c)) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// optionRows returns the options sorted by name, for display.
func optionRows(opts map[string]json.RawMessage) [][2]string {
	var rows [][2]string
	for k, v := range opts {
		rows = append(rows, [2]string{k, optionText(k, v)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	return rows
}

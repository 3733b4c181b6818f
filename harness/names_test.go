package harness

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/results"
)

// TestDurationOptionsMatchOptions ties results.DurationOptions (how the report and the
// reproduction read test.json) to Options: exactly the time.Duration fields, by JSON name.
func TestDurationOptionsMatchOptions(t *testing.T) {
	var want []string
	typ := reflect.TypeFor[Options]()
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if f.Type == reflect.TypeFor[time.Duration]() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			want = append(want, name)
		}
	}
	got := slices.Sorted(slices.Values(results.DurationOptions))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("results.DurationOptions %v, Options' durations %v", got, want)
	}
	o := Defaults()
	o.AgentArgs = []string{"-x"} // omitted when empty
	for _, k := range []string{results.OptionSeed, results.OptionAgentArgs} {
		if _, ok := optionsJSON(o)[k]; !ok {
			t.Errorf("test.json has no option %q", k)
		}
	}
}

package harness

import "testing"

// TestMostNamedLeader: most votes wins; a tie goes to the lowest name, whatever the map order,
// so that the nemesis's leader-targeted faults replay under the same seed.
func TestMostNamedLeader(t *testing.T) {
	for _, tc := range []struct {
		leaders map[string]string
		want    string
	}{
		{nil, ""},
		{map[string]string{"n1": "", "n2": ""}, ""},
		{map[string]string{"n1": "n2", "n2": "n2", "n3": "n2"}, "n2"},
		{map[string]string{"n1": "n3", "n2": "n3", "n3": "n1"}, "n3"},
		{map[string]string{"n1": "n3", "n2": "", "n3": ""}, "n3"},
		{map[string]string{"n1": "n3", "n2": "n2", "n3": "n1"}, "n1"},                       // three-way tie
		{map[string]string{"n1": "n2", "n2": "n1", "n3": "", "n4": "n5", "n5": "n5"}, "n5"}, // most votes beats lower names
		{map[string]string{"n1": "n5", "n2": "n4", "n3": "n4", "n4": "n5"}, "n4"},           // two-way tie
	} {
		for i := 0; i < 50; i++ { // map order varies between ranges
			if got := mostNamedLeader(tc.leaders); got != tc.want {
				t.Fatalf("mostNamedLeader(%v) = %q, want %q", tc.leaders, got, tc.want)
			}
		}
	}
}

package docker

import "testing"

// TestWithOwner: HARNESS_OWNER, when set, labels what the package creates; unset, no label.
func TestWithOwner(t *testing.T) {
	t.Setenv("HARNESS_OWNER", "")
	if l := withOwner(map[string]string{LabelRun: "r"}); len(l) != 1 {
		t.Errorf("no owner set, labels %v", l)
	}
	t.Setenv("HARNESS_OWNER", "ci-1")
	if l := withOwner(map[string]string{LabelRun: "r"}); l[LabelOwner] != "ci-1" || l[LabelRun] != "r" {
		t.Errorf("owner ci-1, labels %v", l)
	}
}

package targets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSayLicence: a cached release under a licence that is not open source gets one line naming
// it on every use; an open-source one, or one whose licence was never recorded, says nothing.
func TestSayLicence(t *testing.T) {
	for _, tc := range []struct{ recorded, want string }{
		{"BUSL-1.1 not-open\n", "Consul v9.9.9 is under BUSL-1.1, not an open-source licence"},
		{"MPL-2.0 open\n", ""},
		{"", ""},
	} {
		dir := t.TempDir()
		if tc.recorded != "" {
			if err := os.WriteFile(filepath.Join(dir, licenceFile), []byte(tc.recorded), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var b strings.Builder
		sayLicence(&b, "9.9.9", dir)
		if got := b.String(); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) || strings.Count(got, "\n") > 1 {
			t.Errorf("recorded %q: said %q, want %q", tc.recorded, got, tc.want)
		}
	}
}

package powerfs

import (
	"fmt"
	"os/exec"
	"strings"
)

// fusermountU unmounts through the setuid helper, for callers that are not root.
func fusermountU(mountpoint string) error {
	for _, bin := range []string{"fusermount3", "fusermount"} {
		if _, err := exec.LookPath(bin); err != nil {
			continue
		}
		out, err := exec.Command(bin, "-u", "-z", mountpoint).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s -u %s: %v: %s", bin, mountpoint, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	return fmt.Errorf("unmount %s: not root and no fusermount found", mountpoint)
}

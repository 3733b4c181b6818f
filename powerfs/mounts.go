package powerfs

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// Leftovers lists the mountpoints of every powerfs mount on the machine, of any process,
// from /proc/self/mountinfo. A mount whose process died answers "transport endpoint is not
// connected" until it is unmounted.
func Leftovers() ([]string, error) {
	fh, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 2 || g[1] != FsName {
			continue
		}
		out = append(out, unescapeMount(f[4]))
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Unmount detaches the mount at mountpoint at once, also when its process is dead or a user is
// still inside (a lazy unmount).
func Unmount(mountpoint string) error { return unmountDetach(mountpoint) }

func unmountDetach(mountpoint string) error {
	err := syscall.Unmount(mountpoint, syscall.MNT_DETACH)
	if err == syscall.EPERM {
		// Not root: the fusermount helper may do it.
		return fusermountU(mountpoint)
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", mountpoint, err)
	}
	return nil
}

package netfault

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

const usage = `usage: netfault net COMMAND [flags]

Commands (they act on the network namespace the process runs in):
  set [--drop-in IP,IP] [--drop-out IP,IP] [--loss PCT] [--loss-peers IP,IP]
        replace the fault state in one transaction; "set" without flags heals.
        --loss drops that percentage of packets at random, to and from --loss-peers
        (or, without --loss-peers, of all traffic not on the loopback interface).
  heal  remove every fault (idempotent)
  probe check that nftables can be programmed here (needs CAP_NET_ADMIN)
  show  print the current fault state in the flags of "set"

Exit status: 0 done, 1 failed (reason on stderr), 2 bad arguments.
`

// Main runs the `net` command line (args without the leading "net") and returns the exit
// status: 0 done, 1 failed with the reason on stderr, 2 bad arguments.
func Main(args []string) int {
	return run(args, os.Stdout, os.Stderr)
}

// errUsage marks an argument error; the caller prints usage and exits 2.
var errUsage = errors.New("bad arguments")

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "set":
		var r Rules
		if r, err = ParseSet(rest); err == nil {
			err = Apply(r)
		}
	case "heal", "probe", "show":
		if len(rest) > 0 {
			err = fmt.Errorf("%w: %q takes no arguments, got %q", errUsage, cmd, rest)
			break
		}
		switch cmd {
		case "heal":
			err = Heal()
		case "probe":
			if err = Probe(); err == nil {
				fmt.Fprintln(stdout, "ok: nftables usable")
			}
		case "show":
			var r Rules
			if r, err = Show(); err == nil {
				fmt.Fprintln(stdout, r)
			}
		}
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "net: %v\n\n%s", err, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "net: %v\n", err)
		return 1
	}
}

// ParseSet parses the flags of `net set` into Rules. Errors wrap errUsage.
func ParseSet(args []string) (Rules, error) {
	var r Rules
	fs := flag.NewFlagSet("net set", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Func("drop-in", "drop packets from these IPs (comma separated)", addrList(&r.DropIn))
	fs.Func("drop-out", "drop packets to these IPs (comma separated)", addrList(&r.DropOut))
	fs.IntVar(&r.LossPercent, "loss", 0, "random loss percentage 0..100")
	fs.Func("loss-peers", "limit loss to these IPs (comma separated)", addrList(&r.LossPeers))
	if err := fs.Parse(args); err != nil {
		return Rules{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return Rules{}, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if len(r.LossPeers) > 0 && r.LossPercent == 0 {
		return Rules{}, fmt.Errorf("%w: --loss-peers needs --loss", errUsage)
	}
	if err := r.Validate(); err != nil {
		return Rules{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	return r, nil
}

// addrList returns a flag function that appends comma-separated IP addresses to dst; it may
// be given more than once, and an empty value adds nothing.
func addrList(dst *[]netip.Addr) func(string) error {
	return func(s string) error {
		for f := range strings.SplitSeq(s, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			a, err := netip.ParseAddr(f)
			if err != nil {
				return fmt.Errorf("%q is not an IP address", f)
			}
			*dst = append(*dst, a)
		}
		return nil
	}
}

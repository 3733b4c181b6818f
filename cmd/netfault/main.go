// Command netfault is the harness's network-fault helper: a static binary in its own scratch
// image that the harness runs in a short-lived container sharing a node's network namespace, so
// that partitions and packet loss work on any target (the project's agent, real Consul, a user's
// image) without running anything inside the target's container.
//
//	netfault net set --drop-in IP,IP --drop-out IP --loss PCT --loss-peers IP,IP
//	netfault net heal | show | probe
//
// The leading "net" is optional; see the netfault package for the rules.
package main

import (
	"os"

	"github.com/raftcheck/harness/netfault"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "net" {
		args = args[1:]
	}
	os.Exit(netfault.Main(args))
}

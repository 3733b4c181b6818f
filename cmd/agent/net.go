package main

import "github.com/raftcheck/harness/netfault"

// netMain runs the network-fault subcommand (`agent net ARGS...`) inside this process's
// network namespace, so the harness can exec it in a container that has no shell.
func netMain(args []string) int {
	return netfault.Main(args)
}

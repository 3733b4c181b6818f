// Command agent is the project's Consul-compatible server, the system under test of the
// harness. See package github.com/raftcheck/harness/agent for flags and endpoints.
//
//	agent [agent] -server -bootstrap-expect=3 -node=n1 -data-dir=/data -retry-join=10.0.0.2 ...
//
// Network faults are not the agent's business: the harness applies them from outside, through the
// netfault helper (cmd/netfault), as it does for real Consul.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/raftcheck/harness/agent"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "agent" {
		args = args[1:]
	}
	cfg, err := agent.ParseFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "agent: %v\n", err)
		return 2
	}
	// PID 1 in a container ignores signals without handlers: catch them before starting.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	a, err := agent.New(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "[%s] agent: start failed: %v\n", cfg.NodeName, err)
		return 1
	}
	for {
		select {
		case <-a.ShutdownCh(): // PUT /v1/agent/leave
			a.Shutdown()
			return 0
		case s := <-sigs:
			leave := false
			switch s {
			case syscall.SIGHUP:
				fmt.Fprintf(os.Stderr, "[%s] agent: SIGHUP ignored (no reloadable configuration)\n", cfg.NodeName)
				continue
			case syscall.SIGTERM:
				leave = cfg.LeaveOnTerminate
			case syscall.SIGINT:
				leave = !cfg.SkipLeaveOnInterrupt
			}
			fmt.Fprintf(os.Stderr, "[%s] agent: caught signal %v, graceful leave: %v\n", cfg.NodeName, s, leave)
			go func() {
				// A second signal forces an immediate exit, as Consul.
				<-sigs
				os.Exit(1)
			}()
			if leave {
				if err := a.Leave(); err != nil {
					fmt.Fprintf(os.Stderr, "[%s] agent: leave: %v\n", cfg.NodeName, err)
				}
			}
			if err := a.Shutdown(); err != nil {
				fmt.Fprintf(os.Stderr, "[%s] agent: shutdown: %v\n", cfg.NodeName, err)
				return 1
			}
			return 0
		}
	}
}

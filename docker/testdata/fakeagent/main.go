// Command fakeagent stands in for the agent in the docker package's tests.
//
//	fakeagent [serve]   listen on :8500, answer each connection with one line, exit 0 on
//	                    SIGTERM/SIGINT (after printing "got <signal>"), ignore SIGHUP
//	fakeagent net ...   the netfault command line
//	fakeagent dial ADDR connect to ADDR and read one line within 1 s; exit 1 on failure
//	fakeagent echo ARGS print ARGS on stdout and "to stderr" on stderr
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/raftcheck/harness/netfault"
)

func main() {
	cmd := "serve"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	switch cmd {
	case "net":
		os.Exit(netfault.Main(os.Args[2:]))
	case "dial":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: dial ADDR")
			os.Exit(2)
		}
		os.Exit(dial(os.Args[2]))
	case "echo":
		fmt.Println(strings.Join(os.Args[2:], " "))
		fmt.Fprintln(os.Stderr, "to stderr")
	case "serve":
		serve()
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", cmd)
		os.Exit(2)
	}
}

func dial(addr string) int {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Print(line)
	return 0
}

func serve() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGHUP)
	ln, err := net.Listen("tcp", ":8500")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	host, _ := os.Hostname()
	fmt.Println("listening")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from %s\n", host)
			c.Close()
		}
	}()
	s := <-sigs
	fmt.Printf("got %v\n", s)
	os.Exit(0)
}

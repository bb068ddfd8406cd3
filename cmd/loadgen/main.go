// Command loadgen measures a running Gatehouse: first-party login, refresh,
// me and sessions, the authorization server's refresh grant and
// introspection, and how well bearer requests hold up while logins saturate
// the password-hash queue. Every rate is put next to a yardstick (a bare
// net/http JSON handler measured with the same client and connections, in
// the same round) and next to in-process ceilings (the server's own password
// hash and HS256 verification), so results mean something across machines.
//
// Rounds interleave the yardstick and the scenarios (Y A B … Y A B …) after
// an uncounted warm-up round, so drift of the machine hits them alike; the
// report gives medians over rounds. See docs/BENCHMARKS.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(realMain())
}

// realMain returns the exit status, so deferred clean-up runs before exit.
func realMain() int {
	o, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, o, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	return 0
}

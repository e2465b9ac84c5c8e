// Command mfaload drives a running mfad with one scenario at a time and reports
// throughput and latency as ratios to GET /healthz measured in the same run (before and
// after each scenario, by default), so numbers from a noisy, shared machine can still
// be compared. See BENCHMARKS.md.
//
//	mfaload --url http://127.0.0.1:8080 --data-dir ./data --users 10000 \
//	        --scenarios status,list-devices,verify,delete-device --duration 10s -c 64
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mfaload:", err)
		os.Exit(1)
	}
}

package channels

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	mfa "github.com/mfad/mfad"
)

// TestWorkerMetricsAllocations: recording a command's queue wait, reply and duration,
// and a batch's tallies, allocates nothing once the series exist.
func TestWorkerMetricsAllocations(t *testing.T) {
	m := newWorkerMetrics(prometheus.NewRegistry(), map[string]route{mfa.CmdVerify: {}}, func() int { return 0 })
	var tl tallies
	tl.add(counted{result: verifyFailure, method: methodIndex(mfa.VerifiedByTOTP), lockedUntil: time.Now()})
	reply := mfa.Reply{Code: mfa.CodeInvalidCode}
	start := time.Now()
	record := func() {
		m.queueWait(start.Add(-time.Millisecond), start)
		m.command(mfa.CmdVerify, reply, start)
		m.batch(1, time.Millisecond, &tl)
	}
	record()
	if n := testing.AllocsPerRun(1000, record); n != 0 {
		t.Fatalf("%v allocations per command, want 0", n)
	}
}

package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mfad/mfad/activity/natstest"
)

// TestAuditTailEndsOnCtrlC: the built binary, following MFA_EVENTS, exits with status
// 0 as soon as it gets SIGINT, whether NATS is there or gone.
func TestAuditTailEndsOnCtrlC(t *testing.T) {
	for _, natsGone := range []bool{false, true} {
		t.Run(fmt.Sprintf("NATS gone %v", natsGone), func(t *testing.T) {
			ns := natstest.Server(t)
			js := natstest.JetStream(t, natstest.Connect(t, ns.ClientURL()))
			tail := startProcess(t, "mfad audit tail", mfadBinary(t), cleanEnv(), "audit", "tail", "--nats-url", ns.ClientURL())
			// It follows new events only: publish until one shows, so it is surely
			// consuming when the signal comes.
			tail.waitFor("a followed event", func() bool {
				body := `{"published":"2026-01-01T00:00:00Z","mfa:seq":1,"mfa:event":"test.ping","mfa:user":"u","summary":"ping"}`
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, err := js.Publish(ctx, "mfa.events.test.ping", []byte(body)); err != nil {
					t.Fatal(err)
				}
				return strings.Contains(tail.stdout.String(), "test.ping")
			})
			if natsGone {
				ns.Shutdown()
				ns.WaitForShutdown()
			}
			if err := tail.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case <-tail.done:
			case <-time.After(10 * time.Second):
				t.Fatal("mfad audit tail still running 10s after SIGINT")
			}
			if code := tail.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit status %d after SIGINT, want 0", code)
			}
		})
	}
}

package channels_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	mfa "github.com/mfad/mfad"
	. "github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

// heldStore holds the first write batch, once armed, until release is closed.
type heldStore struct {
	Store
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func (s *heldStore) Write(ctx context.Context, units []Unit) []error {
	if s.armed.CompareAndSwap(true, false) {
		close(s.held)
		<-s.release
	}
	return s.Store.Write(ctx, units)
}

// TestWriteQueueWaitIsMeasured: a write that reaches the worker while another batch
// holds the writer waits for that batch, and mfad_command_queue_seconds records the
// wait.
func TestWriteQueueWaitIsMeasured(t *testing.T) {
	const held = 50 * time.Millisecond
	store := &heldStore{Store: sqlitetest.Open(t, filepath.Join(t.TempDir(), "mfad.db")),
		held: make(chan struct{}), release: make(chan struct{})}
	sealer, err := NewSealer(key(3))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	w, err := NewWorker(Config{Logger: quietLogger(), Metrics: reg}, store, sealer)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())

	store.armed.Store(true)
	replies := make(chan mfa.Reply, 2)
	setup := func(user string) {
		cmd := mfa.Command{ID: mfa.NewID(), Type: mfa.CmdTOTPSetup, UserID: user, Actor: user,
			Params: mustJSON(t, mfa.TOTPSetupParams{DeviceName: "Phone"})}
		r, err := w.Do(context.Background(), cmd)
		if err != nil {
			t.Error(err)
		}
		replies <- r
	}
	go setup("alice")
	<-store.held
	go setup("bob")
	deadline := time.Now().Add(10 * time.Second)
	for gauge(t, reg, "mfad_command_queue_length") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("bob's setup never queued behind alice's batch")
		}
		time.Sleep(time.Millisecond)
	}
	queuedAt := time.Now()
	time.Sleep(held)
	close(store.release)
	for range 2 {
		if r := <-replies; !r.OK {
			t.Fatalf("setup: %+v", r)
		}
	}
	waited := time.Since(queuedAt)

	wait := histogram(t, reg, "mfad_command_queue_seconds")
	if wait.GetSampleCount() != 2 {
		t.Fatalf("queue waits recorded = %d, want 2 (one per write command)", wait.GetSampleCount())
	}
	if sum := wait.GetSampleSum(); sum < held.Seconds() || sum > 2*waited.Seconds() {
		t.Errorf("queue waits add up to %.3fs, want at least the %s bob's setup was held and at most twice the %s it took",
			sum, held, waited.Round(time.Millisecond))
	}
}

// family is the metric family name of reg, failing the test when there is none (the
// read cache tests read their series through it too).
func family(t *testing.T, reg *prometheus.Registry, name string) *dto.MetricFamily {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("no %s", name)
	return nil
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return family(t, reg, name).GetMetric()[0].GetGauge().GetValue()
}

func histogram(t *testing.T, reg *prometheus.Registry, name string) *dto.Histogram {
	t.Helper()
	return family(t, reg, name).GetMetric()[0].GetHistogram()
}

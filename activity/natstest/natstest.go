// Package natstest starts real NATS servers for tests: an embedded nats-server with
// JetStream on a random loopback port and a temporary store, shut down when the test
// ends. Tests use real servers, never a fake bus.
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfad/mfad/activity"
)

// Server starts an embedded JetStream server on 127.0.0.1 with a random port and a
// store under t.TempDir().
func Server(t testing.TB) *server.Server {
	t.Helper()
	return ServerAt(t, t.TempDir(), server.RANDOM_PORT)
}

// ServerAt starts a server with its store in dir, on port (server.RANDOM_PORT for any),
// so a test can stop it and start it again on the same store and port.
func ServerAt(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("configure nats-server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// Connect opens a client connection that reconnects for ever and is closed when the
// test ends.
func Connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond),
		nats.RetryOnFailedConnect(true)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on nc with mfad's streams created.
func JetStream(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := activity.EnsureStreams(ctx, js, activity.StreamOptions{Replicas: 1}); err != nil {
		t.Fatalf("create streams: %v", err)
	}
	return js
}

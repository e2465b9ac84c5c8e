package main

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// TestShutdownOutlastsASlowClient: a client that sends part of its body and then waits
// holds its connection through a graceful shutdown. The HTTP server gets half of
// --shutdown-timeout, then closes it, so the workers and the outbox still drain in the
// rest: mfad exits 0 with no step failed (it used to spend the whole timeout on the
// client and skip every later step).
func TestShutdownOutlastsASlowClient(t *testing.T) {
	dataDir := t.TempDir()
	p := startMFAD(t, "mfad", "MFAD_DATA_DIR="+dataDir, "MFAD_HTTP_ADDR=127.0.0.1:0",
		"MFAD_NATS_LISTEN=127.0.0.1:0", "MFAD_SHUTDOWN_TIMEOUT=4s")
	token := mintToken(t, nil, "--sub", "alice", "--data-dir", dataDir)

	conn, err := net.Dial("tcp", p.httpAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"device_name":"a phone that never arrives"}`
	if _, err := fmt.Fprintf(conn, "POST /api/v1/mfa/totp/setup HTTP/1.1\r\nHost: mfad\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", token, len(body), body[:10]); err != nil {
		t.Fatal(err)
	}
	// The request is in the server's hands (its handler waits for the rest of the body)
	// once a request of another client has gone through after it.
	checkStatus(t, "http://"+p.httpAddr(), token)

	start := time.Now()
	p.stopCleanly()
	if _, ok := p.logged("requests still open at the HTTP server's share of the shutdown timeout: connections closed"); !ok {
		t.Fatalf("the slow client's connection was not closed at the HTTP share (stopped in %v)", time.Since(start))
	}
	if _, ok := p.logged("shutdown step failed"); ok {
		t.Fatal("a shutdown step failed")
	}
}

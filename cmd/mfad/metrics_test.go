package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// getText fetches url and returns its body, failing on any status but 200.
func getText(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, raw)
	}
	return string(raw)
}

// TestServeMetricsAndOpenAPI: the built binary serves one registry with every
// package's series and the Go/process collectors at /metrics (and at --debug-addr, the
// worker role's only listener), and its OpenAPI document at /openapi.json.
func TestServeMetricsAndOpenAPI(t *testing.T) {
	dataDir := t.TempDir()
	p := startMFAD(t, "mfad", "MFAD_DATA_DIR="+dataDir, "MFAD_HTTP_ADDR=127.0.0.1:0",
		"MFAD_NATS_LISTEN=127.0.0.1:0", "MFAD_DEBUG_ADDR=127.0.0.1:0")
	base := "http://" + p.httpAddr()
	dbg, ok := p.logged("debug server listening")
	if !ok {
		t.Fatal("no debug server listening log line")
	}
	debugBase := "http://" + dbg["addr"].(string)

	token := mintToken(t, nil, "--sub", "alice", "--data-dir", dataDir)
	c := newAPIClient("", 10*time.Second) // the token is minted above
	if a, err := c.do(http.MethodPost, base+"/api/v1/mfa/totp/setup", token, `{"device_name":"Phone"}`); err != nil || a.status != http.StatusOK {
		t.Fatalf("setup: %v %d %s", err, a.status, a.raw)
	}
	// Two status reads: the first from the database, the second from the worker's
	// read cache, on by default on SQLite.
	for range 2 {
		if a, err := c.do(http.MethodGet, base+"/api/v1/mfa/status", token, ""); err != nil || a.status != http.StatusOK {
			t.Fatalf("status: %v %d %s", err, a.status, a.raw)
		}
	}

	want := []string{
		`mfad_read_cache_lookups_total{result="hit"} 1`,
		`mfad_read_cache_lookups_total{result="miss"} 1`,
		"mfad_read_cache_bytes ",
		"go_goroutines ",
		"process_resident_memory_bytes ",
		`mfad_http_requests_total{method="POST",route="/api/v1/mfa/totp/setup",status="200"} 1`,
		`mfad_nats_request_duration_seconds_count{type="totp.setup"} 1`,
		`mfad_command_duration_seconds_count{type="totp.setup"} 1`,
		`mfad_command_replies_total{code="OK",type="totp.setup"} 1`,
		"mfad_group_commit_batch_size_count 1",
		"mfad_outbox_backlog ",
		`mfad_verifications_total{method="totp",result="failure"} 0`,
		"mfad_lockouts_total 0",
	}
	for _, url := range []string{base + "/metrics", debugBase + "/metrics"} {
		m := getText(t, url)
		for _, w := range want {
			if !strings.Contains(m, w) {
				t.Errorf("%s lacks %q", url, w)
			}
		}
	}
	// The setup's audit record reaches MFA_EVENTS and is counted there.
	p.waitFor("the setup event acknowledged", func() bool {
		return strings.Contains(getText(t, base+"/metrics"), "mfad_outbox_published_total 1")
	})

	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(getText(t, base+"/openapi.json")), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") || doc.Paths["/api/v1/mfa/totp/devices/{device_id}"] == nil {
		t.Fatalf("/openapi.json: openapi %q, %d paths", doc.OpenAPI, len(doc.Paths))
	}
	p.stopCleanly()
}

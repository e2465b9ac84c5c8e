package handlers_test

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// scrape reads GET /metrics as Prometheus would.
func scrape(t testing.TB, s *stack) string {
	t.Helper()
	r := rawCall(t, s.URL, http.MethodGet, "/metrics", "")
	if r.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.Status, r.Raw)
	}
	return string(r.Raw)
}

// sample finds the value of the series name{labels…} in an exposition; labels lists
// name, value pairs and may be a subset of the series' labels. It returns the sum over
// every series that matches, and whether any did.
func sample(exposition, name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		metric, lbls, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(lbls, labels[i]+`="`+labels[i+1]+`"`) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// metricsStack is a stack whose HTTP side and worker share one registry, as in mfad.
func metricsStack(t *testing.T) *stack {
	reg := prometheus.NewRegistry()
	return newStack(t, func(o *stackOptions) {
		o.handler.Metrics = reg
		o.worker.Metrics = reg
	})
}

// TestMetricsHTTP: requests are counted by route pattern (never the raw path), method
// and status, and timed.
func TestMetricsHTTP(t *testing.T) {
	s := metricsStack(t)
	s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/424242", "")
	s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/abc", "")
	rawCall(t, s.URL, http.MethodGet, "/no/such/path/alice-secret", "")
	rawCall(t, s.URL, http.MethodPut, "/healthz", "")
	rawCall(t, s.URL, "BREW", "/healthz", "")
	rawCall(t, s.URL, http.MethodGet, "/healthz", "")

	m := scrape(t, s)
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"route", "/api/v1/mfa/totp/devices/:device_id", "method", "DELETE", "status", "404"}, 1},
		{[]string{"route", "/api/v1/mfa/totp/devices/:device_id", "method", "DELETE", "status", "400"}, 1},
		{[]string{"route", "unmatched", "method", "GET", "status", "404"}, 1},
		{[]string{"route", "/healthz", "method", "PUT", "status", "405"}, 1},
		{[]string{"route", "/healthz", "method", "OTHER", "status", "405"}, 1},
		{[]string{"route", "/healthz", "method", "GET", "status", "200"}, 1},
	} {
		if got, _ := sample(m, "mfad_http_requests_total", c.labels...); got != c.want {
			t.Errorf("mfad_http_requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if n, _ := sample(m, "mfad_http_request_duration_seconds_count", "route", "/api/v1/mfa/totp/devices/:device_id", "method", "DELETE"); n != 2 {
		t.Errorf("duration count of the device route = %v, want 2", n)
	}
	if _, ok := sample(m, "mfad_http_requests_in_flight"); !ok {
		t.Error("no mfad_http_requests_in_flight")
	}
	// Raw paths and user ids never become labels.
	for _, leak := range []string{"424242", "alice", "/no/such/path", "BREW"} {
		if strings.Contains(m, leak) {
			t.Errorf("the exposition contains %q", leak)
		}
	}
}

// TestMetricsVerifications: code checks move the verification counters by result and
// method, the threshold-th failure starts a lockout, and the worker's command series
// record the commands.
func TestMetricsVerifications(t *testing.T) {
	s := metricsStack(t)
	verify := func(user, code string) int {
		return s.as(user, http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+code+`"}`).Status
	}
	count := func(m, result, method string) float64 {
		v, _ := sample(m, "mfad_verifications_total", "result", result, "method", method)
		return v
	}

	bob := s.enrol("bob", "Phone")
	before := scrape(t, s)
	if _, ok := sample(before, "mfad_verifications_total", "result", "locked", "method", "code"); !ok {
		t.Error("the verification series do not start at zero")
	}
	code := s.code(bob)
	if st := verify("bob", code); st != http.StatusOK {
		t.Fatalf("verify: %d", st)
	}
	if st := verify("bob", code); st != http.StatusBadRequest { // the same step again
		t.Fatalf("replay: %d", st)
	}
	after := scrape(t, s)
	if d := count(after, "success", "totp") - count(before, "success", "totp"); d != 1 {
		t.Errorf("success/totp moved by %v, want 1", d)
	}
	if d := count(after, "replayed", "totp") - count(before, "replayed", "totp"); d != 1 {
		t.Errorf("replayed/totp moved by %v, want 1", d)
	}

	carol := s.enrol("carol", "Phone")
	before = scrape(t, s)
	for i := 0; i < 5; i++ { // MFAD_LOCKOUT_THRESHOLD's default
		if st := verify("carol", wrongCode(s.code(carol))); st != http.StatusBadRequest {
			t.Fatalf("wrong code %d: %d", i, st)
		}
	}
	if st := verify("carol", s.code(carol)); st != http.StatusTooManyRequests {
		t.Fatalf("locked: %d", st)
	}
	after = scrape(t, s)
	if d := count(after, "failure", "totp") - count(before, "failure", "totp"); d != 5 {
		t.Errorf("failure/totp moved by %v, want 5", d)
	}
	if d := count(after, "locked", "code") - count(before, "locked", "code"); d != 1 {
		t.Errorf("locked/code moved by %v, want 1", d)
	}
	q0, _ := sample(before, "mfad_command_queue_seconds_count")
	q1, _ := sample(after, "mfad_command_queue_seconds_count")
	if q1-q0 != 6 {
		t.Errorf("mfad_command_queue_seconds counted %v write commands, want carol's 6 code checks", q1-q0)
	}
	l0, _ := sample(before, "mfad_lockouts_total")
	l1, _ := sample(after, "mfad_lockouts_total")
	if l1-l0 != 1 {
		t.Errorf("mfad_lockouts_total moved by %v, want 1", l1-l0)
	}

	if n, _ := sample(after, "mfad_command_replies_total", "type", "verify", "code", "INVALID_CODE"); n < 6 {
		t.Errorf("verify INVALID_CODE replies = %v, want at least 6", n)
	}
	if n, _ := sample(after, "mfad_command_replies_total", "type", "verify", "code", "TOO_MANY_ATTEMPTS"); n != 1 {
		t.Errorf("verify TOO_MANY_ATTEMPTS replies = %v, want 1", n)
	}
	if n, _ := sample(after, "mfad_command_duration_seconds_count", "type", "verify"); n != 8 {
		t.Errorf("verify duration count = %v, want 8", n)
	}
	if n, _ := sample(after, "mfad_command_duration_seconds_count", "type", "status"); n != 0 {
		t.Errorf("status duration count = %v, want 0 (no status read yet)", n)
	}
	s.as("carol", http.MethodGet, "/api/v1/mfa/status", "")
	if n, _ := sample(scrape(t, s), "mfad_command_duration_seconds_count", "type", "status"); n != 1 {
		t.Errorf("read commands are timed too: status count = %v, want 1", n)
	}
	for _, name := range []string{"mfad_group_commit_batch_size_count", "mfad_group_commit_duration_seconds_count"} {
		if n, _ := sample(after, name); n < 1 {
			t.Errorf("%s = %v", name, n)
		}
	}
	if _, ok := sample(after, "mfad_command_queue_length"); !ok {
		t.Error("no mfad_command_queue_length")
	}
	for _, user := range []string{"bob", "carol"} {
		if strings.Contains(after, `"`+user+`"`) {
			t.Errorf("a label holds the user id %s", user)
		}
	}
}

// TestMetricsOff: without a registry nothing is recorded and /metrics answers an empty
// exposition.
func TestMetricsOff(t *testing.T) {
	s := newStack(t)
	s.as("alice", http.MethodGet, "/api/v1/mfa/status", "")
	if m := scrape(t, s); m != "" {
		t.Fatalf("metrics without a registry:\n%s", m)
	}
}

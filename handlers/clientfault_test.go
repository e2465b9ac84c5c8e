package handlers_test

// A client's fault never answers 500: raw TCP clients against a real http.Server with
// a read timeout, as mfad runs one.

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
	"github.com/mfad/mfad/handlers"
)

// faultStack is a stack with a read timeout, metrics and debug logs.
func faultStack(t *testing.T, readTimeout time.Duration) (*stack, *syncBuffer) {
	t.Helper()
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	s := newStack(t, func(o *stackOptions) {
		o.handler.Metrics, o.worker.Metrics = reg, reg
		o.handler.Logger = logger
		o.readTimeout = readTimeout
	})
	return s, &logs
}

// dial opens a raw connection to the stack.
func dial(t *testing.T, s *stack) *net.TCPConn {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn.(*net.TCPConn)
}

// dialect is one API dialect's body route and how its error answer looks.
type dialect struct {
	name    string
	path    string
	headers string
	// code reads the public error code and the status the body repeats, if it does.
	code func(body map[string]any) (string, int)
}

var dialects = []dialect{
	{"device", "/api/v1/mfa/totp/setup", "", func(b map[string]any) (string, int) {
		code, _ := get(b, "error", "code").(string)
		if b["success"] != false {
			return "", -1
		}
		return code, 0
	}},
	{"banking", "/settings/MfaSecret", "", func(b map[string]any) (string, int) {
		code, _ := b["code"].(string)
		status, _ := b["status"].(float64)
		return code, int(status)
	}},
	{"druid", "/activityid/v1/mfa/update", "From: bank-web\r\n", func(b map[string]any) (string, int) {
		status, _ := get(b, "result", "status").(float64)
		reason, _ := get(b, "result", "errors", 0, "message").(string)
		return reason, int(status)
	}},
}

// head is a request head for d, with the given framing header.
func (d dialect) head(token, framing string) string {
	return "POST " + d.path + " HTTP/1.1\r\nHost: mfad\r\nAuthorization: Bearer " + token +
		"\r\nContent-Type: application/json\r\n" + d.headers + framing + "\r\n"
}

// noErrorLogged fails the test on any ERROR line.
func noErrorLogged(t *testing.T, logs *syncBuffer) {
	t.Helper()
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			t.Fatalf("logged an error: %s", l)
		}
	}
}

// counted waits until the stack's metrics count a request of route with status.
func counted(t *testing.T, s *stack, route, status string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _ := sample(scrape(t, s), "mfad_http_requests_total", "route", route, "status", status); n >= 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s request of %s counted: %s", status, route, scrape(t, s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBrokenBodiesAnswer400Or408(t *testing.T) {
	s, logs := faultStack(t, 500*time.Millisecond)
	token := s.token("alice")
	for _, tc := range []struct {
		name    string
		framing string
		body    string
		close   bool // shut down the sending side after the body
		status  int
		code    string // device and banking; DruID shows its reason
		reason  string
	}{
		{"malformed chunked", "Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n", false, 400, "VALIDATION_ERROR", "invalid_parameter"},
		{"chunk size beyond the data, then the end", "Transfer-Encoding: chunked\r\n", "20\r\n{\"device_", true, 400, "VALIDATION_ERROR", "invalid_parameter"},
		{"shorter than Content-Length, then the end", "Content-Length: 50\r\n", `{"device_name":`, true, 400, "VALIDATION_ERROR", "invalid_parameter"},
		{"never finishes", "Content-Length: 50\r\n", `{"device_name":`, false, 408, "REQUEST_TIMEOUT", "request_timeout"},
	} {
		for _, d := range dialects {
			t.Run(tc.name+"/"+d.name, func(t *testing.T) {
				conn := dial(t, s)
				if _, err := io.WriteString(conn, d.head(token, tc.framing)+tc.body); err != nil {
					t.Fatal(err)
				}
				if tc.close {
					if err := conn.CloseWrite(); err != nil {
						t.Fatal(err)
					}
				}
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				var body map[string]any
				if err := json.Unmarshal(raw, &body); err != nil {
					t.Fatalf("%d, not JSON: %q", resp.StatusCode, raw)
				}
				// The answer is the one openapi.json documents for its status.
				conform(t, loadDoc(t), http.MethodPost, d.path, response{Status: resp.StatusCode, Header: resp.Header, Raw: raw, Body: body})
				code, inBody := d.code(body)
				want := tc.code
				if d.name == "druid" {
					want = tc.reason
				}
				if resp.StatusCode != tc.status || code != want || inBody != 0 && inBody != tc.status {
					t.Fatalf("%d %s, want %d %s", resp.StatusCode, raw, tc.status, want)
				}
			})
		}
	}
	for _, d := range dialects {
		counted(t, s, d.path, "400")
		counted(t, s, d.path, "408")
	}
	if n, _ := sample(scrape(t, s), "mfad_http_requests_total", "status", "500"); n != 0 {
		t.Fatalf("%v requests counted as 500", n)
	}
	noErrorLogged(t, logs)
}

// inFlight is how many requests the stack is answering, besides the scrape asking.
func inFlight(t *testing.T, s *stack) float64 {
	n, _ := sample(scrape(t, s), "mfad_http_requests_in_flight")
	return n - 1
}

func TestClientGoneGetsNoAnswer(t *testing.T) {
	// No read timeout: the server must still be waiting for the body when the reset
	// comes.
	s, logs := faultStack(t, 0)
	token := s.token("alice")

	t.Run("connection reset while the body arrives", func(t *testing.T) {
		d := dialects[0]
		conn := dial(t, s)
		if _, err := io.WriteString(conn, d.head(token, "Content-Length: 50\r\n")+`{"device_name":`); err != nil {
			t.Fatal(err)
		}
		for inFlight(t, s) < 1 {
			time.Sleep(5 * time.Millisecond)
		}
		if err := conn.SetLinger(0); err != nil { // close with a reset
			t.Fatal(err)
		}
		conn.Close()
		counted(t, s, d.path, "499")
	})

	t.Run("connection closed while the command runs", func(t *testing.T) {
		// A worker that never answers: the real one stops, a silent one takes its
		// place in the queue group.
		if err := s.Worker.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		nc := natstest.Connect(t, s.NATSURL)
		requests, err := nc.QueueSubscribeSync(activity.CommandSubject("status"), activity.QueueGroup)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		conn := dial(t, s)
		if _, err := io.WriteString(conn, "GET /api/v1/mfa/status HTTP/1.1\r\nHost: mfad\r\nAuthorization: Bearer "+token+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if _, err := requests.NextMsg(10 * time.Second); err != nil {
			t.Fatalf("the command never reached the worker: %v", err)
		}
		conn.Close()
		counted(t, s, "/api/v1/mfa/status", "499")
		// Nothing was written: the connection is gone, and the answer would be 503
		// (no reply in time) or 500, never a 200.
		if n, _ := sample(scrape(t, s), "mfad_http_requests_total", "route", "/api/v1/mfa/status"); n != 1 {
			t.Fatalf("%v status requests counted, want the one 499", n)
		}
	})

	t.Run("connection closed while the token is introspected", func(t *testing.T) {
		is := newIntrospectionServer(t)
		var ilogs syncBuffer
		reg := prometheus.NewRegistry()
		si := newStack(t, func(o *stackOptions) {
			o.auth = handlers.AuthConfig{IntrospectionURL: is.URL, IntrospectionTimeout: time.Minute}
			o.handler.Metrics, o.handler.Logger = reg, slog.New(slog.NewJSONHandler(&ilogs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		conn := dial(t, si)
		if _, err := io.WriteString(conn, "GET /api/v1/mfa/status HTTP/1.1\r\nHost: mfad\r\nAuthorization: Bearer slow:alice\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		for is.calls() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		conn.Close()
		counted(t, si, "/api/v1/mfa/status", "499")
		if n, _ := sample(scrape(t, si), "mfad_http_requests_total", "status", "504"); n != 0 {
			t.Fatal("counted as 504")
		}
		noErrorLogged(t, &ilogs)
	})

	out := logs.String()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"status":499`) && !strings.Contains(l, `"level":"DEBUG"`) {
			t.Fatalf("a gone client logged above debug: %s", l)
		}
	}
	if strings.Count(out, "client went away before the answer") != 2 {
		t.Fatalf("want two debug lines about the clients that went away:\n%s", out)
	}
	noErrorLogged(t, logs)
	if n, _ := sample(scrape(t, s), "mfad_http_requests_total", "status", "500"); n != 0 {
		t.Fatalf("%v requests counted as 500", n)
	}
}

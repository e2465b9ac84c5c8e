package handlers_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
	"github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
	"github.com/mfad/mfad/handlers"
)

// testSecret signs the HS256 tokens of the stack.
var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// clock is a test clock shared by the token checks and the workers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// stack is the whole service in one test: an embedded nats-server, a worker on a
// SQLite file, and the echo server over httptest.
type stack struct {
	t      testing.TB
	URL    string
	Clock  *clock
	Store  *sqlite.Store
	DB     *sql.DB // another connection to the store's file, to look at the tables
	Worker *channels.Worker
	Sealer *channels.Sealer
	DBPath string
	// NATSURL lets a test join the bus as an outside client would (the SMS/e-mail
	// gateway on mfa.notify.>).
	NATSURL string
}

type stackOptions struct {
	worker  channels.Config
	auth    handlers.AuthConfig
	handler handlers.Config
	// listener, when set, is where the HTTP server listens: a test that needs its
	// port before the worker starts (the WebAuthn origin) makes it first.
	listener net.Listener
	// readTimeout is the http.Server's ReadTimeout, as mfad sets one; 0 = none.
	readTimeout time.Duration
}

// newStack starts a stack; opts adjust the configuration before anything starts.
func newStack(t testing.TB, opts ...func(*stackOptions)) *stack {
	t.Helper()
	clk := newClock()
	o := stackOptions{
		// With the read cache, as mfad serve runs a worker on SQLite.
		worker: channels.Config{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ReadCacheBytes: 1 << 20},
		auth:   handlers.AuthConfig{HMACSecret: testSecret, Now: clk.Now},
	}
	for _, f := range opts {
		f(&o)
	}
	ns := natstest.Server(t)
	nc := natstest.Connect(t, ns.ClientURL())
	natstest.JetStream(t, nc) // the streams, so the notification relay gets its acks
	dbPath := filepath.Join(t.TempDir(), "mfad.db")
	store := sqlitetest.Open(t, dbPath)
	sealer, err := channels.NewSealer(bytes.Repeat([]byte{7}, channels.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	worker, err := channels.NewWorker(o.worker, store, sealer)
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.Start(nc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { worker.Stop(context.Background()) })
	auth, err := handlers.NewAuthenticator(o.auth)
	if err != nil {
		t.Fatal(err)
	}
	hc := o.handler
	hc.Bus = activity.NewBus(nc, 5*time.Second)
	hc.Auth = auth
	hc.Now = clk.Now
	if hc.Logger == nil {
		hc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := httptest.NewUnstartedServer(handlers.New(hc))
	if o.listener != nil {
		srv.Listener.Close()
		srv.Listener = o.listener
	}
	srv.Config.ReadTimeout = o.readTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	return &stack{t: t, URL: srv.URL, Clock: clk, Store: store, DB: sqlitetest.DB(t, store), Worker: worker, Sealer: sealer, DBPath: dbPath,
		NATSURL: ns.ClientURL()}
}

// token signs an HS256 token for sub valid for an hour from the stack's clock; claims
// adds or overrides claims.
func (s *stack) token(sub string, claims ...jwt.MapClaims) string {
	s.t.Helper()
	now := s.Clock.Now()
	c := jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "auth_time": now.Unix()}
	for _, extra := range claims {
		for k, v := range extra {
			c[k] = v
		}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(testSecret)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

// call sends a request; body "" sends none. headers are name, value pairs; a token is
// passed as "Authorization", "Bearer …".
func (s *stack) call(method, path, body string, headers ...string) response {
	s.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			s.t.Fatalf("%s %s: answer is not a JSON object: %v\n%s", method, path, err, raw)
		}
	}
	return out
}

// as calls with a bearer token for sub.
func (s *stack) as(sub, method, path, body string, headers ...string) response {
	s.t.Helper()
	return s.call(method, path, body, append([]string{"Authorization", "Bearer " + s.token(sub)}, headers...)...)
}

// get walks a decoded body: get(body, "data", "devices", 0, "id").
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

package handlers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/handlers"
)

// The dashboard: its page, its stats read and its live feed of MFA_EVENTS, against the
// real stack plus what the dashboard needs beyond commands: the outbox relay that
// publishes the audit log to MFA_EVENTS, and the feed reading it.

// lazyFeed lets the stack's handler get a feed on the NATS server the stack starts.
type lazyFeed struct{ f atomic.Pointer[activity.Feed] }

func (l *lazyFeed) Events(ctx context.Context, after uint64) (<-chan activity.FeedEvent, error) {
	return l.f.Load().Events(ctx, after)
}

// newDashStack is a stack whose audit log reaches MFA_EVENTS and whose handler has the
// event feed.
func newDashStack(t testing.TB) (*stack, jetstream.JetStream) {
	t.Helper()
	var relay atomic.Pointer[audit.Relay]
	feed := &lazyFeed{}
	s := newStack(t, func(o *stackOptions) {
		o.worker.AfterCommit = func() {
			if r := relay.Load(); r != nil {
				r.Kick()
			}
		}
		o.handler.Feed = feed
	})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	js, err := jetstream.New(natstest.Connect(t, s.NATSURL), jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	feed.f.Store(activity.NewFeed(js, quiet))
	r := audit.NewRelay(s.Store.Outbox(), js, quiet,
		audit.WithInterval(50*time.Millisecond), audit.WithClock(s.Clock.Now))
	relay.Store(r)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, js
}

func (s *stack) adminToken() string {
	return s.token("ops", jwt.MapClaims{"scope": "mfa:admin"})
}

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	ID, Type, Data string
}

// sseStream is an open GET /api/v1/dashboard/events.
type sseStream struct {
	t      testing.TB
	resp   *http.Response
	events chan sseEvent
	close  context.CancelFunc
	retry  atomic.Int64
}

// openEvents opens the event stream; lastID "" sends no Last-Event-ID. A status other
// than 200 is returned with the body read and no stream.
func (s *stack) openEvents(token, lastID string) (*sseStream, response) {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/dashboard/events", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		s.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		out := response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			s.t.Fatalf("error answer is not JSON: %s", raw)
		}
		return nil, out
	}
	st := &sseStream{t: s.t, resp: resp, events: make(chan sseEvent, 256), close: cancel}
	s.t.Cleanup(st.Close)
	go st.read()
	return st, response{Status: resp.StatusCode, Header: resp.Header}
}

// read parses the stream as a browser does, with a parser of its own: this one
// follows the text/event-stream rules independently of the page's.
func (st *sseStream) read() {
	defer close(st.events)
	sc := bufio.NewScanner(st.resp.Body)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				ev.Data = strings.Join(data, "\n")
				st.events <- ev
			}
			ev, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				ev.ID = value
			case "event":
				ev.Type = value
			case "data":
				data = append(data, value)
			case "retry":
				n, _ := strconv.ParseInt(value, 10, 64)
				st.retry.Store(n)
			}
		}
	}
}

func (st *sseStream) Close() {
	st.close()
	st.resp.Body.Close()
}

// next waits for the next event.
func (st *sseStream) next() sseEvent {
	st.t.Helper()
	select {
	case ev, ok := <-st.events:
		if !ok {
			st.t.Fatal("the event stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		st.t.Fatal("no event within 10 s")
	}
	return sseEvent{}
}

// until reads events up to and including the first of type typ.
func (st *sseStream) until(typ string) []sseEvent {
	st.t.Helper()
	var got []sseEvent
	for {
		ev := st.next()
		got = append(got, ev)
		if ev.Type == typ {
			return got
		}
	}
}

// quiet checks that no event arrives for a moment.
func (st *sseStream) quiet() {
	st.t.Helper()
	select {
	case ev, ok := <-st.events:
		if ok {
			st.t.Fatalf("unexpected event %s %s", ev.ID, ev.Type)
		}
	case <-time.After(300 * time.Millisecond):
	}
}

// checkEvent checks one event against the contract: id = the stream sequence, event
// = the mfa:event type, data = the AS2 activity.
func checkEvent(t testing.TB, ev sseEvent, seq int) map[string]any {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal([]byte(ev.Data), &body); err != nil {
		t.Fatalf("event %s data is not JSON: %v\n%s", ev.ID, err, ev.Data)
	}
	if ev.ID != strconv.Itoa(seq) || body["mfa:event"] != ev.Type || body["@context"] != activity.AS2Context {
		t.Fatalf("event id %q type %q, want id %d and type = mfa:event: %s", ev.ID, ev.Type, seq, ev.Data)
	}
	return body
}

func TestDashboardAuth(t *testing.T) {
	s, _ := newDashStack(t)
	admin, alice := s.adminToken(), s.token("alice")
	for _, path := range []string{"/api/v1/dashboard/stats", "/api/v1/dashboard/events"} {
		t.Run(path, func(t *testing.T) {
			tests := []struct {
				name   string
				token  string
				status int
				code   string
			}{
				{"no token", "", http.StatusUnauthorized, "UNAUTHORIZED"},
				{"bad token", "not.a.jwt", http.StatusUnauthorized, "UNAUTHORIZED"},
				{"not an admin", alice, http.StatusForbidden, "FORBIDDEN"},
				{"admin", admin, http.StatusOK, ""},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					var r response
					if strings.HasSuffix(path, "/events") {
						var st *sseStream
						if st, r = s.openEvents(tt.token, ""); st != nil {
							st.Close()
						}
					} else {
						h := []string{}
						if tt.token != "" {
							h = []string{"Authorization", "Bearer " + tt.token}
						}
						r = s.call(http.MethodGet, path, "", h...)
					}
					if r.Status != tt.status {
						t.Fatalf("status %d %s, want %d", r.Status, r.Raw, tt.status)
					}
					if tt.code == "" {
						return
					}
					if get(r.Body, "success") != false || errorCode(r) != tt.code {
						t.Fatalf("not the device envelope with %s: %s", tt.code, r.Raw)
					}
					if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer ") {
						t.Fatalf("no Bearer challenge: %q", r.Header.Get("WWW-Authenticate"))
					}
				})
			}
		})
	}
}

func TestDashboardPage(t *testing.T) {
	s := newStack(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(s.URL + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "dashboard/" {
		t.Fatalf("/dashboard: %d Location %q, want a redirect to dashboard/", resp.StatusCode, resp.Header.Get("Location"))
	}

	tests := []struct {
		path, ctype, contains string
	}{
		{"/dashboard/", "text/html", `<script src="app.js" defer></script>`},
		{"/dashboard/index.html", "text/html", `id="signin-form"`},
		{"/dashboard/app.js", "javascript", "Last-Event-ID"},
		{"/dashboard/style.css", "text/css", ".feed"},
		{"/dashboard/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(s.URL + tt.path) // no token: the page is public
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), tt.ctype) ||
				!strings.Contains(string(body), tt.contains) {
				t.Fatalf("%d %s: %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
				resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("security headers missing: %v", resp.Header)
			}
		})
	}

	for _, path := range []string{"/dashboard/nope.js", "/dashboard/../go.mod", "/dashboard/%2e%2e/dashboard.go", "/dashboard/dashboard"} {
		t.Run(path, func(t *testing.T) {
			r := s.call(http.MethodGet, path, "")
			want(t, r, http.StatusNotFound, "NOT_FOUND")
		})
	}
}

// The page keeps up with the event catalogue: every type has a name in both
// languages, so a new event never shows up untranslated.
func TestDashboardNamesEveryEventType(t *testing.T) {
	js, err := os.ReadFile("dashboard/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for typ := range mfa.EventCatalogue {
		if n := strings.Count(string(js), "'"+typ+"': '"); n != 2 {
			t.Errorf("%s is named %d times in app.js, want once in English and once in Spanish", typ, n)
		}
	}
}

func TestDashboardStatsOverHTTP(t *testing.T) {
	s := newStack(t) // no relay: every audit record stays in the outbox
	alice := s.enrol("alice", "Phone")
	s.enrol("bob", "Tablet")
	for range 5 {
		r := s.as("bob", http.MethodPost, "/api/v1/mfa/verify", `{"code":"000000"}`)
		if r.Status != http.StatusBadRequest && r.Status != http.StatusTooManyRequests {
			t.Fatalf("wrong code: %d %s", r.Status, r.Raw)
		}
	}
	want(t, s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(alice.ID), ""), http.StatusOK, "")
	admin := "Bearer " + s.adminToken()

	// The counters must agree with the audit log as the audit API reads it.
	audit := s.call(http.MethodGet, "/api/v1/audit?limit=1000", "", "Authorization", admin)
	recs, _ := get(audit.Body, "data", "records").([]any)
	wantCounts := map[string]int{}
	for _, rec := range recs {
		wantCounts[get(rec, "type").(string)]++
	}
	if wantCounts[mfa.EventVerifyFailed] != 5 || wantCounts[mfa.EventTOTPDeviceRemoved] != 1 {
		t.Fatalf("unexpected audit log: %v", wantCounts)
	}

	r := s.call(http.MethodGet, "/api/v1/dashboard/stats", "", "Authorization", admin, "Accept-Language", "es")
	if r.Status != http.StatusOK || get(r.Body, "success") != true {
		t.Fatalf("stats: %d %s", r.Status, r.Raw)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	data := get(r.Body, "data")
	events, _ := get(data, "events").([]any)
	if len(events) != len(mfa.EventCatalogue) {
		t.Fatalf("%d event types: %s", len(events), r.Raw)
	}
	for _, e := range events {
		typ := get(e, "type").(string)
		if got := int(get(e, "count").(float64)); got != wantCounts[typ] {
			t.Errorf("%s: %d, audit log has %d", typ, got, wantCounts[typ])
		}
	}
	if got := int(get(data, "events_total").(float64)); got != len(recs) {
		t.Errorf("events_total %d, audit log has %d", got, len(recs))
	}
	if get(data, "window", "seconds") != float64(3600) ||
		get(data, "window", "to") != s.Clock.Now().UTC().Format(time.RFC3339) {
		t.Errorf("window %v, clock %s", get(data, "window"), s.Clock.Now().UTC())
	}

	// Both users were seen and have a verified method; alice removed her only device.
	if get(data, "adoption", "users_seen") != float64(2) || get(data, "adoption", "users_with_method") != float64(1) ||
		get(data, "adoption", "methods", "totp") != float64(1) {
		t.Errorf("adoption %v", get(data, "adoption"))
	}
	enabled := 0
	for _, u := range []string{"alice", "bob"} {
		if get(s.as(u, http.MethodGet, "/api/v1/mfa/status", "").Body, "data", "enabled") == true {
			enabled++
		}
	}
	if get(data, "adoption", "signin_enabled") != float64(enabled) {
		t.Errorf("signin_enabled %v, status says %d", get(data, "adoption", "signin_enabled"), enabled)
	}

	// Five wrong codes lock bob (the default policy); the status read agrees.
	adminRead := get(s.call(http.MethodGet, "/api/v1/admin/users/bob/mfa", "", "Authorization", admin).Body, "data", "locked_until")
	lockedUntil, _ := adminRead.(string)
	if get(data, "lockouts", "count") != float64(1) || get(data, "lockouts", "users", 0, "user_id") != "bob" ||
		!sameInstant(lockedUntil, get(data, "lockouts", "users", 0, "locked_until")) {
		t.Errorf("lockouts %v, admin read says bob is locked until %v", get(data, "lockouts"), adminRead)
	}
	if get(data, "outbox", "audit_unpublished") != float64(len(recs)) {
		t.Errorf("outbox %v, want all %d records unpublished", get(data, "outbox"), len(recs))
	}

	// An hour and a minute later the window holds nothing and the lock is over.
	s.Clock.Advance(61 * time.Minute)
	r = s.call(http.MethodGet, "/api/v1/dashboard/stats", "", "Authorization", "Bearer "+s.adminToken())
	if get(r.Body, "data", "events_total") != float64(0) || get(r.Body, "data", "lockouts", "count") != float64(0) ||
		get(r.Body, "data", "adoption", "users_seen") != float64(2) {
		t.Errorf("an hour later: %s", r.Raw)
	}
}

// waitPublished waits until MFA_EVENTS holds n events.
func waitPublished(t testing.TB, js jetstream.JetStream, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info := streamInfo(t, js)
		if info.State.LastSeq >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("MFA_EVENTS holds %d events, want %d", info.State.LastSeq, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sameInstant compares two RFC 3339 times that may be written in different zones.
func sameInstant(a string, b any) bool {
	bs, _ := b.(string)
	ta, err1 := time.Parse(time.RFC3339Nano, a)
	tb, err2 := time.Parse(time.RFC3339Nano, bs)
	return err1 == nil && err2 == nil && ta.Equal(tb)
}

func TestDashboardEventsWithoutFeed(t *testing.T) {
	s := newStack(t)
	_, r := s.openEvents(s.adminToken(), "")
	want(t, r, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
}

func TestDashboardEventsLive(t *testing.T) {
	s, js := newDashStack(t)
	st, _ := s.openEvents(s.adminToken(), "")
	if ct := st.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	st.quiet() // an empty stream: nothing to replay

	d := s.enrol("alice", "Phone")
	want(t, s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(d.ID), ""), http.StatusOK, "")
	got := st.until(mfa.EventTOTPDeviceRemoved)
	for i, ev := range got {
		checkEvent(t, ev, i+1)
	}
	body := checkEvent(t, got[len(got)-1], len(got))
	if get(body, "type") != "Remove" || get(body, "mfa:user") != "alice" || get(body, "actor", "id") != "alice" ||
		get(body, "object", "id") != itoa(d.ID) {
		t.Fatalf("removal event: %s", got[len(got)-1].Data)
	}
	if st.retry.Load() <= 0 {
		t.Error("the stream did not suggest a retry delay")
	}

	// The client goes: its consumer goes with it.
	if n := eventConsumers(t, js); n != 1 {
		t.Fatalf("%d consumers on MFA_EVENTS while one client watches", n)
	}
	st.Close()
	deadline := time.Now().Add(5 * time.Second)
	for eventConsumers(t, js) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the consumer outlived its client")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func eventConsumers(t testing.TB, js jetstream.JetStream) int {
	t.Helper()
	return streamInfo(t, js).State.Consumers
}

func streamInfo(t testing.TB, js jetstream.JetStream) *jetstream.StreamInfo {
	t.Helper()
	stream, err := js.Stream(context.Background(), activity.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestDashboardEventsResume(t *testing.T) {
	s, js := newDashStack(t)
	admin := s.adminToken()
	start := s.Clock.Now()
	seedAudit(t, s, 10, start)

	// A first connection reads four events and drops.
	st, _ := s.openEvents(admin, "")
	for seq := 1; seq <= 4; seq++ {
		checkEvent(t, st.next(), seq)
	}
	st.Close()

	// Events committed while the client is away.
	seedAudit(t, s, 5, start.Add(time.Hour))

	// Reconnecting with Last-Event-ID gives exactly what follows: no repeat, no gap.
	st, _ = s.openEvents(admin, "4")
	for seq := 5; seq <= 15; seq++ {
		checkEvent(t, st.next(), seq)
	}
	st.quiet()
	// And it stays live.
	seedAudit(t, s, 1, start.Add(2*time.Hour))
	checkEvent(t, st.next(), 16)
	st.Close()

	// Up to date: nothing is replayed.
	st, _ = s.openEvents(admin, "16")
	st.quiet()
	st.Close()

	// A fresh viewer gets the last 50.
	seedAudit(t, s, 60, start.Add(3*time.Hour))
	waitPublished(t, js, 76)
	st, _ = s.openEvents(admin, "")
	for seq := 76 - activity.FeedTail + 1; seq <= 76; seq++ {
		checkEvent(t, st.next(), seq)
	}
	st.quiet()
}

func TestDashboardEventsRefusesABadLastEventID(t *testing.T) {
	s, _ := newDashStack(t)
	for _, id := range []string{"abc", "-1", "1.5", "99999999999999999999999"} {
		_, r := s.openEvents(s.adminToken(), id)
		want(t, r, http.StatusUnprocessableEntity, "VALIDATION_ERROR")
		if get(r.Body, "error", "details", "field") != "Last-Event-ID" {
			t.Fatalf("%q: %s", id, r.Raw)
		}
	}
}

// A stream outlives the server's read and write timeouts, which are meant for requests
// that end: without lifting them, net/http would cancel it after ReadTimeout.
func TestDashboardEventsOutliveServerTimeouts(t *testing.T) {
	s, js := newDashStack(t)
	auth, err := handlers.NewAuthenticator(handlers.AuthConfig{HMACSecret: testSecret, Now: s.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewUnstartedServer(handlers.New(handlers.Config{
		Bus:    activity.NewBus(natstest.Connect(t, s.NATSURL), 5*time.Second),
		Auth:   auth,
		Logger: quiet,
		Feed:   activity.NewFeed(js, quiet),
	}))
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	other := *s
	other.URL = srv.URL

	st, _ := other.openEvents(s.adminToken(), "")
	time.Sleep(700 * time.Millisecond) // several timeouts long
	seedAudit(t, s, 1, s.Clock.Now())
	checkEvent(t, st.next(), 1)
}

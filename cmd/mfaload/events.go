package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfad/mfad/activity"
)

// eventWatch follows MFA_EVENTS and pairs each event with the reply that caused it:
// the lag between the two is how long a dashboard or audit subscriber waits for a
// change it could already see in an API answer. A nil watch ignores everything.
type eventWatch struct {
	mu         sync.Mutex
	pending    map[string][]time.Time // replies waiting for their event
	early      map[string][]time.Time // events that came before their reply
	seen       map[string]bool        // event ids, to count duplicates
	lags       []time.Duration
	expected   int
	duplicates int
	received   int
	pairs      map[string]bool // the event types whose bodies are read, to pair them

	nc *nats.Conn
	cc jetstream.ConsumeContext
}

func startEventWatch(ctx context.Context, url string) (*eventWatch, error) {
	nc, err := nats.Connect(url, nats.Name("mfaload"))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS for --events: %w", err)
	}
	// The embedded server's auditor (mfad nats-url --role auditor) reaches MFA_EVENTS
	// through a JetStream domain; a server without accounts directly.
	_, stream, err := activity.OpenStream(ctx, nc, activity.EventsStream, activity.DomainAuto)
	if err != nil {
		nc.Close()
		return nil, err
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"mfa.events.>"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("follow MFA_EVENTS: %w", err)
	}
	w := &eventWatch{nc: nc}
	w.reset()
	w.cc, err = cons.Consume(func(msg jetstream.Msg) {
		w.receive(msg.Subject(), msg.Headers().Get(activity.MsgIDHeader), msg.Data(), time.Now())
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return w, nil
}

func (w *eventWatch) close() {
	if w == nil {
		return
	}
	w.cc.Stop()
	w.nc.Close()
}

func (w *eventWatch) reset() {
	w.pending, w.early, w.seen = map[string][]time.Time{}, map[string][]time.Time{}, map[string]bool{}
	w.lags, w.expected, w.duplicates, w.received = nil, 0, 0, 0
	w.pairs = nil // between scenarios (the pool's top-up), no body is read
}

// expect records a successful reply whose event should follow.
func (w *eventWatch) expect(key string, at time.Time) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expected++
	if q := w.early[key]; len(q) > 0 {
		w.early[key] = q[1:]
		w.lags = append(w.lags, max(0, q[0].Sub(at)))
		return
	}
	w.pending[key] = append(w.pending[key], at)
}

// pair sets the event types the next scenario's replies wait for (scenarioPairs).
func (w *eventWatch) pair(types []string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pairs = map[string]bool{}
	for _, t := range types {
		w.pairs[t] = true
	}
}

// receive takes one message of MFA_EVENTS: its event id (the Nats-Msg-Id, one per
// audit record) to count duplicates, and its body only if a reply may wait for it. The
// tool shares the box with mfad, and parsing every body (seven a DruID delete) was a
// fifth of its CPU in that scenario.
func (w *eventWatch) receive(subject, id string, body []byte, at time.Time) {
	typ := strings.TrimPrefix(subject, eventSubjectPrefix)
	w.mu.Lock()
	read := w.pairs[typ] || id == ""
	w.mu.Unlock()
	e := eventRecord{ID: id}
	if read {
		var err error
		if e, err = parseEvent(body); err != nil {
			return
		}
		if id != "" {
			e.ID = id
		}
	}
	w.observe(e, at)
}

var eventSubjectPrefix = activity.EventSubject("")

func (w *eventWatch) observe(e eventRecord, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[e.ID] {
		w.duplicates++
		return
	}
	w.seen[e.ID] = true
	key := e.key()
	if key == "" {
		return
	}
	w.received++
	if q := w.pending[key]; len(q) > 0 {
		w.pending[key] = q[1:]
		w.lags = append(w.lags, at.Sub(q[0]))
		return
	}
	w.early[key] = append(w.early[key], at)
}

// eventStats is what the watch saw during one scenario.
type eventStats struct {
	Expected   int     `json:"expected"`
	Matched    int     `json:"matched"`
	Missing    int     `json:"missing"`
	Duplicates int     `json:"duplicates"`
	LagP50Ms   float64 `json:"lag_p50_ms"`
	LagP99Ms   float64 `json:"lag_p99_ms"`
}

// settle waits (at most wait) for the events of the replies already seen, then returns
// the scenario's numbers and starts afresh.
func (w *eventWatch) settle(wait time.Duration) *eventStats {
	if w == nil {
		return nil
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		done := len(w.lags) >= w.expected
		w.mu.Unlock()
		if done {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	lags := sorted(w.lags)
	s := &eventStats{Expected: w.expected, Matched: len(w.lags), Missing: w.expected - len(w.lags),
		Duplicates: w.duplicates, LagP50Ms: ms(lags.pct(50)), LagP99Ms: ms(lags.pct(99))}
	w.reset()
	return s
}

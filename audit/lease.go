package audit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Lease is the right to be the one relay of an audit log that several worker
// processes share, as their store keeps it (a row with holder, epoch and expiry,
// judged by the database's clock). One relay at a time saves the others from
// publishing the same windows only to have JetStream refuse them; it is not what keeps
// MFA_EVENTS in order: each publish's expected last sequence does that, so a deposed
// relay that has not noticed yet cannot put anything out of place.
type Lease interface {
	// Claim takes the lease for holder when it is free or expired, or renews it when
	// holder has it, for ttl. It returns the lease as it stands after the call; Held
	// says whether it is in force.
	Claim(ctx context.Context, holder string, ttl time.Duration) (LeaseState, error)
	// Current is the lease as it stands.
	Current(ctx context.Context) (LeaseState, error)
	// Release ends holder's lease now, so another worker takes it without waiting for
	// it to expire.
	Release(ctx context.Context, holder string) error
}

// LeaseState is a lease as its store last said.
type LeaseState struct {
	Holder  string
	Epoch   int64 // how many times the lease has changed hands
	Expires time.Time
	Held    bool // not expired
}

// Leader runs a relay only while its process holds the lease: it claims the lease
// every ttl/3, starts the relay when it gets it and stops it when it loses it or cannot
// renew it. It lives from NewLeader to Stop.
type Leader struct {
	lease  Lease
	relay  *Relay
	holder string
	ttl    time.Duration
	log    *slog.Logger

	mu    sync.Mutex
	state LeaseState // as last claimed; guarded by mu
	known bool       // state came from the store; guarded by mu

	cancel context.CancelFunc
	done   chan struct{}
}

// NewLeader starts claiming lease for holder and relaying while it holds it.
func NewLeader(lease Lease, relay *Relay, holder string, ttl time.Duration, log *slog.Logger) *Leader {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Leader{lease: lease, relay: relay, holder: holder, ttl: ttl, log: log, cancel: cancel, done: make(chan struct{})}
	go l.run(ctx)
	return l
}

// relayRun is a relay running while its process holds the lease.
type relayRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (l *Leader) startRelay(ctx context.Context) *relayRun {
	rctx, cancel := context.WithCancel(ctx)
	r := &relayRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		l.relay.Run(rctx)
	}()
	return r
}

func (r *relayRun) stop() {
	if r != nil {
		r.cancel()
		<-r.done
	}
}

func (l *Leader) run(ctx context.Context) {
	defer close(l.done)
	var running *relayRun
	defer func() { running.stop() }()
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, l.ttl/3)
		st, err := l.lease.Claim(cctx, l.holder, l.ttl)
		cancel()
		if ctx.Err() != nil {
			return
		}
		mine := err == nil && st.Held && st.Holder == l.holder
		l.mu.Lock()
		l.state, l.known = st, err == nil
		l.mu.Unlock()
		switch {
		case mine && running == nil:
			l.log.Info("relay lease taken: publishing MFA_EVENTS", "holder", l.holder, "epoch", st.Epoch)
			running = l.startRelay(ctx)
		case !mine && running != nil:
			// Unsure counts as lost: a renewal that did not get through may have let the
			// lease expire, and another worker may be publishing already.
			l.log.Warn("relay lease lost: no longer publishing MFA_EVENTS", "holder", st.Holder, "epoch", st.Epoch, "err", err)
			running.stop()
			running = nil
		case err != nil:
			l.log.Warn("relay lease not claimed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Holding reports whether this process relays now.
func (l *Leader) Holding() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.known && l.state.Held && l.state.Holder == l.holder
}

// State is the lease as last claimed, and whether that claim reached the store.
func (l *Leader) State() (LeaseState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, l.known
}

// Holder is this process's name in the lease.
func (l *Leader) Holder() string { return l.holder }

// Stop stops claiming and relaying. When this process held the lease it drains what is
// left (until ctx ends) and releases the lease, so another worker takes over at once.
func (l *Leader) Stop(ctx context.Context) error {
	held := l.Holding()
	l.cancel()
	<-l.done
	if !held {
		return nil
	}
	err := l.relay.Drain(ctx)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	return errors.Join(err, l.lease.Release(rctx, l.holder))
}

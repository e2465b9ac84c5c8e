package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// Config configures a Gateway. Zero values take the defaults.
type Config struct {
	// Email and SMS deliver their channel's messages. A channel without a sender is not
	// served: its messages are dead-lettered, since no retry can deliver them.
	Email, SMS Sender
	// AppName names the service in the messages ("Your <AppName> sign-in code").
	AppName string
	// MaxAttempts is how many times a message is tried before it is dead-lettered [8].
	MaxAttempts int
	// SendTimeout bounds one attempt at a provider [15s].
	SendTimeout time.Duration
	// Concurrency is how many messages are delivered at once [4]: one slow provider
	// call must not hold up the codes behind it.
	Concurrency int
	// RetryDelay is the wait before attempt n+1 after attempt n failed; the default
	// doubles from 2 s to 2 min, so 8 attempts span about 4 minutes, less than the
	// 5-minute life of a code.
	RetryDelay func(attempt uint64) time.Duration
	// KeepAlive is how often JetStream hears that a message in hand is still being
	// worked on [5s]: a send slower than the consumer's ack wait (which another
	// instance with another --send-timeout may have set) is then not handed to another
	// instance, which would send it again.
	KeepAlive time.Duration
	Logger    *slog.Logger
	Metrics   prometheus.Registerer
	// Now is the clock that decides whether a code expired; tests set it.
	Now func() time.Time
}

// maxRetryAfter caps the wait a provider may ask for.
const maxRetryAfter = 5 * time.Minute

// Gateway consumes MFA_NOTIFY and delivers each message once.
type Gateway struct {
	js      jetstream.JetStream
	cfg     Config
	render  *renderer
	log     *slog.Logger
	metrics *metrics

	slots    chan struct{} // one per delivery in progress
	inflight sync.WaitGroup
	// sendCtx is the context of every provider call; it ends only when Stop runs out of
	// time, so a SIGTERM lets the messages in hand finish.
	sendCtx context.Context
	abort   context.CancelFunc

	mu       sync.Mutex
	cc       jetstream.ConsumeContext
	stopping bool
	stopped  chan struct{} // closed when Stop begins
}

// New returns a gateway that reads MFA_NOTIFY through js once started.
func New(js jetstream.JetStream, cfg Config) (*Gateway, error) {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 15 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.RetryDelay == nil {
		cfg.RetryDelay = RetryDelay
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 5 * time.Second
	}
	if cfg.AppName == "" {
		cfg.AppName = "mfad"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r, err := newRenderer(cfg.AppName)
	if err != nil {
		return nil, err
	}
	g := &Gateway{js: js, cfg: cfg, render: r, log: cfg.Logger, metrics: newMetrics(cfg.Metrics),
		slots: make(chan struct{}, cfg.Concurrency), stopped: make(chan struct{})}
	g.sendCtx, g.abort = context.WithCancel(context.Background())
	return g, nil
}

// RetryDelay is the default backoff: 2 s doubling to 2 min, ±20 % so that the messages
// a provider outage held back do not all come back in the same second.
func RetryDelay(attempt uint64) time.Duration {
	d := min(time.Second<<min(attempt, 7), 2*time.Minute)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// consumerConfig is the durable consumer every gateway instance binds to. AckWait
// outlasts an attempt and a dead-letter publish, so a slow but live delivery is not
// handed to another instance meanwhile. No MaxDeliver: the gateway counts attempts
// itself, so that the last one ends in the dead-letter stream, not in silence.
// It is mfad's own (activity.GatewayConsumerConfig, which mfad serve creates) with the
// gateway's ack wait: a pull consumer, which the gateway's user can tune and never turn
// into a push one.
func consumerConfig(sendTimeout time.Duration) jetstream.ConsumerConfig {
	cfg := activity.GatewayConsumerConfig()
	cfg.AckWait = sendTimeout + 30*time.Second
	return cfg
}

// Start creates or updates the durable consumer, which needs the stream MFA_NOTIFY to
// exist (mfad serve creates it), and begins delivering.
func (g *Gateway) Start(ctx context.Context) error {
	cons, err := g.js.CreateOrUpdateConsumer(ctx, activity.NotifyStream, consumerConfig(g.cfg.SendTimeout))
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", activity.GatewayConsumer, activity.NotifyStream, err)
	}
	cc, err := cons.Consume(g.receive,
		// As many as it can deliver at once: a message waiting in this process's buffer
		// is one another instance could be sending.
		jetstream.PullMaxMessages(g.cfg.Concurrency),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			g.log.Warn("consuming MFA_NOTIFY", "err", err)
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", activity.NotifyStream, err)
	}
	g.mu.Lock()
	g.cc = cc
	g.mu.Unlock()
	return nil
}

// Stop stops pulling, lets the deliveries in progress finish and hands the messages
// pulled but not started back to JetStream for another instance. If ctx ends first,
// the deliveries still running are broken off and their messages handed back too.
func (g *Gateway) Stop(ctx context.Context) error {
	g.mu.Lock()
	if g.stopping {
		g.mu.Unlock()
		return nil
	}
	g.stopping = true
	close(g.stopped)
	cc := g.cc
	g.mu.Unlock()

	done := make(chan struct{})
	go func() {
		if cc != nil {
			cc.Drain()
			<-cc.Closed()
		}
		g.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	g.abort()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return fmt.Errorf("gateway stopped before its deliveries ended: %w", ctx.Err())
}

// receive runs on the consumer's goroutine, one message at a time: it waits for a free
// slot and delivers the message on a goroutine of its own. From here until its verdict
// JetStream hears every KeepAlive that the message is in hand: the wait for a slot and
// the send together may outlast the ack wait.
func (g *Gateway) receive(m jetstream.Msg) {
	msg := g.hold(m)
	select {
	case g.slots <- struct{}{}:
	case <-g.stopped:
		g.handBack(msg)
		return
	}
	g.mu.Lock()
	if g.stopping {
		g.mu.Unlock()
		<-g.slots
		g.handBack(msg)
		return
	}
	g.inflight.Add(1)
	g.mu.Unlock()
	go func() {
		defer func() {
			msg.stop() // already stopped by the verdict, unless deliver gave none
			<-g.slots
			g.inflight.Done()
		}()
		g.deliver(msg)
	}()
}

// held is a message in hand, marked in progress until its verdict. Every verdict
// stops the marking first and waits for it: an "in progress" that reached JetStream
// after a NAK would reset the message's timer to the whole ack wait, and the retry
// would wait that long instead of its back-off.
type held struct {
	jetstream.Msg
	stop func()
}

func (h *held) Ack() error                          { h.stop(); return h.Msg.Ack() }
func (h *held) DoubleAck(ctx context.Context) error { h.stop(); return h.Msg.DoubleAck(ctx) }
func (h *held) Nak() error                          { h.stop(); return h.Msg.Nak() }
func (h *held) NakWithDelay(d time.Duration) error  { h.stop(); return h.Msg.NakWithDelay(d) }
func (h *held) Term() error                         { h.stop(); return h.Msg.Term() }
func (h *held) TermWithReason(r string) error       { h.stop(); return h.Msg.TermWithReason(r) }

// hold marks msg in progress now and every KeepAlive until a verdict or stop.
func (g *Gateway) hold(msg jetstream.Msg) *held {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(g.cfg.KeepAlive)
		defer t.Stop()
		for {
			if err := msg.InProgress(); err != nil {
				g.log.Debug("mark a message in progress", "subject", msg.Subject(), "err", err)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return &held{Msg: msg, stop: func() { once.Do(func() { close(done); <-finished }) }}
}

// handBack returns a message not tried to JetStream at once, for another instance.
func (g *Gateway) handBack(msg jetstream.Msg) {
	if err := msg.Nak(); err != nil {
		g.log.Warn("hand a message back", "subject", msg.Subject(), "err", err)
	}
}

// delivery is one message being delivered.
type delivery struct {
	msg     jetstream.Msg
	meta    *jetstream.MsgMetadata
	channel string
	id      string
	note    *Notification // nil when the body is not a notification
}

func (d *delivery) attrs(extra ...any) []any {
	a := []any{"channel", d.channel, "stream_seq", d.meta.Sequence.Stream, "attempt", d.meta.NumDelivered}
	if d.note != nil {
		// A channel is named after the method kind whose subject it came on
		// (activity.NotifySubject), so the workers' masking applies as is.
		a = append(a, "template", d.note.Template, "to", mfa.MaskAddress(mfa.Kind(d.channel), d.note.To))
	}
	return append(a, extra...)
}

// deliver tries a message once and then acks it, hands it back for later, or gives up.
func (g *Gateway) deliver(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		// Only a message that did not come from JetStream has none; nothing to ack.
		g.log.Error("message without JetStream metadata", "subject", msg.Subject(), "err", err)
		return
	}
	d := &delivery{msg: msg, meta: meta, channel: channelOf(msg.Subject()), id: messageKey(msg, meta)}
	n, err := decodeNotification(msg.Data())
	if err != nil {
		g.metrics.failure(d.channel)
		g.giveUp(d, err.Error())
		return
	}
	d.note = &n
	if meta.NumDelivered > uint64(g.cfg.MaxAttempts) {
		// The last attempt ended without a verdict (a crash, or an ack that was lost).
		g.giveUp(d, fmt.Sprintf("no attempt left after %d deliveries", meta.NumDelivered-1))
		return
	}
	now := g.cfg.Now()
	if exp, ok := expiresAt(n); ok && n.Code != "" && !now.Before(exp) {
		// A paid message with a dead code would only confuse its reader.
		g.metrics.failure(d.channel)
		g.giveUp(d, "the code expired at "+n.ExpiresAt+" before it could be delivered")
		return
	}
	sender := g.sender(d.channel)
	if sender == nil {
		g.metrics.failure(d.channel)
		g.giveUp(d, fmt.Sprintf("no %s delivery is configured", d.channel))
		return
	}
	m, err := g.render.render(d.channel, n, now)
	if err != nil {
		g.metrics.failure(d.channel)
		g.giveUp(d, err.Error())
		return
	}
	m.ID = d.id

	ctx, cancel := context.WithTimeout(g.sendCtx, g.cfg.SendTimeout)
	start := time.Now()
	err = sender.Send(ctx, m)
	cancel()
	g.metrics.attempt(d.channel, time.Since(start), err)
	if err == nil {
		g.ack(d)
		return
	}
	// Providers may echo what they were sent: nothing the gateway logs or keeps may
	// hold the code.
	reason := redact(err.Error(), &n, d.channel)
	switch {
	case isPermanent(err):
		g.giveUp(d, reason)
	case g.sendCtx.Err() != nil:
		g.log.Warn("delivery broken off by shutdown, handed back", d.attrs("err", reason)...)
		g.handBack(msg)
	case meta.NumDelivered >= uint64(g.cfg.MaxAttempts):
		g.giveUp(d, fmt.Sprintf("%s (attempt %d of %d)", reason, meta.NumDelivered, g.cfg.MaxAttempts))
	default:
		delay := min(max(g.cfg.RetryDelay(meta.NumDelivered), retryAfter(err)), maxRetryAfter)
		g.log.Warn("delivery failed, will retry", d.attrs("in", delay.Round(time.Millisecond).String(), "err", reason)...)
		if err := msg.NakWithDelay(delay); err != nil {
			g.log.Warn("hand a message back", d.attrs("err", err)...) // redelivered after AckWait instead
		}
		g.metrics.retry(d.channel)
	}
}

func (g *Gateway) sender(channel string) Sender {
	switch channel {
	case ChannelSMS:
		return g.cfg.SMS
	case ChannelEmail:
		return g.cfg.Email
	}
	return nil
}

// ack confirms a delivered message and waits for JetStream to record it: once it has,
// no instance sends the message again.
func (g *Gateway) ack(d *delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.msg.DoubleAck(ctx); err != nil {
		g.log.Warn("message sent but its ack is unconfirmed: it may be sent again", d.attrs("err", err)...)
		return
	}
	g.log.Info("message sent", d.attrs()...)
}

// messageKey names a message the same way on every delivery: the publisher's
// Nats-Msg-Id (the workers set one), else its stream sequence.
func messageKey(msg jetstream.Msg, meta *jetstream.MsgMetadata) string {
	if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		return id
	}
	return activity.NotifyStream + "-" + strconv.FormatUint(meta.Sequence.Stream, 10)
}

// redact hides n's code in s, and masks its address as the log's "to" does: providers
// echo both in their refusals (an SMTP 550 names the recipient, an SMS API the number),
// and a reason goes to the log and to JetStream. The dead letter keeps the address in
// its notification, for the operator.
func redact(s string, n *Notification, channel string) string {
	if n == nil {
		return s
	}
	// The address first: a code's digits may occur inside a phone number, and masking
	// them first would leave the number unmatched, and shown.
	if n.To != "" {
		kind := mfa.Kind(channel)
		// A mail server may echo the address in another case than it was sent.
		s = replaceFold(s, n.To, mfa.MaskAddress(kind, n.To))
		if kind == mfa.KindSMS {
			s = maskNumberDigits(s, n.To)
		}
	}
	if n.Code != "" {
		s = strings.ReplaceAll(s, n.Code, strings.Repeat("*", len(n.Code)))
	}
	return s
}

// minEchoedDigits is the shortest run of digits taken for an echo of the number: a
// national number without its country code has at least this many, and a shorter run
// (a status code, a count) would be masked for nothing.
const minEchoedDigits = 6

// maskNumberDigits masks every run of digits in s that ends the number to, leading
// zeros aside: an SMS API may echo it without its plus sign (34600111222), with the
// 00 of an international call (0034600111222) or in national form, with or without a
// trunk 0 (600111222, 07700900123 for +447700900123).
func maskNumberDigits(s, to string) string {
	digits := strings.TrimPrefix(to, "+")
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i {
			b.WriteByte(s[i])
			i++
			continue
		}
		run := s[i:j]
		if significant := strings.TrimLeft(run, "0"); len(significant) >= minEchoedDigits && strings.HasSuffix(digits, significant) {
			// Only the last three, as the log's mask shows: a run's first digits are
			// not the country code the log's mask keeps.
			b.WriteString(strings.Repeat("*", len(run)-3) + run[len(run)-3:])
		} else {
			b.WriteString(run)
		}
		i = j
	}
	return b.String()
}

// replaceFold is strings.ReplaceAll with old matched regardless of case.
func replaceFold(s, old, new string) string {
	if old == "" {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if len(s)-i >= len(old) && strings.EqualFold(s[i:i+len(old)], old) {
			b.WriteString(new)
			i += len(old)
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

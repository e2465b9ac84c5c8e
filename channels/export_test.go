package channels

import (
	"context"
	"encoding/json"
	"time"

	mfa "github.com/mfad/mfad"
)

// What the tests of package channels_test need of the package's insides. Those tests
// run the rules on the real SQLite store, which imports this package, so they cannot
// be in it.

type Notification = mfa.Notification

const (
	TemplateChannelCode  = mfa.TemplateChannelCode
	TemplateSignInCode   = mfa.TemplateSignInCode
	NoticeMethodAdded    = mfa.TemplateMethodAdded
	NoticeMethodRemoved  = mfa.TemplateMethodRemoved
	NoticeMFADisabled    = mfa.TemplateMFADisabled
	NoticeBackupReissued = mfa.TemplateBackupRegenerated
	NoticeLocked         = mfa.TemplateLocked
	CodeTTL              = codeTTL
	PendingTTL           = pendingTTL
)

// TOTPCode is the code of the default TOTP profile for secret at t.
func TOTPCode(secret string, t time.Time) string {
	tp := DefaultTOTPPolicy.params()
	code, err := tp.code(secret, tp.step(t))
	if err != nil {
		panic(err)
	}
	return code
}

// AddRoute adds a write command type whose handler is fn.
func (w *Worker) AddRoute(typ string, fn func(ctx context.Context, tx Tx, cmd *mfa.Command, now time.Time) error) {
	w.routes[typ] = route{fn: func(ctx context.Context, tx Tx, c *call) (any, error) {
		return nil, fn(ctx, tx, c.cmd, c.now)
	}}
}

// SetSignInForTest turns sign-in on as the rules do, with its event.
func (w *Worker) SetSignInForTest(ctx context.Context, tx Tx, cmd *mfa.Command, now time.Time) error {
	return w.rules.setSignIn(ctx, tx, &call{cmd: cmd, now: now}, true, "test")
}

// SetClock replaces the worker's clock.
func (w *Worker) SetClock(now func() time.Time) { w.cfg.Now = now }

// RunSweep runs one sweep through the batcher and returns its reply.
func (w *Worker) RunSweep() mfa.Reply {
	done := make(chan mfa.Reply, 1)
	if !w.enqueueSweep(func(r mfa.Reply) { done <- r }) {
		return mfa.Reply{Code: "STOPPED"}
	}
	return <-done
}

// Outboxed is a queued notification, opened, with its subject.
type Outboxed struct {
	Notification
	Subject string
	Body    []byte
}

// Outbox reads every notification waiting in the outbox, without sending any.
func (w *Worker) Outbox(ctx context.Context) ([]Outboxed, error) {
	var (
		out   []Outboxed
		after int64
		ferr  error
	)
	for {
		last, err := w.store.RelayNotifications(ctx, after, 1000, func(batch []QueuedNotification) []int64 {
			for _, q := range batch {
				body, err := w.rules.sealer.Open(q.BodySealed, notifyAAD(q.MsgID))
				if err != nil {
					ferr = err
					return nil
				}
				o := Outboxed{Subject: q.Subject, Body: body}
				if err := json.Unmarshal(body, &o.Notification); err != nil {
					ferr = err
				}
				out = append(out, o)
			}
			return nil
		})
		if err != nil || ferr != nil {
			return nil, errorsJoin(err, ferr)
		}
		if last == after {
			return out, nil
		}
		after = last
	}
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// SecretAAD is what a method's secret and address are sealed to.
func SecretAAD(userID string) []byte { return secretAAD(userID) }

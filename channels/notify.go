package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// notify queues a message for the gateway in the running command's transaction: it
// leaves through the outbox after commit, so none is sent for a change that did not
// happen and none is lost in a crash. Bodies may hold a code, so they are sealed.
func (r *rules) notify(ctx context.Context, tx Tx, c *call, kind mfa.Kind, n mfa.Notification) error {
	subject := activity.NotifySubject(string(kind))
	n.UserID, n.Lang = c.cmd.UserID, c.cmd.Lang
	if n.Lang == "" {
		n.Lang = mfa.LangEnglish
	}
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	msgID := mfa.NewID()
	err = tx.QueueNotification(ctx, QueuedNotification{MsgID: msgID, Subject: subject,
		BodySealed: r.sealer.Seal(body, notifyAAD(msgID)), CreatedAt: c.now})
	if err != nil {
		return err
	}
	c.notified++
	return nil
}

func notifyAAD(msgID string) []byte { return []byte("notify_outbox\x00" + msgID) }

// securityNotice tells the user, on every verified channel with an address they have,
// that their second factors changed. A user with none gets no notice: mfad knows no
// other address, and the event in MFA_EVENTS is there for the platform to act on.
func (r *rules) securityNotice(ctx context.Context, tx Tx, c *call, template string) error {
	ms, err := tx.Methods(ctx, c.cmd.UserID, "")
	if err != nil {
		return err
	}
	return r.securityNoticeTo(ctx, tx, c, template, ms)
}

// securityNoticeTo is securityNotice to the addresses among ms, the user's verified
// methods as the command read them.
func (r *rules) securityNoticeTo(ctx context.Context, tx Tx, c *call, template string, ms []Method) error {
	ms = slices.Clone(ms)
	// Kind by kind (e-mail before SMS), each kind's methods in id order.
	slices.SortStableFunc(ms, func(a, b Method) int { return strings.Compare(string(a.Kind), string(b.Kind)) })
	for _, m := range ms {
		if !m.Kind.Rules().Address {
			continue
		}
		to, err := r.destination(ctx, tx, m)
		if err != nil {
			return err
		}
		if err := r.notify(ctx, tx, c, m.Kind, mfa.Notification{To: to, Template: template, Changed: c.cmd.Type}); err != nil {
			return err
		}
	}
	return nil
}

// destination opens the phone number or e-mail address of m, sealing it again under
// the primary key when an older key sealed it.
func (r *rules) destination(ctx context.Context, tx Tx, m Method) (string, error) {
	plain, err := r.openMethod(ctx, tx, m)
	return string(plain), err
}

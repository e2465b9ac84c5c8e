package channels

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// Notification templates: what the SMS/e-mail gateway renders (API.md §4).
const (
	templateChannelCode  = "mfa_channel_code"   // confirm a new SMS/e-mail channel
	templateSignInCode   = "mfa_signin_code"    // a sign-in challenge
	noticeMethodRemoved  = "mfa_method_removed" // security notices (NIST SP 800-63B §6.1.2.1)
	noticeMFADisabled    = "mfa_disabled"
	noticeBackupReissued = "mfa_backup_codes_regenerated"
)

// notification is the body of a message on mfa.notify.sms|email.
type notification struct {
	To        string `json:"to"`
	UserID    string `json:"user_id"`
	Template  string `json:"template"`
	Code      string `json:"code,omitempty"`
	Lang      string `json:"lang"`
	ExpiresAt string `json:"expires_at,omitempty"`
	// Changed is what a security notice is about, for the template.
	Changed string `json:"changed,omitempty"`
}

// notify queues a message for the gateway in the running command's transaction: it
// leaves through the outbox after commit, so none is sent for a change that did not
// happen and none is lost in a crash. Bodies may hold a code, so they are sealed.
func (w *Worker) notify(ctx context.Context, tx *dbTx, c *call, kind mfa.Kind, n notification) error {
	subject := activity.NotifySMS
	if kind == mfa.KindEmail {
		subject = activity.NotifyEmail
	}
	n.UserID, n.Lang = c.cmd.UserID, c.cmd.Lang
	if n.Lang == "" {
		n.Lang = mfa.LangEnglish
	}
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	msgID := mfa.NewID()
	_, err = tx.ExecContext(ctx,
		"INSERT INTO notify_outbox (msg_id, subject, body_sealed, created_at) VALUES (?, ?, ?, ?)",
		msgID, subject, w.sealer.Seal(body, notifyAAD(msgID)), c.now.UnixMilli())
	if err != nil {
		return fmt.Errorf("queue notification: %w", err)
	}
	c.notified++
	return nil
}

func notifyAAD(msgID string) []byte { return []byte("notify_outbox\x00" + msgID) }

// securityNotice tells the user, on every verified SMS and e-mail channel they have,
// that their second factors changed. A user with neither gets none: mfad knows no other
// address, and the event in MFA_EVENTS is there for the platform to act on.
func (w *Worker) securityNotice(ctx context.Context, tx *dbTx, c *call, template string) error {
	ms, err := queryMethods(ctx, tx, "user_id = ? AND verified = 1 AND kind != 'totp' ORDER BY kind, id", c.cmd.UserID)
	if err != nil {
		return err
	}
	for _, m := range ms {
		to, err := w.destination(m)
		if err != nil {
			return err
		}
		if err := w.notify(ctx, tx, c, m.Kind, notification{To: to, Template: template, Changed: c.cmd.Type}); err != nil {
			return err
		}
	}
	return nil
}

// destination opens the phone number or e-mail address of m.
func (w *Worker) destination(m method) (string, error) {
	plain, err := w.sealer.Open(m.DestEnc, secretAAD(m.UserID))
	if err != nil {
		return "", fmt.Errorf("open address of method %d: %w", m.ID, err)
	}
	return string(plain), nil
}

// maskAddress hides most of a phone number or e-mail address, for events, logs and
// lists: +34600111222 → +34******222, alice@example.com → a****@example.com.
func maskAddress(kind mfa.Kind, addr string) string {
	if kind == mfa.KindEmail {
		local, domain, ok := strings.Cut(addr, "@")
		if !ok || local == "" {
			return "****"
		}
		// The first character, not the first byte: a UTF-8 local part (ñame@…) would
		// leave half a rune, an invalid string, in every event and list.
		first, size := utf8.DecodeRuneInString(local)
		return string(first) + strings.Repeat("*", max(utf8.RuneCountInString(local[size:]), 3)) + "@" + domain
	}
	if len(addr) <= 6 {
		return strings.Repeat("*", len(addr))
	}
	return addr[:3] + strings.Repeat("*", len(addr)-6) + addr[len(addr)-3:]
}

// notifyRelay publishes the notification outbox to MFA_NOTIFY and deletes what
// JetStream acknowledged. A message may be published twice after a crash between the
// ack and the delete; Nats-Msg-Id lets the stream drop the copy.
func (w *Worker) notifyRelay(ctx context.Context) {
	defer w.relays.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := w.flushNotifications(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("notification outbox not flushed, will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.notifyKick:
		case <-tick.C:
		}
	}
}

// kickNotifier wakes the notification relay without blocking.
func (w *Worker) kickNotifier() {
	select {
	case w.notifyKick <- struct{}{}:
	default:
	}
}

// flushNotifications publishes the outbox in batches until it is empty or a publish
// fails; what was acknowledged is deleted either way.
func (w *Worker) flushNotifications(ctx context.Context) error {
	if w.js == nil {
		return nil
	}
	var after int64
	for {
		batch, last, err := w.readNotifications(ctx, after, 256)
		if err != nil || last == after {
			return err
		}
		after = last
		futures := make([]jetstream.PubAckFuture, 0, len(batch))
		var failed error
		for _, n := range batch {
			msg := nats.NewMsg(n.subject)
			msg.Data = n.body
			f, err := w.js.PublishMsgAsync(msg, jetstream.WithMsgID(n.msgID))
			if err != nil {
				failed = err
				break
			}
			futures = append(futures, f)
		}
		var done []int64
		for i, f := range futures {
			select {
			case <-f.Ok():
				done = append(done, batch[i].id)
			case err := <-f.Err():
				failed = errors.Join(failed, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := deleteNotifications(ctx, w.store.write, done); err != nil {
			return err
		}
		if failed != nil {
			return fmt.Errorf("publish notifications: %w", failed)
		}
	}
}

type queuedNotification struct {
	id      int64
	msgID   string
	subject string
	body    []byte
}

// readNotifications reads up to limit queued notifications after id after, and the
// last id it looked at. A row that does not open (its key was removed from the
// configuration) cannot ever be sent: it is skipped, and reported once, so that it
// does not hold up the ones behind it. It stays in the table for an operator.
func (w *Worker) readNotifications(ctx context.Context, after int64, limit int) ([]queuedNotification, int64, error) {
	rows, err := w.store.read.QueryContext(ctx,
		"SELECT id, msg_id, subject, body_sealed FROM notify_outbox WHERE id > ? ORDER BY id LIMIT ?", after, limit)
	if err != nil {
		return nil, after, fmt.Errorf("read notification outbox: %w", err)
	}
	defer rows.Close()
	var out []queuedNotification
	last := after
	for rows.Next() {
		var (
			n      queuedNotification
			sealed []byte
		)
		if err := rows.Scan(&n.id, &n.msgID, &n.subject, &sealed); err != nil {
			return nil, last, fmt.Errorf("scan notification: %w", err)
		}
		last = n.id
		if n.body, err = w.sealer.Open(sealed, notifyAAD(n.msgID)); err != nil {
			if _, reported := w.unreadable.LoadOrStore(n.id, true); !reported {
				w.log.Error("queued notification cannot be opened and is skipped", "id", n.id, "err", err)
			}
			continue
		}
		out = append(out, n)
	}
	return out, last, rows.Err()
}

func deleteNotifications(ctx context.Context, db *sql.DB, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	q := "DELETE FROM notify_outbox WHERE id IN (?" + strings.Repeat(",?", len(ids)-1) + ")"
	if _, err := db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("delete published notifications: %w", err)
	}
	return nil
}

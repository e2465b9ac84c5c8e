package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// Notification templates: what the SMS/e-mail gateway renders (API.md §4).
const (
	templateChannelCode  = "mfa_channel_code" // confirm a new SMS/e-mail channel
	templateSignInCode   = "mfa_signin_code"  // a sign-in challenge
	noticeMethodAdded    = "mfa_method_added" // security notices (NIST SP 800-63B §6.1.2.1)
	noticeMethodRemoved  = "mfa_method_removed"
	noticeMFADisabled    = "mfa_disabled"
	noticeBackupReissued = "mfa_backup_codes_regenerated"
	noticeLocked         = "mfa_locked"
	// noticeCredentialFlagged: a security key's sign counter went backwards (a clone?).
	noticeCredentialFlagged = "mfa_credential_flagged"
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
func (r *rules) notify(ctx context.Context, tx Tx, c *call, kind mfa.Kind, n notification) error {
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
	return r.noticeTo(ctx, tx, c, ms, template)
}

// noticeTo sends a security notice to the methods of ms that have an address, kind by
// kind.
func (r *rules) noticeTo(ctx context.Context, tx Tx, c *call, ms []Method, template string) error {
	ms = slices.Clone(ms)
	slices.SortStableFunc(ms, func(a, b Method) int { return strings.Compare(string(a.Kind), string(b.Kind)) })
	for _, m := range ms {
		if !m.Kind.Rules().Address {
			continue
		}
		to, err := r.destination(ctx, tx, m)
		if err != nil {
			return err
		}
		if err := r.notify(ctx, tx, c, m.Kind, notification{To: to, Template: template, Changed: c.cmd.Type}); err != nil {
			return err
		}
	}
	return nil
}

// destination opens the phone number or e-mail address of m, sealing it again under
// the primary key when an older key sealed it.
func (r *rules) destination(ctx context.Context, tx Tx, m Method) (string, error) {
	plain, err := r.sealer.Open(m.DestEnc, secretAAD(m.UserID))
	if err != nil {
		return "", fmt.Errorf("open address of method %d: %w", m.ID, err)
	}
	return string(plain), r.resealOnUse(ctx, tx, m, plain)
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

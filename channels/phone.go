package channels

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"fmt"
	"math/big"
	"time"

	mfa "github.com/mfad/mfad"
)

// SMS and e-mail channels: the code is handed to the gateway over MFA_NOTIFY, only its
// keyed hash is kept, and it lives five minutes. A user has at most one channel of each
// kind; registering the address they already have sends a fresh code to confirm it
// again (which turns sign-in back on).
const codeTTL = 5 * time.Minute

// newOneTimeCode is six uniformly random digits.
func newOneTimeCode() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1_000_000)) // crypto/rand never fails (Go 1.24+)
	return fmt.Sprintf("%06d", n.Int64())
}

// registerChannel registers (or re-confirms) the user's SMS or e-mail channel and sends
// it a code.
func (w *Worker) registerChannel(ctx context.Context, tx *dbTx, c *call, kind mfa.Kind, address string) error {
	if !mfa.ValidAddress(kind, address) {
		return mfa.Invalid("address", mfa.ReasonFormat)
	}
	userID := c.cmd.UserID
	if err := ensureUser(ctx, tx, userID, c.now); err != nil {
		return err
	}
	u, err := findUser(ctx, tx, userID)
	if err != nil {
		return err
	}
	if err := w.guard(ctx, tx, c, u, string(kind)); err != nil {
		return err
	}
	if err := w.checkSendLimit(ctx, tx, c); err != nil {
		return err
	}
	existing, err := verifiedMethods(ctx, tx, userID, kind)
	if err != nil {
		return err
	}
	var target method
	if len(existing) > 0 {
		current, err := w.destination(existing[0])
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(current), []byte(address)) != 1 {
			return mfa.ErrChannelExists
		}
		target = existing[0]
	} else {
		gone, err := deletePending(ctx, tx, userID, kind)
		if err != nil {
			return err
		}
		_ = gone // a replaced registration needs no event of its own: its code simply dies
		hint := maskAddress(kind, address)
		res, err := tx.ExecContext(ctx, `INSERT INTO methods
			(user_id, kind, label, destination_enc, destination_hint, verified, entry_point, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)`,
			userID, string(kind), hint, w.sealer.Seal([]byte(address), secretAAD(userID)), hint,
			c.cmd.EntryPoint, c.now.UnixMilli(), c.now.Add(pendingTTL).UnixMilli())
		if err != nil {
			return fmt.Errorf("store pending %s channel: %w", kind, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("pending channel id: %w", err)
		}
		target = method{ID: id, UserID: userID, Kind: kind, Label: hint, Hint: hint}
		if err := w.emit(ctx, tx, c, mfa.EventChannelRegistered, target.object(), map[string]any{"channel": kind}); err != nil {
			return err
		}
	}
	return w.sendCode(ctx, tx, c, target, address, "register", templateChannelCode)
}

// checkSendLimit refuses to send more than CodeSendLimit codes to the user per
// CodeSendWindow (429 until the oldest of them leaves the window). Without it anyone
// holding a token could make the gateway send messages to any number without end (SMS
// pumping). The count comes from the audit log, which records every code sent.
func (w *Worker) checkSendLimit(ctx context.Context, tx *dbTx, c *call) error {
	var (
		n      int
		oldest sql.NullInt64
	)
	since := c.now.Add(-w.cfg.CodeSendWindow).UnixMilli()
	// The type is a literal so that the partial index audit_log_codes_sent applies.
	err := tx.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM audit_log
		WHERE type = 'channel.code_sent' AND user_id = ? AND created_at > ?`, c.cmd.UserID, since).Scan(&n, &oldest)
	if err != nil {
		return fmt.Errorf("count codes sent: %w", err)
	}
	if n < w.cfg.CodeSendLimit {
		return nil
	}
	free := time.UnixMilli(oldest.Int64).Add(w.cfg.CodeSendWindow)
	return &mfa.Error{Code: mfa.CodeTooManyAttempts, RetryAfter: free.Sub(c.now)}
}

// sendCode stores a fresh code for m (replacing an outstanding one) and queues it for
// the gateway.
func (w *Worker) sendCode(ctx context.Context, tx *dbTx, c *call, m method, to, purpose, template string) error {
	code := newOneTimeCode()
	keyID, sum := w.sealer.Hash(c.cmd.UserID, code)
	expires := c.now.Add(codeTTL)
	_, err := tx.ExecContext(ctx, `INSERT INTO pending_codes (method_id, purpose, key_id, code_hash, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (method_id) DO UPDATE SET purpose = excluded.purpose, key_id = excluded.key_id,
			code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = 0, created_at = excluded.created_at`,
		m.ID, purpose, keyID, sum, expires.UnixMilli(), c.now.UnixMilli())
	if err != nil {
		return fmt.Errorf("store one-time code: %w", err)
	}
	err = w.notify(ctx, tx, c, m.Kind, notification{To: to, Template: template, Code: code,
		ExpiresAt: expires.UTC().Format(time.RFC3339)})
	if err != nil {
		return err
	}
	return w.emit(ctx, tx, c, mfa.EventChannelCodeSent, m.object(), map[string]any{
		"channel": m.Kind, "purpose": purpose, "expires_at": expires.UTC().Format(time.RFC3339)})
}

// pendingCode is an outstanding one-time code with its method.
type pendingCode struct {
	m       method
	purpose string
	keyID   string
	sum     []byte
}

// outstandingCodes are the user's unexpired codes of purpose, optionally of one kind.
func outstandingCodes(ctx context.Context, tx *dbTx, userID, purpose string, kind mfa.Kind, now time.Time) ([]pendingCode, error) {
	rows, err := tx.QueryContext(ctx, `SELECT p.purpose, p.key_id, p.code_hash, `+methodColumns("m.")+`
		FROM pending_codes p JOIN methods m ON m.id = p.method_id
		WHERE m.user_id = ? AND p.purpose = ? AND p.expires_at > ? AND (? = '' OR m.kind = ?)`, userID, purpose, now.UnixMilli(), string(kind), string(kind))
	if err != nil {
		return nil, fmt.Errorf("read one-time codes: %w", err)
	}
	defer rows.Close()
	var out []pendingCode
	for rows.Next() {
		var pc pendingCode
		m, err := scanMethod(prefixScanner{rows, []any{&pc.purpose, &pc.keyID, &pc.sum}})
		if err != nil {
			return nil, fmt.Errorf("scan one-time code: %w", err)
		}
		pc.m = m
		out = append(out, pc)
	}
	return out, rows.Err()
}

// confirmChannel checks the registration code of the user's channel of kind; success
// makes it a verified method and turns sign-in on.
func (w *Worker) confirmChannel(ctx context.Context, tx *dbTx, c *call, kind mfa.Kind, code string) error {
	userID := c.cmd.UserID
	u, err := findUser(ctx, tx, userID)
	if err != nil {
		return err
	}
	if err := w.guard(ctx, tx, c, u, string(kind)); err != nil {
		return err
	}
	codes, err := outstandingCodes(ctx, tx, userID, "register", kind, c.now)
	if err != nil {
		return err
	}
	if len(codes) == 0 {
		return mfa.ErrNoPendingSetup
	}
	pc := codes[0]
	if !w.sealer.Match(pc.keyID, userID, code, pc.sum) {
		if _, err := tx.ExecContext(ctx, "UPDATE pending_codes SET attempts = attempts + 1 WHERE method_id = ?", pc.m.ID); err != nil {
			return fmt.Errorf("count code attempt: %w", err)
		}
		return w.fail(ctx, tx, c, u, false, map[string]any{"method": kind, "stage": "register"})
	}
	// No resetFailures: see lockout.go.
	if _, err := tx.ExecContext(ctx, "DELETE FROM pending_codes WHERE method_id = ?", pc.m.ID); err != nil {
		return fmt.Errorf("spend code: %w", err)
	}
	if !pc.m.Verified {
		_, err := tx.ExecContext(ctx, "UPDATE methods SET verified = 1, verified_at = ?, expires_at = NULL WHERE id = ?",
			c.now.UnixMilli(), pc.m.ID)
		if err != nil {
			return fmt.Errorf("verify channel %d: %w", pc.m.ID, err)
		}
		if err := w.emit(ctx, tx, c, mfa.EventChannelVerified, pc.m.object(), map[string]any{"channel": kind}); err != nil {
			return err
		}
	}
	return w.setSignIn(ctx, tx, c, true, "method_verified")
}

// matchSignInCode spends the user's outstanding sign-in code if code is it.
func (w *Worker) matchSignInCode(ctx context.Context, tx *dbTx, c *call, code string) (method, bool, error) {
	codes, err := outstandingCodes(ctx, tx, c.cmd.UserID, "signin", "", c.now)
	if err != nil {
		return method{}, false, err
	}
	for _, pc := range codes {
		if !pc.m.Verified || !w.sealer.Match(pc.keyID, c.cmd.UserID, code, pc.sum) {
			continue
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM pending_codes WHERE method_id = ?", pc.m.ID); err != nil {
			return method{}, false, fmt.Errorf("spend code: %w", err)
		}
		return pc.m, true, nil
	}
	return method{}, false, nil
}

// otpSend sends a sign-in code to the user's verified channel of the asked kind.
func (w *Worker) otpSend(ctx context.Context, tx *dbTx, c *call) (any, error) {
	var p mfa.OTPSendParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	if p.Method != mfa.KindSMS && p.Method != mfa.KindEmail {
		return nil, mfa.Invalid("method", mfa.ReasonEnum)
	}
	u, err := findUser(ctx, tx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	if err := w.guard(ctx, tx, c, u, string(p.Method)); err != nil {
		return nil, err
	}
	if err := w.checkSendLimit(ctx, tx, c); err != nil {
		return nil, err
	}
	ms, err := verifiedMethods(ctx, tx, c.cmd.UserID, p.Method)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, mfa.ErrChannelNotFound
	}
	to, err := w.destination(ms[0])
	if err != nil {
		return nil, err
	}
	if err := w.sendCode(ctx, tx, c, ms[0], to, "signin", templateSignInCode); err != nil {
		return nil, err
	}
	return mfa.OTPSent{ExpiresIn: int(codeTTL / time.Second)}, nil
}

// channelRegister is DruID update: register an SMS or e-mail channel.
func (w *Worker) channelRegister(ctx context.Context, tx *dbTx, c *call) (any, error) {
	var p mfa.ChannelParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	if p.Channel != mfa.KindSMS && p.Channel != mfa.KindEmail {
		return nil, mfa.Invalid("channel", mfa.ReasonEnum)
	}
	return mfa.Removal{}, w.registerChannel(ctx, tx, c, p.Channel, p.Address)
}

// channelValidate is DruID validate: confirm a channel with its code.
func (w *Worker) channelValidate(ctx context.Context, tx *dbTx, c *call) (any, error) {
	var p mfa.ChannelParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	if p.Channel != mfa.KindSMS && p.Channel != mfa.KindEmail {
		return nil, mfa.Invalid("channel", mfa.ReasonEnum)
	}
	if err := w.confirmChannel(ctx, tx, c, p.Channel, p.Code); err != nil {
		return nil, err
	}
	return mfa.Removal{SignInEnabled: true}, nil
}

// channelDelete is DruID delete: remove every verified method of a channel kind, or
// nothing when any of them is mandatory for the entry point it was created under.
func (w *Worker) channelDelete(ctx context.Context, tx *dbTx, c *call) (any, error) {
	var p mfa.ChannelParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	if _, ok := mfa.ParseKind(string(p.Channel)); !ok {
		return nil, mfa.Invalid("channel", mfa.ReasonEnum)
	}
	ms, err := verifiedMethods(ctx, tx, c.cmd.UserID, p.Channel)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, mfa.ErrChannelNotFound
	}
	for _, m := range ms {
		if !w.voluntary(m.EntryPoint, m.Kind) {
			return nil, mfa.ErrChannelNotVoluntary
		}
	}
	if err := w.deleteMethods(ctx, tx, c, ms); err != nil {
		return nil, err
	}
	obj := mfa.EventObject{Type: mfa.ObjectChannel, ID: string(p.Channel), Name: string(p.Channel)}
	if err := w.emit(ctx, tx, c, mfa.EventChannelDeleted, obj, map[string]any{"channel": p.Channel, "removed": len(ms)}); err != nil {
		return nil, err
	}
	if err := w.cascade(ctx, tx, c); err != nil {
		return nil, err
	}
	return w.removal(ctx, tx, c, len(ms))
}

// prefixScanner scans leading columns into head, the rest with the wrapped Scan.
type prefixScanner struct {
	rows interface{ Scan(...any) error }
	head []any
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.rows.Scan(append(append([]any{}, p.head...), dest...)...)
}

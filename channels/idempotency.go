package channels

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	mfa "github.com/mfad/mfad"
)

// IdempotencyWindow is how long a command's reply is kept for a repeated key.
const IdempotencyWindow = 24 * time.Hour

// storedReply finds the reply to an earlier command of the same user with the same key.
// Replies are sealed: one may hold a new TOTP secret or backup codes. A key reused for
// a different request is refused (IDEMPOTENCY_KEY_REUSED) rather than answered with
// the other request's reply, which would look like success and change nothing.
func (w *Worker) storedReply(ctx context.Context, tx *dbTx, c *call) (mfa.Reply, bool, error) {
	var sealed, hash []byte
	err := tx.QueryRowContext(ctx,
		"SELECT request_hash, reply_sealed FROM commands WHERE user_id = ? AND key = ? AND created_at > ?",
		c.cmd.UserID, c.cmd.Key, c.now.Add(-IdempotencyWindow).UnixMilli()).Scan(&hash, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return mfa.Reply{}, false, nil
	}
	if err != nil {
		return mfa.Reply{}, false, fmt.Errorf("look up idempotency key: %w", err)
	}
	if !w.sealer.Match(KeyOf(sealed), requestOwner(c.cmd), requestText(c.cmd), hash) {
		return mfa.ErrorReply(mfa.ErrKeyReused, c.cmd.Lang), true, nil
	}
	plain, err := w.sealer.Open(sealed, replyAAD(c.cmd))
	if err != nil {
		return mfa.Reply{}, false, fmt.Errorf("open stored reply: %w", err)
	}
	var r mfa.Reply
	if err := json.Unmarshal(plain, &r); err != nil {
		return mfa.Reply{}, false, fmt.Errorf("decode stored reply: %w", err)
	}
	return r, true, nil
}

// storeReply keeps reply for the command's key. An expired row with the same key is
// replaced.
func (w *Worker) storeReply(ctx context.Context, tx *dbTx, c *call, reply mfa.Reply) error {
	plain, err := json.Marshal(reply)
	if err != nil {
		return fmt.Errorf("encode reply for idempotency: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO commands (user_id, key, type, request_hash, reply_sealed, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id, key) DO UPDATE SET type = excluded.type, request_hash = excluded.request_hash,
			reply_sealed = excluded.reply_sealed, created_at = excluded.created_at`,
		c.cmd.UserID, c.cmd.Key, c.cmd.Type, w.requestHash(c.cmd), w.sealer.Seal(plain, replyAAD(c.cmd)), c.now.UnixMilli())
	if err != nil {
		return fmt.Errorf("store idempotent reply: %w", err)
	}
	return nil
}

// requestHash identifies what a command asked, to tell a retry from a different
// request under the same key. It is keyed (HMAC under the key that seals the reply,
// bound to the user and key): the parameters can hold a backup code, a phone number or
// an address, and a plain hash of them in the database could be reversed offline.
func (w *Worker) requestHash(cmd *mfa.Command) []byte {
	_, sum := w.sealer.Hash(requestOwner(cmd), requestText(cmd))
	return sum
}

func requestOwner(cmd *mfa.Command) string { return "commands\x00" + cmd.UserID + "\x00" + cmd.Key }

func requestText(cmd *mfa.Command) string { return cmd.Type + "\x00" + string(cmd.Params) }

func replyAAD(cmd *mfa.Command) []byte { return []byte(requestOwner(cmd)) }

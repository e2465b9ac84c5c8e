package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	mfa "github.com/mfad/mfad"
)

// IdempotencyWindow is how long a command's reply is kept for a repeated key.
const IdempotencyWindow = 24 * time.Hour

// reserve claims the command's idempotency key before the command runs, or finds the
// reply to an earlier command of the same user with the same key. Replies are sealed:
// one may hold a new TOTP secret or backup codes. A key reused for a different request
// is refused (IDEMPOTENCY_KEY_REUSED) rather than answered with the other request's
// reply, which would look like success and change nothing.
func (r *rules) reserve(ctx context.Context, tx Tx, c *call) (mfa.Reply, bool, error) {
	stored, found, err := tx.ReserveCommand(ctx, c.cmd.UserID, storedKey(c.cmd), c.cmd.Type, r.requestHash(c.cmd),
		c.now, IdempotencyWindow)
	if err != nil || !found {
		return mfa.Reply{}, false, err
	}
	if !r.sealer.Match(KeyOf(stored.ReplySealed), requestOwner(c.cmd), requestText(c.cmd), stored.RequestHash) {
		return mfa.ErrorReply(mfa.ErrKeyReused, c.cmd.Lang), true, nil
	}
	plain, err := r.sealer.Open(stored.ReplySealed, replyAAD(c.cmd))
	if err != nil {
		return mfa.Reply{}, false, fmt.Errorf("open stored reply: %w", err)
	}
	var reply mfa.Reply
	if err := json.Unmarshal(plain, &reply); err != nil {
		return mfa.Reply{}, false, fmt.Errorf("decode stored reply: %w", err)
	}
	reply.Replayed = true
	return reply, true, nil
}

// saveReply stores the reply of a command whose key reserve claimed.
func (r *rules) saveReply(ctx context.Context, tx Tx, c *call, reply mfa.Reply) error {
	plain := reply.AppendJSON(nil)
	return tx.SaveReply(ctx, c.cmd.UserID, storedKey(c.cmd), r.sealer.Seal(plain, replyAAD(c.cmd)))
}

// requestHash identifies what a command asked, to tell a retry from a different
// request under the same key. It is keyed (HMAC under the key that seals the reply,
// bound to the user and key): the parameters can hold a backup code, a phone number or
// an address, and a plain hash of them in the database could be reversed offline.
func (r *rules) requestHash(cmd *mfa.Command) []byte {
	_, sum := r.sealer.Hash(requestOwner(cmd), requestText(cmd))
	return sum
}

func requestOwner(cmd *mfa.Command) string {
	return "commands\x00" + cmd.UserID + "\x00" + storedKey(cmd)
}

// storedKey is the key a command's reply is kept under, in its user's space. A command
// made for the user by someone else (an admin's reset, a service's otp/send with
// user_id) keeps its key apart from the user's own: otherwise a user could block an
// admin's reset by taking its key first, or the admin replay the user's reply. The
// separator is a control character, which no client's key holds.
func storedKey(cmd *mfa.Command) string {
	if cmd.Actor == cmd.UserID {
		return cmd.Key
	}
	return cmd.Actor + "\x1f" + cmd.Key
}

func requestText(cmd *mfa.Command) string { return cmd.Type + "\x00" + string(cmd.Params) }

func replyAAD(cmd *mfa.Command) []byte { return []byte(requestOwner(cmd)) }

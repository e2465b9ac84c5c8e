package channels

import (
	"context"

	mfa "github.com/mfad/mfad"
)

// emit records one fact of the running command in the audit log, in its transaction.
func (r *rules) emit(ctx context.Context, tx Tx, c *call, eventType string, obj mfa.EventObject, detail map[string]any) error {
	err := tx.Append(ctx, mfa.Event{
		ID:         mfa.NewID(),
		Type:       eventType,
		UserID:     c.cmd.UserID,
		Actor:      c.cmd.Actor,
		EntryPoint: c.cmd.EntryPoint,
		Source:     c.cmd.Source,
		Object:     obj,
		Time:       c.now,
		Detail:     detail,
	})
	if err != nil {
		return err
	}
	c.events++
	return nil
}

func userObject(id string) mfa.EventObject {
	return mfa.EventObject{Type: mfa.ObjectUser, ID: id}
}

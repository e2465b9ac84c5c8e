package channels

import (
	"context"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
)

// emit records one fact of the running command in the audit log, in its transaction.
func (w *Worker) emit(ctx context.Context, tx *dbTx, c *call, eventType string, obj mfa.EventObject, detail map[string]any) error {
	_, err := audit.Append(ctx, tx, mfa.Event{
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

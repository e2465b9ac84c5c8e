package channels

import (
	"context"

	mfa "github.com/mfad/mfad"
)

// activityRejected records an ingested activity that was refused, so producers and
// auditors see it on mfa.events.activity.rejected like every other fact.
func (r *rules) activityRejected(ctx context.Context, tx Tx, c *call) (any, error) {
	var p mfa.ActivityRejection
	if err := c.params(&p); err != nil {
		return nil, err
	}
	obj := mfa.EventObject{Type: mfa.ObjectActivity, ID: p.ActivityID}
	return nil, r.emit(ctx, tx, c, mfa.EventActivityRejected, obj, map[string]any{
		"subject": p.Subject, "reason": p.Reason, "attempts": p.Attempts})
}

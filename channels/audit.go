package channels

import (
	"context"

	mfa "github.com/mfad/mfad"
)

// auditQuery is the audit log read (GET /api/v1/audit). An admin sees every user's
// records; anyone else only their own: the filter is forced to the caller, and asking
// for another user is refused rather than silently answered with one's own records.
func (r *rules) auditQuery(ctx context.Context, tx Tx, c *call) (any, error) {
	var q mfa.AuditQuery
	if err := c.params(&q); err != nil {
		return nil, err
	}
	if !c.cmd.Admin {
		if q.UserID != "" && q.UserID != c.cmd.UserID {
			return nil, mfa.ErrForbidden
		}
		q.UserID = c.cmd.UserID
	}
	return tx.QueryAudit(ctx, q)
}

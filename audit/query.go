package audit

import mfa "github.com/mfad/mfad"

// Page sizes of an audit query (GET /api/v1/audit).
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// PageLimit is the number of records a page of q holds: DefaultLimit when q asks for
// none, never more than MaxLimit. Every store pages the same way: records with seq
// after q.Cursor, oldest first, and NextCursor set only when more follow.
func PageLimit(q mfa.AuditQuery) int {
	switch {
	case q.Limit <= 0:
		return DefaultLimit
	case q.Limit > MaxLimit:
		return MaxLimit
	}
	return q.Limit
}

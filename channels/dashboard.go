package channels

import (
	"context"
	"slices"
	"strings"
	"time"

	mfa "github.com/mfad/mfad"
)

// DashboardWindow is how far back the dashboard counts events.
const DashboardWindow = time.Hour

// dashboardLockouts caps the locked-out users listed; the count is always exact. A
// page of a few dozen is what a person reads; a credential-stuffing wave that locks
// thousands shows in the count and in verify.locked.
const dashboardLockouts = 50

// dashboardStats is the admin dashboard's read. It runs in one read transaction, so
// the counters, the adoption figures and the backlog describe the same instant. The
// event window and the backlog are read through indexes; users and methods are
// scanned: tens of milliseconds at a million users, paid once per refresh of an open
// dashboard, which is acceptable for an admin page and not for a public one.
func (r *rules) dashboardStats(ctx context.Context, tx Tx, c *call) (any, error) {
	if !c.cmd.Admin {
		return nil, mfa.ErrForbidden
	}
	st := mfa.DashboardStats{From: c.now.Add(-DashboardWindow).UTC(), To: c.now.UTC()}
	counts, err := tx.EventCounts(ctx, st.From, st.To)
	if err != nil {
		return nil, err
	}
	st.Events = eventCounts(counts)
	if st.Adoption, err = tx.Adoption(ctx); err != nil {
		return nil, err
	}
	for _, k := range mfa.Kinds {
		st.Adoption.Methods[k.Kind] += 0 // every kind is listed, zero or not
	}
	if st.Lockouts, err = tx.Lockouts(ctx, c.now, r.cfg.Lockout.MaxFailures, dashboardLockouts); err != nil {
		return nil, err
	}
	if st.Outbox, err = tx.OutboxBacklog(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

// eventCounts lists every catalogue type with its count, zero or not, so a chart keeps
// its shape from one refresh to the next and a quiet hour reads as zeros rather than
// as missing data.
func eventCounts(counts map[string]int) []mfa.EventCount {
	out := make([]mfa.EventCount, 0, len(mfa.EventCatalogue))
	for typ := range mfa.EventCatalogue {
		out = append(out, mfa.EventCount{Type: typ, Count: counts[typ]})
	}
	slices.SortFunc(out, func(a, b mfa.EventCount) int { return strings.Compare(a.Type, b.Type) })
	return out
}

package audit

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
)

// Problem names how the chain breaks at a record.
type Problem string

// The problems Verify tells apart.
const (
	// Altered: the record's columns no longer hash to its hash, or (when its hash was
	// recomputed) the next record does not chain to it.
	Altered Problem = "altered"
	// Removed: sequence numbers are missing.
	Removed Problem = "removed"
	// Inserted: the record sits between two records that chain to each other.
	Inserted Problem = "inserted"
)

// ChainError is the first place the hash chain breaks. Seq is the record to look at:
// the altered or inserted one, or the first missing one.
type ChainError struct {
	Seq     int64
	Problem Problem
	Detail  string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit record %d %s: %s", e.Seq, e.Problem, e.Detail)
}

// Verify walks the whole audit log in seq order and checks every link: seq numbers
// follow each other from 1, each hash matches its record, and each prev_hash is the hash
// of the record before. It returns the number of records checked and, if the chain
// breaks, a *ChainError for the first break.
//
// The chain is unkeyed: it proves that nothing was changed in place, removed from the
// middle or slipped in between, but someone who can write the file can also drop the
// newest records or append forged ones with correct hashes. The MFA_EVENTS stream (or
// an audit sink on another host) is the witness against that.
func Verify(ctx context.Context, db *sql.DB) (int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT seq, event_id, type, user_id, actor, entry_point, source,
		body, prev_hash, hash, created_at FROM audit_log ORDER BY seq`)
	if err != nil {
		return 0, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var (
		n     int64
		prev  record // the last record checked
		prev2 []byte // hash of the record before prev
		cur   record
	)
	prev.Hash = genesis
	for rows.Next() {
		cur = record{}
		err := rows.Scan(&cur.Seq, &cur.EventID, &cur.Type, &cur.UserID, &cur.Actor, &cur.EntryPoint,
			&cur.Source, &cur.Body, &cur.PrevHash, &cur.Hash, &cur.CreatedAt)
		if err != nil {
			return n, fmt.Errorf("read audit record after %d: %w", prev.Seq, err)
		}
		if cerr := checkLink(&prev, prev2, &cur); cerr != nil {
			return n, cerr
		}
		prev2 = prev.Hash
		prev = cur
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read audit log: %w", err)
	}
	return n, nil
}

// checkLink checks cur against the record before it (prev, with Seq 0 and the genesis
// hash before the first record) and the hash of the one before that. The order of the
// checks decides which record is named: a missing seq first, then a link that skips
// prev (inserted), then cur's own hash (altered), then a link to a rewritten prev.
func checkLink(prev *record, prev2 []byte, cur *record) *ChainError {
	if cur.Seq != prev.Seq+1 {
		if cur.Seq <= prev.Seq {
			return &ChainError{cur.Seq, Altered, fmt.Sprintf("seq %d follows %d", cur.Seq, prev.Seq)}
		}
		missing := fmt.Sprintf("record %d is missing", prev.Seq+1)
		if cur.Seq-prev.Seq > 2 {
			missing = fmt.Sprintf("records %d to %d are missing", prev.Seq+1, cur.Seq-1)
		}
		return &ChainError{prev.Seq + 1, Removed, missing}
	}
	linked := bytes.Equal(cur.PrevHash, prev.Hash)
	if !linked && prev2 != nil && bytes.Equal(cur.PrevHash, prev2) {
		// Whoever slipped prev in had to renumber the records after it, so cur's own
		// hash may fail too; the skipped link names the culprit better.
		return &ChainError{prev.Seq, Inserted, fmt.Sprintf("record %d chains to record %d, skipping it", cur.Seq, prev.Seq-1)}
	}
	if !bytes.Equal(chainHash(cur), cur.Hash) {
		return &ChainError{cur.Seq, Altered, "its columns do not match its hash"}
	}
	if !linked {
		if prev.Seq == 0 {
			return &ChainError{cur.Seq, Altered, "the first record does not start from the genesis hash"}
		}
		return &ChainError{prev.Seq, Altered, fmt.Sprintf("record %d does not chain to it: it was rewritten with a new hash, or replaced", cur.Seq)}
	}
	return nil
}

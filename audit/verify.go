package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
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
	Err     error // the cause, when it is an error of its own (ErrUnknownChainKey)
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit record %d %s: %s", e.Seq, e.Problem, e.Detail)
}

func (e *ChainError) Unwrap() error { return e.Err }

// Records is the audit log as Verify reads it.
type Records interface {
	// Walk calls fn with every record in seq order, stopping at fn's first error.
	Walk(ctx context.Context, fn func(*Record) error) error
	// KeyedFrom is the stored fact saying where the keyed chain of a log that began
	// under schema 1 starts (KeyedFromFact), nil when there is none.
	KeyedFrom(ctx context.Context) ([]byte, error)
}

// KeyedFromMeta is the store_meta name of the sealed fact "records before seq N are
// unkeyed" (N = the first record linked with a chain key).
const KeyedFromMeta = "audit_keyed_from"

// KeyedFromFact is the stored value of the fact for n: "n:" and its tag.
func KeyedFromFact(c *Chain, n int64) []byte {
	return append([]byte(strconv.FormatInt(n, 10)+":"), c.Seal(keyedFromText(n))...)
}

func keyedFromText(n int64) string { return "keyed-from " + strconv.FormatInt(n, 10) }

// keyedFrom reads the fact: the seq from which records must be keyed (1 when there is
// no fact: the whole log must be).
func keyedFrom(c *Chain, fact []byte) (int64, error) {
	if fact == nil {
		return 1, nil
	}
	head, tag, ok := bytes.Cut(fact, []byte(":"))
	n, err := strconv.ParseInt(string(head), 10, 64)
	if !ok || err != nil || n < 1 || !c.Opens(keyedFromText(n), tag) {
		return 0, &ChainError{Seq: 1, Problem: Altered, Detail: "the stored start of the keyed chain (" + KeyedFromMeta + ") does not verify under the configured chain keys"}
	}
	return n, nil
}

// Verify walks the whole audit log in seq order and checks every link: seq numbers
// follow each other from 1, each record's hash is its link under the chain key it
// names, and each prev_hash is the hash of the record before. It returns the number of
// records checked and, if the chain breaks, a *ChainError for the first break.
//
// The links are keyed, so a verifier needs the chain keys. Someone who holds the
// database but not the keys can still drop the newest records: the MFA_EVENTS stream
// (or an audit sink on another host) is the witness against that. Records written
// under schema 1 are plain SHA-256 links; they are accepted only before the seq the
// sealed KeyedFromMeta fact names, so nobody can turn keyed records into unkeyed ones.
func Verify(ctx context.Context, log Records, c *Chain) (int64, error) {
	fact, err := log.KeyedFrom(ctx)
	if err != nil {
		return 0, err
	}
	from, err := keyedFrom(c, fact)
	if err != nil {
		return 0, err
	}
	var (
		n     int64
		prev  = Record{Hash: Genesis} // the last record checked
		prev2 []byte                  // hash of the record before prev
	)
	err = log.Walk(ctx, func(cur *Record) error {
		if cerr := checkLink(c, from, &prev, prev2, cur); cerr != nil {
			return cerr
		}
		prev2 = prev.Hash
		prev = *cur
		n++
		return nil
	})
	var cerr *ChainError
	if errors.As(err, &cerr) {
		return n, cerr
	}
	if err != nil {
		return n, fmt.Errorf("read audit log after record %d: %w", prev.Seq, err)
	}
	return n, nil
}

// checkLink checks cur against the record before it (prev, with Seq 0 and the genesis
// hash before the first record) and the hash of the one before that. The order of the
// checks decides which record is named: a missing seq first, then a link that skips
// prev (inserted), then cur's own hash (altered), then a link to a rewritten prev.
func checkLink(c *Chain, keyedFrom int64, prev *Record, prev2 []byte, cur *Record) *ChainError {
	if cur.Seq != prev.Seq+1 {
		if cur.Seq <= prev.Seq {
			return &ChainError{Seq: cur.Seq, Problem: Altered, Detail: fmt.Sprintf("seq %d follows %d", cur.Seq, prev.Seq)}
		}
		missing := fmt.Sprintf("record %d is missing", prev.Seq+1)
		if cur.Seq-prev.Seq > 2 {
			missing = fmt.Sprintf("records %d to %d are missing", prev.Seq+1, cur.Seq-1)
		}
		return &ChainError{Seq: prev.Seq + 1, Problem: Removed, Detail: missing}
	}
	switch keyed := cur.KeyID != ""; {
	case !keyed && cur.Seq >= keyedFrom:
		return &ChainError{Seq: cur.Seq, Problem: Altered, Detail: "it is not linked with a chain key"}
	case keyed && cur.Seq < keyedFrom:
		return &ChainError{Seq: cur.Seq, Problem: Altered, Detail: "it is linked with a chain key before the keyed chain starts"}
	}
	linked := bytes.Equal(cur.PrevHash, prev.Hash)
	if !linked && prev2 != nil && bytes.Equal(cur.PrevHash, prev2) {
		// Whoever slipped prev in had to renumber the records after it, so cur's own
		// hash may fail too; the skipped link names the culprit better.
		return &ChainError{Seq: prev.Seq, Problem: Inserted, Detail: fmt.Sprintf("record %d chains to record %d, skipping it", cur.Seq, prev.Seq-1)}
	}
	ok, err := c.Matches(cur)
	if err != nil {
		return &ChainError{Seq: cur.Seq, Problem: Altered, Detail: "its key id " + cur.KeyID + " is not a configured chain key", Err: err}
	}
	if !ok {
		return &ChainError{Seq: cur.Seq, Problem: Altered, Detail: "its columns do not match its hash"}
	}
	if !linked {
		if prev.Seq == 0 {
			return &ChainError{Seq: cur.Seq, Problem: Altered, Detail: "the first record does not start from the genesis hash"}
		}
		return &ChainError{Seq: prev.Seq, Problem: Altered, Detail: fmt.Sprintf("record %d does not chain to it: it was rewritten with a new hash, or replaced", cur.Seq)}
	}
	return nil
}

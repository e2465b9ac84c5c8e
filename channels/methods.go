package channels

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"

	mfa "github.com/mfad/mfad"
)

// method is a methods row as the rules need it.
type method struct {
	ID           int64
	UserID       string
	Kind         mfa.Kind
	Label        string
	SecretEnc    []byte
	DestEnc      []byte
	Hint         string
	Verified     bool
	EntryPoint   string
	LastUsedStep int64
	TOTP         totpParams
}

var methodFields = []string{"id", "user_id", "kind", "label", "secret_enc", "destination_enc",
	"destination_hint", "verified", "entry_point", "last_used_step", "algorithm", "digits", "period"}

// methodColumns is the select list scanMethod reads, each column qualified by alias
// ("" or "m.").
func methodColumns(alias string) string {
	return alias + strings.Join(methodFields, ", "+alias)
}

func scanMethod(row interface{ Scan(...any) error }) (method, error) {
	var (
		m      method
		alg    string
		digits int
		period int64
	)
	err := row.Scan(&m.ID, &m.UserID, &m.Kind, &m.Label, &m.SecretEnc, &m.DestEnc, &m.Hint, &m.Verified,
		&m.EntryPoint, &m.LastUsedStep, &alg, &digits, &period)
	if err != nil {
		return method{}, err
	}
	a, err := ParseAlgorithm(alg)
	if err != nil {
		return method{}, err
	}
	m.TOTP = totpParams{Algorithm: a, Digits: otp.Digits(digits), Period: uint(period)}
	return m, nil
}

func queryMethods(ctx context.Context, tx *dbTx, where string, args ...any) ([]method, error) {
	rows, err := tx.QueryContext(ctx, "SELECT "+methodColumns("")+" FROM methods WHERE "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query methods: %w", err)
	}
	defer rows.Close()
	var out []method
	for rows.Next() {
		m, err := scanMethod(rows)
		if err != nil {
			return nil, fmt.Errorf("scan method: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query methods: %w", err)
	}
	return out, nil
}

// verifiedMethods are the user's verified methods of kind, oldest first.
func verifiedMethods(ctx context.Context, tx *dbTx, userID string, kind mfa.Kind) ([]method, error) {
	return queryMethods(ctx, tx, "user_id = ? AND kind = ? AND verified = 1 ORDER BY id", userID, string(kind))
}

// pendingMethod is a pending (unverified, unexpired) row of kind: the one with id, or the
// user's latest when id is nil.
func pendingMethod(ctx context.Context, tx *dbTx, userID string, kind mfa.Kind, id *int64, now time.Time) (method, bool, error) {
	where := "user_id = ? AND kind = ? AND verified = 0 AND expires_at > ?"
	args := []any{userID, string(kind), now.UnixMilli()}
	if id != nil {
		where += " AND id = ?"
		args = append(args, *id)
	}
	ms, err := queryMethods(ctx, tx, where+" ORDER BY id DESC LIMIT 1", args...)
	if err != nil || len(ms) == 0 {
		return method{}, false, err
	}
	return ms[0], true, nil
}

// countVerified counts the user's verified methods, of one kind or (kind "") all.
func countVerified(ctx context.Context, tx *dbTx, userID string, kind mfa.Kind) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx,
		"SELECT count(*) FROM methods WHERE user_id = ? AND verified = 1 AND (? = '' OR kind = ?)",
		userID, string(kind), string(kind)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count methods: %w", err)
	}
	return n, nil
}

// deletePending discards the user's pending rows of kind and returns them.
func deletePending(ctx context.Context, tx *dbTx, userID string, kind mfa.Kind) ([]method, error) {
	ms, err := queryMethods(ctx, tx, "user_id = ? AND kind = ? AND verified = 0", userID, string(kind))
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM methods WHERE user_id = ? AND kind = ? AND verified = 0",
		userID, string(kind)); err != nil {
		return nil, fmt.Errorf("discard pending %s: %w", kind, err)
	}
	return ms, nil
}

func deleteMethod(ctx context.Context, tx *dbTx, id int64) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM methods WHERE id = ?", id); err != nil {
		return fmt.Errorf("delete method %d: %w", id, err)
	}
	return nil
}

// findMethod reads one row by id, whatever its owner or state.
func findMethod(ctx context.Context, tx *dbTx, id int64) (method, bool, error) {
	m, err := scanMethod(tx.QueryRowContext(ctx, "SELECT "+methodColumns("")+" FROM methods WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return method{}, false, nil
	}
	if err != nil {
		return method{}, false, fmt.Errorf("read method %d: %w", id, err)
	}
	return m, true, nil
}

// object is how an event names a method: never a secret, only the masked address.
func (m method) object() mfa.EventObject {
	typ := mfa.ObjectChannel
	name := m.Hint
	if m.Kind == mfa.KindTOTP {
		typ, name = mfa.ObjectTOTPDevice, m.Label
	}
	return mfa.EventObject{Type: typ, ID: strconv.FormatInt(m.ID, 10), Name: name}
}

// secretAAD binds a sealed secret or address to its owner.
func secretAAD(userID string) []byte { return []byte("methods\x00" + userID) }

// secret opens the TOTP secret of m.
func (w *Worker) secret(m method) (string, error) {
	plain, err := w.sealer.Open(m.SecretEnc, secretAAD(m.UserID))
	if err != nil {
		return "", fmt.Errorf("open secret of method %d: %w", m.ID, err)
	}
	return string(plain), nil
}

package channels

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	mfa "github.com/mfad/mfad"
)

// Backup codes (API.md §0): 10 codes xxxx-xxxx over the lowercase base32 alphabet
// (40 bits each), shown once, stored as keyed hashes, each usable once. They exist only
// while the user has a verified TOTP device.
const (
	backupCodeCount    = 10
	backupCodeAlphabet = "abcdefghijklmnopqrstuvwxyz234567"
)

func newBackupCode() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	out := make([]byte, 0, 9)
	for i, v := range b {
		if i == 4 {
			out = append(out, '-')
		}
		out = append(out, backupCodeAlphabet[v&31]) // 256 is a multiple of 32: no bias
	}
	return string(out)
}

// normalizeBackupCode accepts what people type: any case, with or without the dash,
// with spaces around.
func normalizeBackupCode(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.ReplaceAll(s, "-", "")
	s = strings.ReplaceAll(s, " ", "")
	if len(s) != 8 || strings.Trim(s, backupCodeAlphabet) != "" {
		return "", false
	}
	return s[:4] + "-" + s[4:], true
}

// issueBackupCodes replaces the user's codes with a new set and returns it.
func (w *Worker) issueBackupCodes(ctx context.Context, tx *dbTx, c *call) ([]string, error) {
	userID := c.cmd.UserID
	replaced, err := deleteBackupCodes(ctx, tx, userID)
	if err != nil {
		return nil, err
	}
	codes := make([]string, backupCodeCount)
	for i := range codes {
		codes[i] = newBackupCode()
		keyID, sum := w.sealer.Hash(userID, codes[i])
		_, err := tx.ExecContext(ctx,
			"INSERT INTO backup_codes (user_id, key_id, code_hash, created_at) VALUES (?, ?, ?, ?)",
			userID, keyID, sum, c.now.UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("store backup code: %w", err)
		}
	}
	err = w.emit(ctx, tx, c, mfa.EventBackupGenerated, mfa.EventObject{Type: mfa.ObjectBackupCodes},
		map[string]any{"count": backupCodeCount, "replaced": replaced})
	return codes, err
}

// revokeBackupCodes deletes the user's codes (cascade of the last TOTP device going).
func (w *Worker) revokeBackupCodes(ctx context.Context, tx *dbTx, c *call) error {
	n, err := deleteBackupCodes(ctx, tx, c.cmd.UserID)
	if err != nil || n == 0 {
		return err
	}
	return w.emit(ctx, tx, c, mfa.EventBackupRevoked, mfa.EventObject{Type: mfa.ObjectBackupCodes},
		map[string]any{"count": n})
}

func deleteBackupCodes(ctx context.Context, tx *dbTx, userID string) (int, error) {
	res, err := tx.ExecContext(ctx, "DELETE FROM backup_codes WHERE user_id = ?", userID)
	if err != nil {
		return 0, fmt.Errorf("delete backup codes: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// useBackupCode spends the matching unused code of the user, if any. Every unused code
// is compared (in constant time), so timing does not tell which one matched.
func (w *Worker) useBackupCode(ctx context.Context, tx *dbTx, c *call, code string) (bool, error) {
	rows, err := tx.QueryContext(ctx,
		"SELECT id, key_id, code_hash FROM backup_codes WHERE user_id = ? AND used_at IS NULL", c.cmd.UserID)
	if err != nil {
		return false, fmt.Errorf("read backup codes: %w", err)
	}
	var match int64
	for rows.Next() {
		var (
			id    int64
			keyID string
			sum   []byte
		)
		if err := rows.Scan(&id, &keyID, &sum); err != nil {
			rows.Close()
			return false, fmt.Errorf("scan backup code: %w", err)
		}
		if w.sealer.Match(keyID, c.cmd.UserID, code, sum) && match == 0 {
			match = id
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return false, fmt.Errorf("read backup codes: %w", err)
	}
	if match == 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, "UPDATE backup_codes SET used_at = ? WHERE id = ?", c.now.UnixMilli(), match); err != nil {
		return false, fmt.Errorf("spend backup code: %w", err)
	}
	var remaining int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM backup_codes WHERE user_id = ? AND used_at IS NULL",
		c.cmd.UserID).Scan(&remaining); err != nil {
		return false, fmt.Errorf("count backup codes: %w", err)
	}
	return true, w.emit(ctx, tx, c, mfa.EventBackupUsed, mfa.EventObject{Type: mfa.ObjectBackupCodes},
		map[string]any{"remaining": remaining})
}

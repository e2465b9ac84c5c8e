package channels

import (
	"context"
	"crypto/rand"
	"strings"

	mfa "github.com/mfad/mfad"
)

// Backup codes (API.md §0): 10 codes xxxx-xxxx over the lowercase base32 alphabet
// (40 bits each), shown once, stored as keyed hashes, each usable once. They exist only
// while the user has a verified method of a strong kind (mfa.KindRules.Strong).
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
func (r *rules) issueBackupCodes(ctx context.Context, tx Tx, c *call) ([]string, error) {
	userID := c.cmd.UserID
	codes := make([]string, backupCodeCount)
	hashes := make([]CodeHash, backupCodeCount)
	for i := range codes {
		codes[i] = newBackupCode()
		hashes[i].KeyID, hashes[i].Sum = r.sealer.Hash(userID, codes[i])
	}
	replaced, err := tx.ReplaceBackupCodes(ctx, userID, hashes, c.now)
	if err != nil {
		return nil, err
	}
	err = r.emit(ctx, tx, c, mfa.EventBackupGenerated, mfa.EventObject{Type: mfa.ObjectBackupCodes},
		map[string]any{"count": backupCodeCount, "replaced": replaced})
	return codes, err
}

// revokeBackupCodes deletes the user's codes (cascade of the last strong method going).
func (r *rules) revokeBackupCodes(ctx context.Context, tx Tx, c *call) error {
	n, err := tx.DeleteBackupCodes(ctx, c.cmd.UserID)
	if err != nil || n == 0 {
		return err
	}
	return r.emit(ctx, tx, c, mfa.EventBackupRevoked, mfa.EventObject{Type: mfa.ObjectBackupCodes},
		map[string]any{"count": n})
}

// useBackupCode spends the matching unused code of the user, if any. Every unused code
// is compared (in constant time), so timing does not tell which one matched; spending
// it is what accepts it, so of two uses of one code at once, one wins.
func (r *rules) useBackupCode(ctx context.Context, tx Tx, c *call, code string) (bool, error) {
	unused, err := tx.UnusedBackupCodes(ctx, c.cmd.UserID)
	if err != nil {
		return false, err
	}
	var match int64
	for _, bc := range unused {
		if r.sealer.Match(bc.KeyID, c.cmd.UserID, code, bc.Sum) && match == 0 {
			match = bc.ID
		}
	}
	if match == 0 {
		return false, nil
	}
	won, err := tx.SpendBackupCode(ctx, match, c.now)
	if err != nil || !won {
		return false, err
	}
	_, remaining, err := tx.BackupCodeCounts(ctx, c.cmd.UserID)
	if err != nil {
		return false, err
	}
	return true, r.emit(ctx, tx, c, mfa.EventBackupUsed, mfa.EventObject{Type: mfa.ObjectBackupCodes},
		map[string]any{"remaining": remaining})
}

// backupCount is the backup code status.
func (r *rules) backupCount(ctx context.Context, tx Tx, c *call) (any, error) {
	total, remaining, err := tx.BackupCodeCounts(ctx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	return mfa.BackupCodeCount{Remaining: remaining, Total: total}, nil
}

// backupRegenerate replaces the backup codes. They exist only beside a verified strong
// method.
func (r *rules) backupRegenerate(ctx context.Context, tx Tx, c *call) (any, error) {
	counts, err := tx.CountVerified(ctx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	if strongCount(counts) == 0 {
		return nil, mfa.ErrNoTOTPDevice
	}
	codes, err := r.issueBackupCodes(ctx, tx, c)
	if err != nil {
		return nil, err
	}
	if err := r.securityNotice(ctx, tx, c, mfa.TemplateBackupRegenerated); err != nil {
		return nil, err
	}
	return mfa.BackupCodes{Codes: codes}, nil
}

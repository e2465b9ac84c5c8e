package mfa

import "time"

// Kind is the kind of a second factor, and the DruID channel name of it.
type Kind string

// Kinds of second factor.
const (
	KindTOTP  Kind = "totp"
	KindSMS   Kind = "sms"
	KindEmail Kind = "email"
)

// ParseKind accepts the three channel names of API.md §3.
func ParseKind(s string) (Kind, bool) {
	switch k := Kind(s); k {
	case KindTOTP, KindSMS, KindEmail:
		return k, true
	}
	return "", false
}

// Verification methods reported by a successful sign-in verification.
const (
	VerifiedByTOTP       = "totp"
	VerifiedBySMS        = "sms"
	VerifiedByEmail      = "email"
	VerifiedByBackupCode = "backup_code"
)

// Method is a verified second factor as every read shows it. Secrets never leave the
// worker in one; Destination is masked.
type Method struct {
	ID          int64      `json:"id"`
	Kind        Kind       `json:"kind"`
	Label       string     `json:"label"`
	Destination string     `json:"destination,omitempty"` // masked phone or e-mail
	Verified    bool       `json:"verified"`
	Voluntary   bool       `json:"voluntary"`
	Primary     bool       `json:"primary"`
	EntryPoint  string     `json:"entry_point,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	VerifiedAt  *time.Time `json:"verified_at,omitempty"`
	LastUsedAt  *time.Time `json:"last_used_at,omitempty"`
}

// Status is a user's MFA state: the data of the status, settings and admin reads.
type Status struct {
	UserID               string     `json:"user_id"`
	SignInEnabled        bool       `json:"signin_enabled"`
	Methods              []Method   `json:"methods"`
	BackupCodesRemaining int        `json:"backup_codes_remaining"`
	BackupCodesTotal     int        `json:"backup_codes_total"`
	LockedUntil          *time.Time `json:"locked_until,omitempty"`
	FailedAttempts       int        `json:"failed_attempts"`
}

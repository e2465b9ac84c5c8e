package mfa

import "time"

// Kind is the kind of a second factor, and the DruID channel name of it.
type Kind string

// Kinds of second factor.
const (
	KindTOTP  Kind = "totp"
	KindSMS   Kind = "sms"
	KindEmail Kind = "email"
	// KindWebAuthn is a WebAuthn credential: a security key or a passkey.
	KindWebAuthn Kind = "webauthn"
)

// KindRules is what a kind of method can do. Every rule that depends on the kind reads
// it here, so a new kind is one entry in Kinds (and its own commands).
type KindRules struct {
	Kind Kind
	// Address: the method is a phone number or e-mail address (sealed); it receives
	// one-time codes and the user's security notices.
	Address bool
	// Strong: backup codes exist while the user has a verified method of a strong kind.
	Strong bool
	// Object is the event object type of a method of this kind.
	Object string
	// Verified and Removed are the events of one method becoming verified and being
	// removed; "" when the kind records the fact otherwise (a channel's deletion).
	Verified, Removed string
}

// Kinds is every kind of method, in the order lists and events take them.
var Kinds = []KindRules{
	{Kind: KindTOTP, Strong: true, Object: ObjectTOTPDevice,
		Verified: EventTOTPDeviceVerified, Removed: EventTOTPDeviceRemoved},
	{Kind: KindSMS, Address: true, Object: ObjectChannel, Verified: EventChannelVerified},
	{Kind: KindEmail, Address: true, Object: ObjectChannel, Verified: EventChannelVerified},
	{Kind: KindWebAuthn, Strong: true, Object: ObjectWebAuthnCredential,
		Verified: EventWebAuthnRegistered, Removed: EventWebAuthnRemoved},
}

var kindIndex = func() map[Kind]int {
	m := make(map[Kind]int, len(Kinds))
	for i, k := range Kinds {
		m[k.Kind] = i
	}
	return m
}()

// ParseKind accepts the channel names of API.md §3: every kind is a DruID channel
// (context.mfa_channel), removable with mfa/delete.
func ParseKind(s string) (Kind, bool) {
	k := Kind(s)
	if _, ok := kindIndex[k]; !ok {
		return "", false
	}
	return k, true
}

// Rules is what k can do (the zero KindRules for an unknown kind).
func (k Kind) Rules() KindRules {
	if i, ok := kindIndex[k]; ok {
		return Kinds[i]
	}
	return KindRules{}
}

// Order is k's place in Kinds (after every kind for an unknown one).
func (k Kind) Order() int {
	if i, ok := kindIndex[k]; ok {
		return i
	}
	return len(Kinds)
}

// Verification methods reported by a successful sign-in verification.
const (
	VerifiedByTOTP       = "totp"
	VerifiedBySMS        = "sms"
	VerifiedByEmail      = "email"
	VerifiedByBackupCode = "backup_code"
	VerifiedByWebAuthn   = "webauthn"
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

package mfa

import (
	"encoding/json"
	"time"
)

// Parameters of the commands (Command.Params) and the data of their replies
// (Reply.Data). The dialects in handlers/ translate their own field names to and from
// these; nothing here is any one vendor's shape.

// TOTPSetupParams starts a pending TOTP setup.
type TOTPSetupParams struct {
	DeviceName string `json:"device_name"`
	// ReplaceOnly refuses the setup when a verified device exists (banking dialect:
	// one authenticator per user, 409 MFA_SECRET_EXISTS).
	ReplaceOnly bool `json:"replace_only,omitempty"`
}

// TOTPSetup is the data of a started setup: what the user puts into an authenticator.
type TOTPSetup struct {
	DeviceID   int64  `json:"device_id"`
	DeviceName string `json:"device_name"`
	Secret     string `json:"secret"`      // base32, no padding
	OTPAuthURL string `json:"otpauth_url"` // API.md §0
}

// TOTPVerifyParams verifies a pending setup. DeviceID selects one; nil means the user's
// latest pending setup.
type TOTPVerifyParams struct {
	Code     string `json:"code"`
	DeviceID *int64 `json:"device_id,omitempty"`
}

// TOTPVerified is the data of a verified setup. BackupCodes are set only when this was
// the user's first verified TOTP device.
type TOTPVerified struct {
	DeviceID    int64    `json:"device_id"`
	BackupCodes []string `json:"backup_codes,omitempty"`
}

// DeviceParams names one device.
type DeviceParams struct {
	DeviceID int64 `json:"device_id"`
}

// Devices is the data of a device list: verified TOTP devices, primary first.
type Devices struct {
	Devices []Method `json:"devices"`
}

// Removal is the data of a removal, a reset or a DruID channel command.
type Removal struct {
	Removed       int  `json:"removed"`
	SignInEnabled bool `json:"signin_enabled"`
}

// SignInParams turns MFA sign-in on (banking POST /settings/MfaSignIn).
type SignInParams struct {
	Method  string `json:"method"` // authenticator, sms or email
	Code    string `json:"code,omitempty"`
	Address string `json:"address,omitempty"` // phone number or e-mail for sms/email
}

// SignIn is the data of SignInParams' command.
type SignIn struct {
	SignInEnabled bool     `json:"signin_enabled"`
	CodeSent      bool     `json:"code_sent,omitempty"`
	BackupCodes   []string `json:"backup_codes,omitempty"`
}

// BackupCodeCount is the data of the backup code status read.
type BackupCodeCount struct {
	Remaining int `json:"remaining"`
	Total     int `json:"total"`
}

// BackupCodes is the data of a regeneration: the new codes, shown once.
type BackupCodes struct {
	Codes []string `json:"codes"`
}

// OTPSendParams asks for a sign-in code over SMS or e-mail.
type OTPSendParams struct {
	Method Kind `json:"method"`
}

// OTPSent is the data of a sent code.
type OTPSent struct {
	ExpiresIn int `json:"expires_in"` // seconds
}

// VerifyParams is a sign-in verification: exactly one of Code, BackupCode and
// WebAuthn (an assertion, the browser's credential.toJSON(), answering the challenge
// ChallengeID names).
type VerifyParams struct {
	Code        string          `json:"code,omitempty"`
	BackupCode  string          `json:"backup_code,omitempty"`
	ChallengeID string          `json:"challenge_id,omitempty"`
	WebAuthn    json.RawMessage `json:"webauthn,omitempty"`
}

// Verified is the data of a successful sign-in verification. UserVerified is set for
// WebAuthn: whether the authenticator verified the user (PIN, biometrics), which an
// identity provider needs to grant AAL2 on the key alone.
type Verified struct {
	Method       string `json:"method"` // one of the VerifiedBy* constants
	UserVerified *bool  `json:"user_verified,omitempty"`
}

// WebAuthnRegisterParams starts registering a security key or passkey.
type WebAuthnRegisterParams struct {
	DeviceName string `json:"device_name"`
}

// WebAuthnOptions is the data of a started WebAuthn ceremony: the id to send back with
// the browser's answer, and the options to hand to the browser as they are
// (PublicKeyCredential.parseCreationOptionsFromJSON or parseRequestOptionsFromJSON).
type WebAuthnOptions struct {
	ChallengeID string          `json:"challenge_id"`
	ExpiresIn   int             `json:"expires_in"` // seconds
	PublicKey   json.RawMessage `json:"public_key"`
}

// WebAuthnRegisterVerifyParams finishes a registration with the browser's
// credential.toJSON().
type WebAuthnRegisterVerifyParams struct {
	ChallengeID string          `json:"challenge_id"`
	Credential  json.RawMessage `json:"credential"`
}

// WebAuthnCredential is a registered security key or passkey as reads show it: never
// its public key or credential id.
type WebAuthnCredential struct {
	ID             int64      `json:"id"`
	Name           string     `json:"name"`
	AAGUID         string     `json:"aaguid"` // the authenticator model, a UUID
	UserVerified   bool       `json:"user_verified"`
	BackupEligible bool       `json:"backup_eligible"` // a synced passkey (or one that may be)
	BackupState    bool       `json:"backup_state"`    // backed up now
	Flagged        bool       `json:"flagged"`         // its sign counter went backwards: refused
	Transports     []string   `json:"transports,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	LastUsedAt     *time.Time `json:"last_used_at,omitempty"`
}

// WebAuthnRegistered is the data of a finished registration. BackupCodes are set when
// this was the user's first strong factor.
type WebAuthnRegistered struct {
	WebAuthnCredential
	BackupCodes []string `json:"backup_codes,omitempty"`
}

// WebAuthnCredentials is the data of the credential list.
type WebAuthnCredentials struct {
	Credentials []WebAuthnCredential `json:"credentials"`
}

// ChannelParams drives a DruID channel: register (Address), validate (Code), delete.
type ChannelParams struct {
	Channel Kind   `json:"channel"`
	Address string `json:"address,omitempty"`
	Code    string `json:"code,omitempty"`
}

// AuditQuery filters the audit log. Cursor is the last seq of the previous page.
type AuditQuery struct {
	UserID string `json:"user_id,omitempty"`
	Type   string `json:"type,omitempty"`
	Since  int64  `json:"since,omitempty"` // Unix milliseconds
	Limit  int    `json:"limit,omitempty"`
	Cursor int64  `json:"cursor,omitempty"`
}

// AuditPage is one page of audit records, oldest first.
type AuditPage struct {
	Records    []AuditRecord `json:"records"`
	NextCursor int64         `json:"next_cursor,omitempty"`
}

// ActivityRejection records an ingested activity the service refused.
type ActivityRejection struct {
	ActivityID string `json:"activity_id"`
	Subject    string `json:"subject"`
	Reason     string `json:"reason"`
	Attempts   int    `json:"attempts"`
}

// DashboardStats is the data of the dashboard read: what a security team watches, all
// taken from one snapshot of the store.
type DashboardStats struct {
	From     time.Time     `json:"from"` // the counting window: the last hour up to To
	To       time.Time     `json:"to"`
	Events   []EventCount  `json:"events"` // every catalogue type, by type name
	Adoption Adoption      `json:"adoption"`
	Lockouts Lockouts      `json:"lockouts"`
	Outbox   OutboxBacklog `json:"outbox"`
}

// EventCount is how many events of one type the audit log holds in a window.
type EventCount struct {
	Type  string `json:"type"`
	Count int    `json:"count"`
}

// Adoption says how far MFA has spread among the users the service has seen.
type Adoption struct {
	UsersSeen       int          `json:"users_seen"`
	SignInEnabled   int          `json:"signin_enabled"`    // users with MFA sign-in on
	UsersWithMethod int          `json:"users_with_method"` // users with a verified method
	Methods         map[Kind]int `json:"methods"`           // verified methods by kind
}

// Lockouts are the users locked out now: the total, and the ones ending last first.
type Lockouts struct {
	Count int             `json:"count"`
	Users []LockedOutUser `json:"users"`
}

// LockedOutUser is one current lock.
type LockedOutUser struct {
	UserID         string    `json:"user_id"`
	LockedUntil    time.Time `json:"locked_until"`
	FailedAttempts int       `json:"failed_attempts"`
	// UntilReset: the user reached the most consecutive failures allowed and stays
	// locked until an administrator resets their MFA, whatever LockedUntil says.
	UntilReset bool `json:"until_reset,omitempty"`
}

// OutboxBacklog is what waits to leave the store: audit records not yet acknowledged by
// MFA_EVENTS, and notifications not yet handed to MFA_NOTIFY.
type OutboxBacklog struct {
	AuditUnpublished    int        `json:"audit_unpublished"`
	AuditOldest         *time.Time `json:"audit_oldest,omitempty"`
	NotificationsQueued int        `json:"notifications_queued"`
	NotificationsOldest *time.Time `json:"notifications_oldest,omitempty"`
}

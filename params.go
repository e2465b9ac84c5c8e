package mfa

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

// Removal is the data of a removal or reset.
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

// VerifyParams is a sign-in verification: exactly one of Code and BackupCode.
type VerifyParams struct {
	Code       string `json:"code,omitempty"`
	BackupCode string `json:"backup_code,omitempty"`
}

// Verified is the data of a successful sign-in verification.
type Verified struct {
	Method string `json:"method"` // one of the VerifiedBy* constants
}

// ChannelParams drives a DruID channel: register (Address), validate (Code), delete.
type ChannelParams struct {
	Channel Kind   `json:"channel"`
	Address string `json:"address,omitempty"`
	Code    string `json:"code,omitempty"`
}

// ChannelResult is the data of a DruID channel command.
type ChannelResult struct {
	Removed       int  `json:"removed,omitempty"`
	SignInEnabled bool `json:"signin_enabled"`
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

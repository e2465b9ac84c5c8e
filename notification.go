package mfa

// Notification is the body of a message for the SMS/e-mail gateway on
// mfa.notify.<channel> (API.md §4): what the workers queue and `mfad gateway` delivers.
type Notification struct {
	To       string `json:"to"`
	UserID   string `json:"user_id"`
	Template string `json:"template"`
	Code     string `json:"code,omitempty"`
	Lang     string `json:"lang"`
	// ExpiresAt is when the code stops working (RFC 3339); for TemplateLocked, when the
	// lock ends, if it ends by itself (a lock that lasts until an administrator lifts it
	// has none).
	ExpiresAt string `json:"expires_at,omitempty"`
	// Changed is the command that changed the user's factors, for security notices.
	Changed string `json:"changed,omitempty"`
}

// Notification templates: what the gateway renders. The first two carry a code; the
// others are security notices (NIST SP 800-63B: the user hears of every change to
// their authenticators).
const (
	TemplateChannelCode       = "mfa_channel_code"             // confirm a new SMS/e-mail channel
	TemplateSignInCode        = "mfa_signin_code"              // a sign-in challenge
	TemplateMethodAdded       = "mfa_method_added"             // a factor was added (Changed: the command)
	TemplateMethodRemoved     = "mfa_method_removed"           // a factor was removed (Changed: the command)
	TemplateMFADisabled       = "mfa_disabled"                 // MFA sign-in was turned off
	TemplateBackupRegenerated = "mfa_backup_codes_regenerated" // new backup codes, the old ones void
	TemplateLocked            = "mfa_locked"                   // code checks locked after too many failures
	TemplateCredentialFlagged = "mfa_credential_flagged"       // a security key answered as a clone would, and was blocked
)

// NotificationTemplates is every template the workers send.
var NotificationTemplates = []string{
	TemplateChannelCode, TemplateSignInCode, TemplateMethodAdded, TemplateMethodRemoved,
	TemplateMFADisabled, TemplateBackupRegenerated, TemplateLocked, TemplateCredentialFlagged,
}

package mfa

import (
	"encoding/json"
	"time"
)

// MaxRequestBody is the largest request body or ingested activity accepted (API.md §0).
const MaxRequestBody = 64 << 10

// Command types. Each is one endpoint of the "mfa" micro service, on subject
// mfa.cmd.<type> (activity.CommandSubject). Reads are commands too, so API nodes hold no
// state and no SQL.
const (
	CmdStatus           = "status"            // GET /api/v1/mfa/status
	CmdSettings         = "settings"          // GET /settings/Mfa
	CmdTOTPSetup        = "totp.setup"        // start a pending TOTP setup
	CmdTOTPVerify       = "totp.verify"       // verify a pending TOTP setup
	CmdTOTPList         = "totp.list"         // verified TOTP devices
	CmdTOTPRemove       = "totp.remove"       // remove one verified TOTP device
	CmdSecretRemove     = "secret.remove"     // remove every TOTP device and the pending secret
	CmdSignInEnable     = "signin.enable"     // POST /settings/MfaSignIn
	CmdSignInDisable    = "signin.disable"    // DELETE /settings/MfaSignIn
	CmdBackupCount      = "backup.count"      // remaining backup codes
	CmdBackupRegenerate = "backup.regenerate" // replace the backup codes
	CmdOTPSend          = "otp.send"          // sign-in challenge over SMS or e-mail
	CmdVerify           = "verify"            // sign-in verification
	CmdChannelRegister  = "channel.register"  // DruID update: register SMS/e-mail
	CmdChannelValidate  = "channel.validate"  // DruID validate: confirm SMS/e-mail
	CmdChannelDelete    = "channel.delete"    // DruID delete: remove a channel kind
	CmdAuditQuery       = "audit.query"       // GET /api/v1/audit
	CmdAdminGet         = "admin.get"         // GET /api/v1/admin/users/{id}/mfa
	CmdAdminReset       = "admin.reset"       // DELETE /api/v1/admin/users/{id}/mfa
	CmdActivityRejected = "activity.rejected" // record an ingested activity that was refused
	CmdDashboard        = "dashboard.stats"   // GET /api/v1/dashboard/stats (admin)
)

// WebAuthn commands (channels/webauthn.go). A sign-in is finished by CmdVerify.
const (
	CmdWebAuthnRegisterOptions = "webauthn.register.options" // start registering a credential
	CmdWebAuthnRegisterVerify  = "webauthn.register.verify"  // finish it with the browser's credential
	CmdWebAuthnLoginOptions    = "webauthn.login.options"    // a sign-in challenge (finished by CmdVerify)
	CmdWebAuthnList            = "webauthn.list"             // verified credentials
	CmdWebAuthnRemove          = "webauthn.remove"           // remove one credential
)

// Command is the envelope sent from an entry point (HTTP dialect or activity ingest) to
// the workers. Its JSON form is the NATS contract of API.md §4.
type Command struct {
	ID         string          `json:"id"`                    // unique per request
	Key        string          `json:"key,omitempty"`         // idempotency key, scoped by user
	Type       string          `json:"type"`                  // one of the Cmd* constants
	UserID     string          `json:"user_id"`               // whose factors
	Actor      string          `json:"actor"`                 // who asks (the user, or an admin)
	Admin      bool            `json:"admin,omitempty"`       // actor holds the mfa:admin scope
	Source     string          `json:"source,omitempty"`      // DruID source device (pc, mobile…)
	EntryPoint string          `json:"entry_point,omitempty"` // From header: the entry point
	Lang       string          `json:"lang,omitempty"`        // "en" or "es"
	RequestID  string          `json:"request_id,omitempty"`  // X-Request-Id, for logs
	Params     json.RawMessage `json:"params,omitempty"`      // one of the *Params types
}

// Reply is the worker's answer to a Command. A domain outcome other than success has OK
// false and Code set to one of the Code* constants; Data then may still carry detail.
type Reply struct {
	OK         bool            `json:"ok"`
	Code       string          `json:"code,omitempty"`
	Message    string          `json:"message,omitempty"`
	Field      string          `json:"field,omitempty"`       // VALIDATION_ERROR: which field
	Reason     string          `json:"reason,omitempty"`      // VALIDATION_ERROR: why
	RetryAfter int             `json:"retry_after,omitempty"` // TOO_MANY_ATTEMPTS: seconds
	Replayed   bool            `json:"replayed,omitempty"`    // answered from the idempotency store
	Data       json.RawMessage `json:"data,omitempty"`
}

// Err turns a failed reply back into the outcome error it carries, nil when OK.
func (r Reply) Err() error {
	if r.OK {
		return nil
	}
	return &Error{Code: r.Code, Field: r.Field, Reason: r.Reason,
		RetryAfter: time.Duration(r.RetryAfter) * time.Second}
}

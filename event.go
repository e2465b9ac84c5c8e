package mfa

import (
	"encoding/json"
	"time"
)

// Event types: the catalogue of facts. Each is published on mfa.events.<type> and stored
// as one audit record. The README's event table is generated from EventCatalogue.
const (
	EventTOTPDeviceSetUp    = "totp.device_set_up"
	EventTOTPDeviceVerified = "totp.device_verified"
	EventTOTPDeviceRemoved  = "totp.device_removed"
	EventTOTPSecretRemoved  = "totp.secret_removed"
	EventChannelRegistered  = "channel.registered"
	EventChannelVerified    = "channel.verified"
	EventChannelDeleted     = "channel.deleted"
	EventChannelCodeSent    = "channel.code_sent"
	EventSignInEnabled      = "signin.enabled"
	EventSignInDisabled     = "signin.disabled"
	EventBackupGenerated    = "backup_codes.generated"
	EventBackupUsed         = "backup_codes.used"
	EventBackupRevoked      = "backup_codes.revoked"
	EventVerifySucceeded    = "verify.succeeded"
	EventVerifyFailed       = "verify.failed"
	EventVerifyReplayed     = "verify.replayed"
	EventVerifyLocked       = "verify.locked"
	EventAdminReset         = "admin.reset"
	EventActivityRejected   = "activity.rejected"
	EventWebAuthnRegistered = "webauthn.credential_registered"
	EventWebAuthnRemoved    = "webauthn.credential_removed"
	EventWebAuthnFlagged    = "webauthn.credential_flagged"
)

// EventKind describes one event type: its Activity Streams 2.0 type and when it happens.
type EventKind struct {
	AS2Type string // Create, Add, Remove, Delete, Update, Accept, Reject, Block, Announce, Flag
	When    string // English, for the README and the summary
}

// EventCatalogue lists every event type the service emits. When is the summary feeds
// show, so notes for readers of the docs (verify.failed carries mfa:locked_until when
// it started a lock) go in README under the table, not here.
var EventCatalogue = map[string]EventKind{
	EventTOTPDeviceSetUp:    {"Create", "a TOTP setup was started (pending until verified)"},
	EventTOTPDeviceVerified: {"Add", "a TOTP device was verified and became a method"},
	EventTOTPDeviceRemoved:  {"Remove", "a verified TOTP device was removed"},
	EventTOTPSecretRemoved:  {"Delete", "a pending TOTP secret was discarded"},
	EventChannelRegistered:  {"Create", "an SMS or e-mail channel was registered (pending until validated)"},
	EventChannelVerified:    {"Add", "an SMS or e-mail channel was validated and became a method"},
	EventChannelDeleted:     {"Delete", "a channel kind was removed from the user"},
	EventChannelCodeSent:    {"Announce", "a one-time code was handed to the SMS/e-mail gateway"},
	EventSignInEnabled:      {"Update", "MFA sign-in was turned on"},
	EventSignInDisabled:     {"Update", "MFA sign-in was turned off"},
	EventBackupGenerated:    {"Create", "a new set of backup codes was issued"},
	EventBackupUsed:         {"Update", "a backup code was used to sign in"},
	EventBackupRevoked:      {"Delete", "the backup codes were revoked"},
	EventVerifySucceeded:    {"Accept", "a code was accepted"},
	EventVerifyFailed:       {"Reject", "a wrong code was refused"},
	EventVerifyReplayed:     {"Reject", "an already used code was refused"},
	EventVerifyLocked:       {"Block", "a code check was refused because the user is locked out"},
	EventAdminReset:         {"Delete", "an administrator removed every method of the user"},
	EventActivityRejected:   {"Reject", "an activity from MFA_ACTIVITIES was refused"},
	EventWebAuthnRegistered: {"Add", "a WebAuthn credential (security key or passkey) was registered and became a method"},
	EventWebAuthnRemoved:    {"Remove", "a WebAuthn credential was removed"},
	EventWebAuthnFlagged:    {"Flag", "a WebAuthn credential's sign counter did not increase (a cloned key?): the sign-in was refused and the credential is refused from then on"},
}

// Object types of events.
const (
	ObjectTOTPDevice  = "TOTPDevice"
	ObjectChannel     = "MFAChannel"
	ObjectBackupCodes = "BackupCodes"
	ObjectSignIn      = "MFASignIn"
	ObjectUser        = "Person"
	ObjectActivity    = "Activity"
	// ObjectWebAuthnCredential is a registered security key or passkey.
	ObjectWebAuthnCredential = "WebAuthnCredential"
)

// EventObject is what an event is about. Name never holds a secret or a full address.
type EventObject struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Event is a domain fact, recorded in the audit log in the transaction that caused it and
// published from there to MFA_EVENTS as an Activity Streams 2.0 activity.
type Event struct {
	ID         string         // UUID; the AS2 id is urn:uuid:<ID>
	Type       string         // one of the Event* constants
	UserID     string         // whose factors
	Actor      string         // who caused it
	EntryPoint string         // the From entry point, may be empty
	Source     string         // the DruID source device, may be empty
	Object     EventObject    // what it is about
	Time       time.Time      // when it committed
	Detail     map[string]any // extension members, written as "mfa:<key>"
}

// AuditRecord is one row of the audit log as the audit API returns it.
type AuditRecord struct {
	Seq        int64           `json:"seq"`
	EventID    string          `json:"event_id"`
	Type       string          `json:"type"`
	UserID     string          `json:"user_id"`
	Actor      string          `json:"actor"`
	EntryPoint string          `json:"entry_point,omitempty"`
	Source     string          `json:"source,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	Published  bool            `json:"published"`
	Event      json.RawMessage `json:"event"`
}

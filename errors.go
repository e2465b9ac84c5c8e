package mfa

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Outcome codes. They are the stable, machine-readable part of every error answer; each
// dialect maps them to its own status and envelope in one place (handlers/errors.go).
const (
	CodeValidation          = "VALIDATION_ERROR"
	CodeMalformed           = "MALFORMED_REQUEST" // not JSON, or a field of the wrong type
	CodePayloadTooLarge     = "PAYLOAD_TOO_LARGE"
	CodeRequestTimeout      = "REQUEST_TIMEOUT" // the body did not arrive within the server's read timeout
	CodeUnauthorized        = "UNAUTHORIZED"
	CodeForbidden           = "FORBIDDEN"
	CodeStepUpRequired      = "STEP_UP_REQUIRED"
	CodeNotFound            = "NOT_FOUND"
	CodeMethodNotAllowed    = "METHOD_NOT_ALLOWED"
	CodeInvalidCode         = "INVALID_CODE"
	CodeNoPendingSetup      = "NO_PENDING_SETUP"
	CodeNoPendingSecret     = "NO_PENDING_SECRET"
	CodeTooManyAttempts     = "TOO_MANY_ATTEMPTS"
	CodeDeviceNotFound      = "DEVICE_NOT_FOUND"
	CodeDeviceLimit         = "DEVICE_LIMIT_REACHED"
	CodeDeviceRemove        = "DEVICE_REMOVE_ERROR"
	CodeMFANotEnabled       = "MFA_NOT_ENABLED"
	CodeNoTOTPDevice        = "NO_TOTP_DEVICE"
	CodeSecretExists        = "MFA_SECRET_EXISTS"
	CodeInvalidMethod       = "INVALID_MFA_METHOD"
	CodeChannelNotFound     = "MFA_CHANNEL_NOT_FOUND"
	CodeChannelNotVoluntary = "MFA_CHANNEL_NOT_VOLUNTARY"
	CodeChannelExists       = "MFA_CHANNEL_EXISTS"
	CodeConflict            = "CONFLICT"
	CodeKeyReused           = "IDEMPOTENCY_KEY_REUSED"
	CodeInternal            = "INTERNAL_ERROR"
	CodeUnavailable         = "SERVICE_UNAVAILABLE"
	CodeGatewayTimeout      = "GATEWAY_TIMEOUT"
)

// Outcome codes of WebAuthn (channels/webauthn.go).
const (
	CodeInvalidChallenge     = "INVALID_CHALLENGE"      // WebAuthn: unknown, used, expired or someone else's
	CodeInvalidCredential    = "INVALID_CREDENTIAL"     // WebAuthn: the attestation or assertion did not verify
	CodeCredentialNotAllowed = "CREDENTIAL_NOT_ALLOWED" // WebAuthn: refused by policy (synced, AAGUID)
	CodeCredentialExists     = "CREDENTIAL_EXISTS"      // WebAuthn: the credential id is already registered
	CodeCredentialNotFound   = "CREDENTIAL_NOT_FOUND"
	CodeCredentialLimit      = "CREDENTIAL_LIMIT_REACHED"
)

// Validation reasons, the "why" of a VALIDATION_ERROR or MALFORMED_REQUEST on one field.
const (
	ReasonRequired = "required" // missing or empty
	ReasonType     = "type"     // wrong JSON type
	ReasonFormat   = "format"   // right type, wrong shape (not 6 digits, not E.164…)
	ReasonLength   = "length"   // too short or too long
	ReasonEnum     = "enum"     // not one of the allowed values
	ReasonMismatch = "mismatch" // disagrees with the request (verb vs path, actor vs token)
	ReasonSyntax   = "syntax"   // the body is not JSON
)

// Error is a domain outcome: something the caller asked for that the rules refuse. It is
// not a fault of the service; faults are plain wrapped errors and become INTERNAL_ERROR.
type Error struct {
	Code       string
	Field      string        // the request field at fault, if any
	Reason     string        // one of the Reason* constants, with Field
	RetryAfter time.Duration // TOO_MANY_ATTEMPTS: until the lock ends
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Field, e.Reason)
	}
	return e.Code
}

// Is matches on the code, so errors.Is(err, ErrDeviceNotFound) holds for any
// DEVICE_NOT_FOUND outcome whatever its details.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Sentinel outcomes, for errors.Is.
var (
	ErrInvalidCode         = &Error{Code: CodeInvalidCode}
	ErrNoPendingSetup      = &Error{Code: CodeNoPendingSetup}
	ErrNoPendingSecret     = &Error{Code: CodeNoPendingSecret}
	ErrTooManyAttempts     = &Error{Code: CodeTooManyAttempts}
	ErrDeviceNotFound      = &Error{Code: CodeDeviceNotFound}
	ErrDeviceLimit         = &Error{Code: CodeDeviceLimit}
	ErrMFANotEnabled       = &Error{Code: CodeMFANotEnabled}
	ErrNoTOTPDevice        = &Error{Code: CodeNoTOTPDevice}
	ErrSecretExists        = &Error{Code: CodeSecretExists}
	ErrInvalidMethod       = &Error{Code: CodeInvalidMethod}
	ErrChannelNotFound     = &Error{Code: CodeChannelNotFound}
	ErrChannelNotVoluntary = &Error{Code: CodeChannelNotVoluntary}
	ErrChannelExists       = &Error{Code: CodeChannelExists}
	ErrNotFound            = &Error{Code: CodeNotFound}
	ErrForbidden           = &Error{Code: CodeForbidden}
	ErrKeyReused           = &Error{Code: CodeKeyReused}
)

// Sentinel outcomes of WebAuthn.
var (
	ErrInvalidChallenge     = &Error{Code: CodeInvalidChallenge}
	ErrInvalidCredential    = &Error{Code: CodeInvalidCredential}
	ErrCredentialNotAllowed = &Error{Code: CodeCredentialNotAllowed}
	ErrCredentialExists     = &Error{Code: CodeCredentialExists}
	ErrCredentialNotFound   = &Error{Code: CodeCredentialNotFound}
	ErrCredentialLimit      = &Error{Code: CodeCredentialLimit}
)

// Invalid reports a request field that breaks a rule.
func Invalid(field, reason string) *Error {
	return &Error{Code: CodeValidation, Field: field, Reason: reason}
}

// InvalidMethod is INVALID_MFA_METHOD naming the field that holds the unknown method, as
// the contract asks of every unknown enum value.
func InvalidMethod(field string) *Error {
	return &Error{Code: CodeInvalidMethod, Field: field, Reason: ReasonEnum}
}

// Malformed reports a body that is not JSON or a field of the wrong JSON type.
func Malformed(field, reason string) *Error {
	return &Error{Code: CodeMalformed, Field: field, Reason: reason}
}

// AsError returns the domain outcome carried by err, or nil when err is a fault.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// ErrorReply renders an outcome error as a failed Reply, localized to lang.
func ErrorReply(err *Error, lang string) Reply {
	r := Reply{Code: err.Code, Field: err.Field, Reason: err.Reason, Message: ErrorText(lang, err)}
	if err.RetryAfter > 0 {
		r.RetryAfter = int((err.RetryAfter + time.Second - 1) / time.Second)
	}
	return r
}

// Problems is several validation outcomes of one request, reported together (the DruID
// dialect lists every field error). errors.As finds the first.
type Problems []*Error

func (p Problems) Error() string {
	msgs := make([]string, len(p))
	for i, e := range p {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap exposes each problem to errors.Is and errors.As.
func (p Problems) Unwrap() []error {
	out := make([]error, len(p))
	for i, e := range p {
		out[i] = e
	}
	return out
}

// Err returns p as an error, nil when empty.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

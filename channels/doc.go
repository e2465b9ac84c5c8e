// Package channels owns the second factors: it is the "mfa" micro service whose
// endpoints run every command, the rules of each channel (TOTP devices, SMS and e-mail
// codes, backup codes), lockout and replay protection, sealing of secrets at rest, and
// the SQLite store they live in. Each write command runs in the single writer's
// transaction together with the audit records it produces (audit.Append).
package channels

// Package activity turns what arrives at mfad into commands and what mfad did into
// events: it parses and validates DruID Activity Streams 1.0 activities, builds
// mfa.Command values for the HTTP dialects, sends them over NATS to the workers, encodes
// audit records as Activity Streams 2.0 events, names every NATS subject and says which
// NATS user may use which (grants.go: the accounts of the embedded server and of
// README's configuration for an external one).
package activity

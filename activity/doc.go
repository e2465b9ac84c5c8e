// Package activity turns what arrives at mfad into commands and what mfad did into
// events: it parses and validates DruID Activity Streams 1.0 activities, builds
// mfa.Command values for the HTTP dialects, sends them over NATS to the workers, encodes
// audit records as Activity Streams 2.0 events, and names every NATS subject.
package activity

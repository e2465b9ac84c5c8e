// Package mfa is the domain vocabulary of mfad, an MFA management service: users and
// their second factors (methods), the commands that change them, the replies and the
// events those changes produce, the outcome errors every dialect maps to its own status,
// and the message catalogue shared by all of them.
//
// It depends on the standard library only. Everything that talks to the outside world
// lives in a subpackage: handlers/ (HTTP), activity/ (parsing, NATS subjects, event
// encoding), channels/ (the workers and their SQLite store), audit/ (the hash-chained
// audit log and its outbox relay). cmd/mfad wires them together.
package mfa

// Package audit owns the audit log: the append-only, hash-chained record of every fact,
// written in the same transaction as the change it records. The log is also the outbox
// of the MFA_EVENTS stream: the relay publishes each record once, in order, and marks it
// published on JetStream's acknowledgement. It also answers audit queries and verifies
// the chain.
package audit

package gateway

import (
	"context"
	"errors"
	"time"
)

// Sender delivers rendered messages of one channel. Send returns nil only once the
// provider has accepted the message: the gateway acknowledges it then, and never sends
// it again. An error is transient (retried later) unless it is a *SendError with
// Permanent set.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SendError is a provider's refusal, with what the retry policy needs to know.
type SendError struct {
	Err error
	// Permanent says that sending the same message again cannot succeed (a rejected
	// number, a 4xx answer, a 5xx SMTP reply).
	Permanent bool
	// RetryAfter is how long the provider asked to wait (Retry-After), if it did.
	RetryAfter time.Duration
}

func (e *SendError) Error() string { return e.Err.Error() }
func (e *SendError) Unwrap() error { return e.Err }

// permanent marks err as one no retry can fix.
func permanent(err error) error { return &SendError{Err: err, Permanent: true} }

// isPermanent reports whether err, or an error it wraps, is a permanent SendError.
func isPermanent(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Permanent
}

// retryAfter is the wait a provider asked for, zero if it did not.
func retryAfter(err error) time.Duration {
	var se *SendError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

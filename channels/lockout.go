package channels

import (
	"context"
	"time"

	mfa "github.com/mfad/mfad"
)

// Lockout (API.md §0, NIST SP 800-63B §5.2.2): failed code checks count per user across
// every method. Every Threshold-th consecutive failure still answers INVALID_CODE and
// starts a lock, each twice as long as the one before (Duration × 2^(n−1), at most
// MaxDuration); while locked, every code check answers TOO_MANY_ATTEMPTS without
// evaluating the code or extending the lock. The count is reset only by a success or
// an administrator, never by a lock ending, so locks escalate. At MaxFailures
// consecutive failures the user stays locked until an administrator resets their MFA.
// A guesser thus gets at most MaxFailures tries at an account, ever.

// LockoutPolicy is the lockout's configuration.
type LockoutPolicy struct {
	Threshold   int           // consecutive failures per lock
	Duration    time.Duration // the first lock
	MaxDuration time.Duration // the longest lock
	MaxFailures int           // consecutive failures that lock until an admin reset
}

func (p *LockoutPolicy) setDefaults() {
	if p.Threshold <= 0 {
		p.Threshold = 5
	}
	if p.Duration <= 0 {
		p.Duration = 5 * time.Minute
	}
	if p.MaxDuration <= 0 {
		p.MaxDuration = 24 * time.Hour
	}
	p.MaxDuration = max(p.MaxDuration, p.Duration)
	if p.MaxFailures <= 0 {
		p.MaxFailures = 100
	}
	p.MaxFailures = max(p.MaxFailures, p.Threshold)
}

// lockFor is how long the lock started by the failures-th consecutive failure lasts,
// zero when that failure starts none.
func (p LockoutPolicy) lockFor(failures int) time.Duration {
	if failures%p.Threshold != 0 {
		return 0
	}
	d := p.Duration
	for n := failures / p.Threshold; n > 1 && d < p.MaxDuration; n-- {
		d *= 2
	}
	return min(d, p.MaxDuration)
}

// untilReset reports whether u has used up every failure allowed.
func (p LockoutPolicy) untilReset(u User) bool { return u.FailedAttempts >= p.MaxFailures }

// guard refuses a code check while u is locked, recording the refusal.
func (r *rules) guard(ctx context.Context, tx Tx, c *call, u User, kind string) error {
	detail := map[string]any{"method": kind}
	var retry time.Duration
	switch until := u.lockedUntil(c.now); {
	case r.cfg.Lockout.untilReset(u):
		detail["reason"] = "max_failures"
	case !until.IsZero():
		detail["reason"] = "locked"
		detail["locked_until"] = until.UTC().Format(time.RFC3339)
		retry = until.Sub(c.now)
	default:
		return nil
	}
	if err := r.emit(ctx, tx, c, mfa.EventVerifyLocked, userObject(u.ID), detail); err != nil {
		return err
	}
	c.counted.verify(verifyLocked, kind)
	return &mfa.Error{Code: mfa.CodeTooManyAttempts, RetryAfter: retry}
}

// fail counts one failed code check of u and records it; replayed marks a correct code
// that was already used. It returns the outcome to answer: INVALID_CODE.
func (r *rules) fail(ctx context.Context, tx Tx, c *call, u User, replayed bool, detail map[string]any) error {
	failures, _, err := tx.AddFailure(ctx, u.ID, c.now)
	if err != nil {
		return err
	}
	p := r.cfg.Lockout
	d := p.lockFor(failures)
	if failures == p.MaxFailures {
		d = p.MaxDuration // shown as a lock like the others; it lasts until a reset
	}
	var until time.Time
	if d > 0 {
		until = c.now.Add(d)
		if err := tx.LockUntil(ctx, u.ID, until, c.now); err != nil {
			return err
		}
		detail["locked_until"] = until.UTC().Format(time.RFC3339)
	}
	detail["attempt"] = failures
	typ := mfa.EventVerifyFailed
	if replayed {
		typ = mfa.EventVerifyReplayed
	}
	if err := r.emit(ctx, tx, c, typ, userObject(u.ID), detail); err != nil {
		return err
	}
	if failures == p.MaxFailures {
		err := r.emit(ctx, tx, c, mfa.EventVerifyLocked, userObject(u.ID), map[string]any{
			"method": detail["method"], "reason": "max_failures", "attempt": failures})
		if err != nil {
			return err
		}
		if err := r.securityNotice(ctx, tx, c, mfa.TemplateLocked); err != nil {
			return err
		}
	}
	c.counted.failed(replayed, methodOf(detail), until, failures >= p.MaxFailures)
	return mfa.ErrInvalidCode
}

// resetFailures clears the count after a success. Only a code of a factor the user
// already had is such a success (sign-in verification, turning sign-in back on with an
// existing device). Confirming a factor being enrolled proves only possession of that
// new factor, which whoever holds the token controls: if it reset the count, a stolen
// token could enrol a device of its own between bursts of guesses and never be locked.
func resetFailures(ctx context.Context, tx Tx, u User, now time.Time) error {
	if u.FailedAttempts == 0 {
		return nil
	}
	return tx.ResetFailures(ctx, u.ID, now)
}

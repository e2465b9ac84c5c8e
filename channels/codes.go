package channels

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"math/big"
	"time"

	mfa "github.com/mfad/mfad"
)

// One-time codes for the methods with an address (SMS, e-mail): the code is handed to
// the gateway over MFA_NOTIFY, only its keyed hash is kept, and it lives five minutes.
// A user has at most one channel of each kind; registering the address they already
// have sends a fresh code to confirm it again (which turns sign-in back on).
const codeTTL = 5 * time.Minute

// Purposes of a one-time code.
const (
	codeRegister = "register" // confirm a new channel
	codeSignIn   = "signin"   // a sign-in challenge
)

// newOneTimeCode is six uniformly random digits.
func newOneTimeCode() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1_000_000)) // crypto/rand never fails (Go 1.24+)
	return fmt.Sprintf("%06d", n.Int64())
}

// registerChannel registers (or re-confirms) the user's channel of kind and sends it a
// code.
func (r *rules) registerChannel(ctx context.Context, tx Tx, c *call, kind mfa.Kind, address string) error {
	if !mfa.ValidAddress(kind, address) {
		return mfa.Invalid("address", mfa.ReasonFormat)
	}
	address = mfa.CanonicalAddress(kind, address)
	userID := c.cmd.UserID
	if err := tx.EnsureUser(ctx, userID, c.now); err != nil {
		return err
	}
	u, err := tx.User(ctx, userID)
	if err != nil {
		return err
	}
	if err := r.guard(ctx, tx, c, u, string(kind)); err != nil {
		return err
	}
	existing, err := tx.Methods(ctx, userID, kind)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		current, err := r.destination(ctx, tx, existing[0])
		if err != nil {
			return err
		}
		// Stored before addresses were kept canonical, current may have capitals in
		// its domain.
		current = mfa.CanonicalAddress(kind, current)
		if subtle.ConstantTimeCompare([]byte(current), []byte(address)) != 1 {
			return mfa.ErrChannelExists
		}
	}
	// The slot is taken before anything is written: a refusal leaves nothing behind.
	if err := r.takeSendSlot(ctx, tx, c); err != nil {
		return err
	}
	var target Method
	if len(existing) > 0 {
		target = existing[0]
	} else {
		if err := r.discardPending(ctx, tx, c, kind, "replaced"); err != nil {
			return err
		}
		hint := mfa.MaskAddress(kind, address)
		id, err := tx.InsertMethod(ctx, NewMethod{
			UserID: userID, Kind: kind, Label: hint, DestEnc: r.sealer.Seal([]byte(address), secretAAD(userID)),
			Hint: hint, EntryPoint: c.cmd.EntryPoint, CreatedAt: c.now, ExpiresAt: c.now.Add(pendingTTL),
		})
		if err != nil {
			return err
		}
		target = Method{ID: id, UserID: userID, Kind: kind, Label: hint, Hint: hint}
		if err := r.emit(ctx, tx, c, mfa.EventChannelRegistered, target.object(), map[string]any{"channel": kind}); err != nil {
			return err
		}
	}
	return r.sendCode(ctx, tx, c, target, address, codeRegister, mfa.TemplateChannelCode)
}

// takeSendSlot refuses to send more than CodeSendLimit codes to the user per
// CodeSendWindow (429 until the oldest of them leaves the window). Without it anyone
// holding a token could make the gateway send messages to any number without end (SMS
// pumping). It is taken only once a code will be sent.
func (r *rules) takeSendSlot(ctx context.Context, tx Tx, c *call) error {
	ok, free, err := tx.TakeSendSlot(ctx, c.cmd.UserID, c.now, r.cfg.CodeSendWindow, r.cfg.CodeSendLimit)
	if err != nil || ok {
		return err
	}
	return &mfa.Error{Code: mfa.CodeTooManyAttempts, RetryAfter: free.Sub(c.now)}
}

// sendCode stores a fresh code for m (replacing an outstanding one) and queues it for
// the gateway.
func (r *rules) sendCode(ctx context.Context, tx Tx, c *call, m Method, to, purpose, template string) error {
	code := newOneTimeCode()
	var h CodeHash
	h.KeyID, h.Sum = r.sealer.Hash(c.cmd.UserID, code)
	expires := c.now.Add(codeTTL)
	err := tx.PutCode(ctx, PendingCode{MethodID: m.ID, Purpose: purpose, Hash: h, ExpiresAt: expires, CreatedAt: c.now})
	if err != nil {
		return err
	}
	err = r.notify(ctx, tx, c, m.Kind, mfa.Notification{To: to, Template: template, Code: code,
		ExpiresAt: expires.UTC().Format(time.RFC3339)})
	if err != nil {
		return err
	}
	return r.emit(ctx, tx, c, mfa.EventChannelCodeSent, m.object(), map[string]any{
		"channel": m.Kind, "purpose": purpose, "expires_at": expires.UTC().Format(time.RFC3339)})
}

// confirmChannel checks the registration code of the user's channel of kind; success
// makes it a verified method and turns sign-in on.
func (r *rules) confirmChannel(ctx context.Context, tx Tx, c *call, kind mfa.Kind, code string) error {
	userID := c.cmd.UserID
	u, err := tx.User(ctx, userID)
	if err != nil {
		return err
	}
	if err := r.guard(ctx, tx, c, u, string(kind)); err != nil {
		return err
	}
	codes, err := tx.OutstandingCodes(ctx, userID, codeRegister, kind, c.now)
	if err != nil {
		return err
	}
	if len(codes) == 0 {
		return mfa.ErrNoPendingSetup
	}
	oc := codes[0]
	spent := false
	if r.sealer.Match(oc.Hash.KeyID, userID, code, oc.Hash.Sum) {
		if spent, err = tx.SpendCode(ctx, oc.Method.ID, oc.Hash.Sum); err != nil {
			return err
		}
	}
	if !spent {
		return r.fail(ctx, tx, c, u, false, map[string]any{"method": kind, "stage": "register"})
	}
	// No resetFailures: see lockout.go.
	if !oc.Method.Verified {
		if _, err := tx.MarkVerified(ctx, oc.Method.ID, c.now, -1, 0); err != nil {
			return err
		}
		if err := r.added(ctx, tx, c, oc.Method, nil); err != nil {
			return err
		}
	}
	return r.setSignIn(ctx, tx, c, true, "method_verified")
}

// matchSignInCode spends the user's outstanding sign-in code if code is it.
func (r *rules) matchSignInCode(ctx context.Context, tx Tx, c *call, code string) (Method, bool, error) {
	codes, err := tx.OutstandingCodes(ctx, c.cmd.UserID, codeSignIn, "", c.now)
	if err != nil {
		return Method{}, false, err
	}
	for _, oc := range codes {
		if !oc.Method.Verified || !r.sealer.Match(oc.Hash.KeyID, c.cmd.UserID, code, oc.Hash.Sum) {
			continue
		}
		spent, err := tx.SpendCode(ctx, oc.Method.ID, oc.Hash.Sum)
		if err != nil {
			return Method{}, false, err
		}
		if spent {
			return oc.Method, true, nil
		}
	}
	return Method{}, false, nil
}

// otpSend sends a sign-in code to the user's verified channel of the asked kind.
func (r *rules) otpSend(ctx context.Context, tx Tx, c *call) (any, error) {
	var p mfa.OTPSendParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	if !p.Method.Rules().Address {
		return nil, mfa.Invalid("method", mfa.ReasonEnum)
	}
	u, err := tx.User(ctx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	if err := r.guard(ctx, tx, c, u, string(p.Method)); err != nil {
		return nil, err
	}
	ms, err := tx.Methods(ctx, c.cmd.UserID, p.Method)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, mfa.ErrChannelNotFound
	}
	if err := r.takeSendSlot(ctx, tx, c); err != nil {
		return nil, err
	}
	to, err := r.destination(ctx, tx, ms[0])
	if err != nil {
		return nil, err
	}
	if err := r.sendCode(ctx, tx, c, ms[0], to, codeSignIn, mfa.TemplateSignInCode); err != nil {
		return nil, err
	}
	return mfa.OTPSent{ExpiresIn: int(codeTTL / time.Second)}, nil
}

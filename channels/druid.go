package channels

import (
	"context"

	mfa "github.com/mfad/mfad"
)

// The DruID activities (API.md §3): update registers a channel, validate confirms it,
// delete removes every verified method of a channel kind.

// channelRegister is DruID update: register an SMS or e-mail channel.
func (r *rules) channelRegister(ctx context.Context, tx Tx, c *call) (any, error) {
	var p mfa.ChannelParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	if !p.Channel.Rules().Address {
		return nil, mfa.Invalid("channel", mfa.ReasonEnum)
	}
	return mfa.Removal{}, r.registerChannel(ctx, tx, c, p.Channel, p.Address)
}

// channelValidate is DruID validate: confirm a channel with its code.
func (r *rules) channelValidate(ctx context.Context, tx Tx, c *call) (any, error) {
	var p mfa.ChannelParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	if !p.Channel.Rules().Address {
		return nil, mfa.Invalid("channel", mfa.ReasonEnum)
	}
	if err := r.confirmChannel(ctx, tx, c, p.Channel, p.Code); err != nil {
		return nil, err
	}
	return mfa.Removal{SignInEnabled: true}, nil
}

// channelDelete is DruID delete: remove every verified method of a channel kind, or
// nothing when any of them is mandatory for the entry point it was created under.
func (r *rules) channelDelete(ctx context.Context, tx Tx, c *call) (any, error) {
	var p mfa.ChannelParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	if _, ok := mfa.ParseKind(string(p.Channel)); !ok {
		return nil, mfa.Invalid("channel", mfa.ReasonEnum)
	}
	u, all, err := tx.UserAndMethods(ctx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	ms := ofKind(all, p.Channel)
	if len(ms) == 0 {
		return nil, mfa.ErrChannelNotFound
	}
	for _, m := range ms {
		if !r.voluntary(m.EntryPoint, m.Kind) {
			return nil, mfa.ErrChannelNotVoluntary
		}
	}
	return r.removeMethods(ctx, tx, c, u, all, ms, func() error { return r.channelDeleted(ctx, tx, c, p.Channel, len(ms)) })
}

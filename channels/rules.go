package channels

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	mfa "github.com/mfad/mfad"
)

// rules are the MFA rules: every command type's handler, run in a store transaction.
// They reach the database only through Tx.
type rules struct {
	cfg    Config
	sealer *Sealer
	log    *slog.Logger
	wa     *webauthn.WebAuthn // the relying party of cfg.WebAuthn
}

// routes is every command the workers run: the whole surface of the "mfa" micro
// service on one screen.
func (r *rules) routes() map[string]route {
	return map[string]route{
		mfa.CmdStatus:           {fn: r.status, msg: mfa.MsgOK, read: true, cache: mfa.CmdStatus},
		mfa.CmdSettings:         {fn: r.status, msg: mfa.MsgOK, read: true, cache: mfa.CmdStatus},
		mfa.CmdTOTPSetup:        {fn: r.totpSetup, msg: mfa.MsgSetupStarted},
		mfa.CmdTOTPVerify:       {fn: r.totpVerify, msg: mfa.MsgDeviceVerified},
		mfa.CmdTOTPList:         {fn: r.totpList, msg: mfa.MsgDevicesListed, read: true, cache: mfa.CmdTOTPList},
		mfa.CmdTOTPRemove:       {fn: r.totpRemove, msg: mfa.MsgDeviceRemoved, faultCode: mfa.CodeDeviceRemove, readsUser: true},
		mfa.CmdSecretRemove:     {fn: r.secretRemove, msg: mfa.MsgSecretRemoved, readsUser: true},
		mfa.CmdSignInEnable:     {fn: r.signInEnable, msg: mfa.MsgSignInEnabled},
		mfa.CmdSignInDisable:    {fn: r.signInDisable, msg: mfa.MsgSignInDisabled},
		mfa.CmdBackupCount:      {fn: r.backupCount, msg: mfa.MsgBackupCodes, read: true, cache: mfa.CmdBackupCount},
		mfa.CmdBackupRegenerate: {fn: r.backupRegenerate, msg: mfa.MsgBackupRegenerated},
		mfa.CmdOTPSend:          {fn: r.otpSend, msg: mfa.MsgCodeSent},
		mfa.CmdVerify:           {fn: r.verify, msg: mfa.MsgVerified, readsUser: true},
		mfa.CmdChannelRegister:  {fn: r.channelRegister, msg: mfa.MsgChannelUpdated},
		mfa.CmdChannelValidate:  {fn: r.channelValidate, msg: mfa.MsgChannelValidated},
		mfa.CmdChannelDelete:    {fn: r.channelDelete, msg: mfa.MsgChannelDeleted, readsUser: true},
		mfa.CmdAuditQuery:       {fn: r.auditQuery, msg: mfa.MsgOK, read: true},
		mfa.CmdAdminGet:         {fn: r.adminGet, msg: mfa.MsgOK, read: true},
		mfa.CmdAdminReset:       {fn: r.adminReset, msg: mfa.MsgMFAReset, readsUser: true},
		mfa.CmdActivityRejected: {fn: r.activityRejected, msg: mfa.MsgOK},
		mfa.CmdDashboard:        {fn: r.dashboardStats, msg: mfa.MsgOK, read: true},

		mfa.CmdWebAuthnRegisterOptions: {fn: r.webauthnRegisterOptions, msg: mfa.MsgWebAuthnOptions},
		mfa.CmdWebAuthnRegisterVerify:  {fn: r.webauthnRegisterVerify, msg: mfa.MsgWebAuthnAdded},
		mfa.CmdWebAuthnLoginOptions:    {fn: r.webauthnLoginOptions, msg: mfa.MsgWebAuthnOptions},
		mfa.CmdWebAuthnList:            {fn: r.webauthnList, msg: mfa.MsgWebAuthnListed, read: true, cache: mfa.CmdWebAuthnList},
		mfa.CmdWebAuthnRemove:          {fn: r.webauthnRemove, msg: mfa.MsgWebAuthnRemoved, readsUser: true},
	}
}

// apply runs one write command and reports whether its writes are kept. A command with
// an idempotency key reserves the key first: a key seen before gets the stored reply
// and changes nothing.
func (r *rules) apply(ctx context.Context, tx Tx, c *call, rt route) (mfa.Reply, bool) {
	if c.cmd.Key != "" {
		stored, found, err := r.reserve(ctx, tx, c)
		if err != nil {
			return r.reply(c, rt, nil, err), false
		}
		if found {
			return stored, true
		}
	}
	data, err := rt.fn(ctx, tx, c)
	reply := r.reply(c, rt, data, err)
	if err != nil && mfa.AsError(err) == nil {
		return reply, false
	}
	if c.cmd.Key != "" {
		if err := r.saveReply(ctx, tx, c, reply); err != nil {
			return r.reply(c, rt, nil, err), false
		}
	}
	return reply, true
}

// unavailableReply answers a command the store or the worker could not take: nothing
// was done, and the client may retry.
func unavailableReply(lang string) mfa.Reply {
	return mfa.ErrorReply(&mfa.Error{Code: mfa.CodeUnavailable, RetryAfter: time.Second}, lang)
}

// reply turns a handler's result into the reply sent back.
func (r *rules) reply(c *call, rt route, data any, err error) mfa.Reply {
	if err != nil {
		if outcome := mfa.AsError(err); outcome != nil {
			return mfa.ErrorReply(outcome, c.cmd.Lang)
		}
		if errors.Is(err, ErrRerun) {
			r.log.Debug("command runs again with its batch", "type", c.cmd.Type, "command_id", c.cmd.ID, "err", err)
			return unavailableReply(c.cmd.Lang)
		}
		if errors.Is(err, ErrUnavailable) {
			r.log.Warn("command not run: store unavailable", "type", c.cmd.Type, "command_id", c.cmd.ID, "err", err)
			return unavailableReply(c.cmd.Lang)
		}
		r.log.Error("command failed", "type", c.cmd.Type, "command_id", c.cmd.ID,
			"request_id", c.cmd.RequestID, "err", err)
		return mfa.ErrorReply(&mfa.Error{Code: rt.fault()}, c.cmd.Lang)
	}
	msg := rt.msg
	if c.msg != "" {
		msg = c.msg
	}
	var raw json.RawMessage
	if data != nil {
		var err error
		if raw, err = mfa.EncodeData(data); err != nil {
			r.log.Error("encode reply", "type", c.cmd.Type, "err", err)
			return mfa.ErrorReply(&mfa.Error{Code: mfa.CodeInternal}, c.cmd.Lang)
		}
	}
	return okReply(c.cmd.Lang, msg, raw)
}

// okReply is a success in lang: the catalogue's msg and the encoded data.
func okReply(lang, msg string, data json.RawMessage) mfa.Reply {
	return mfa.Reply{OK: true, Message: mfa.Text(lang, msg), Data: data}
}

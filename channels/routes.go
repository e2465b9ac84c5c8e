package channels

import mfa "github.com/mfad/mfad"

// commandRoutes is every command the workers run: the whole surface of the "mfa"
// micro service on one screen.
func (w *Worker) commandRoutes() map[string]route {
	return map[string]route{
		mfa.CmdStatus:           {fn: w.status, msg: mfa.MsgOK, read: true},
		mfa.CmdSettings:         {fn: w.status, msg: mfa.MsgOK, read: true},
		mfa.CmdTOTPSetup:        {fn: w.totpSetup, msg: mfa.MsgSetupStarted},
		mfa.CmdTOTPVerify:       {fn: w.totpVerify, msg: mfa.MsgDeviceVerified},
		mfa.CmdTOTPList:         {fn: w.totpList, msg: mfa.MsgDevicesListed, read: true},
		mfa.CmdTOTPRemove:       {fn: w.totpRemove, msg: mfa.MsgDeviceRemoved, faultCode: mfa.CodeDeviceRemove},
		mfa.CmdSecretRemove:     {fn: w.secretRemove, msg: mfa.MsgSecretRemoved},
		mfa.CmdSignInEnable:     {fn: w.signInEnable, msg: mfa.MsgSignInEnabled},
		mfa.CmdSignInDisable:    {fn: w.signInDisable, msg: mfa.MsgSignInDisabled},
		mfa.CmdBackupCount:      {fn: w.backupCount, msg: mfa.MsgBackupCodes, read: true},
		mfa.CmdBackupRegenerate: {fn: w.backupRegenerate, msg: mfa.MsgBackupRegenerated},
		mfa.CmdOTPSend:          {fn: w.otpSend, msg: mfa.MsgCodeSent},
		mfa.CmdVerify:           {fn: w.verify, msg: mfa.MsgVerified},
		mfa.CmdChannelRegister:  {fn: w.channelRegister, msg: mfa.MsgChannelUpdated},
		mfa.CmdChannelValidate:  {fn: w.channelValidate, msg: mfa.MsgChannelValidated},
		mfa.CmdChannelDelete:    {fn: w.channelDelete, msg: mfa.MsgChannelDeleted},
		mfa.CmdAuditQuery:       {fn: w.auditQuery, msg: mfa.MsgOK, read: true},
		mfa.CmdAdminGet:         {fn: w.adminGet, msg: mfa.MsgOK, read: true},
		mfa.CmdAdminReset:       {fn: w.adminReset, msg: mfa.MsgMFAReset},
		mfa.CmdActivityRejected: {fn: w.activityRejected, msg: mfa.MsgOK},
		mfa.CmdDashboard:        {fn: w.dashboardStats, msg: mfa.MsgOK, read: true},
	}
}

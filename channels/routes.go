package channels

import mfa "github.com/mfad/mfad"

// commandRoutes is every command the workers run: the whole surface of the "mfa"
// micro service on one screen.
func (w *Worker) commandRoutes() map[string]route {
	return map[string]route{
		mfa.CmdStatus: {fn: w.status, msg: mfa.MsgOK, read: true},
	}
}
